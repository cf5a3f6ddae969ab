//! Faults from outside: the database locked by another process, and
//! `kill -9` in the middle of a mixed write load.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// Another process holds the database's write lock: writes wait a bounded
/// time and get 503 with `Retry-After`, reads keep working, and writes
/// succeed again once the lock is released.
#[actix_web::test]
async fn a_database_locked_by_another_process_gives_503s_not_hangs() {
    let s = TestServer::start_with(|c| c.database.busy_timeout_ms = 300).await;
    let (c, csrf) = admin(&s).await;
    // python3's sqlite3 takes the write lock and holds it for 4 seconds.
    let mut locker = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked',flush=True)\n\
             time.sleep(4)\n\
             c.execute('ROLLBACK')",
            s.db_path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");

    let started = Instant::now();
    let res = c
        .post(s.url("/api/v1/users"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"username": "while-locked", "password": "a long enough password"}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "unavailable");
    // Reads are not blocked by a writer in WAL mode.
    let res = c.get(s.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    assert!(locker.wait().unwrap().success());
    // Nothing half-written, and writes work again.
    let users: Value = c
        .get(s.url("/api/v1/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!users.to_string().contains("while-locked"));
    create_user(&s, &c, &csrf, "after-lock", "a long enough password").await;
}

/// `kill -9` while users, agents, keys and metrics are being written: the
/// restarted server starts clean, its audit chain verifies, and every
/// change that was acknowledged (2xx) before the kill is there.
#[actix_web::test]
async fn kill_9_under_mixed_load_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let spawn = || {
        command()
            .current_dir(dir.path())
            .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
            .env("AGENTRY_DATA_DIR", dir.path().join("data"))
            .env("AGENTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("AGENTRY_SYSTEMD__NOTIFY", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    wait_ready(&base).await;
    let c = client();
    let csrf = login_at(&base, &c, "admin", ADMIN_PASSWORD).await;

    // Four writers, each recording what was acknowledged.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (c, csrf, base, acked) = (c.clone(), csrf.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let (path, body, kind) = match w % 2 {
                    0 => (
                        "/api/v1/users",
                        json!({"username": format!("load-{w}-{i}"), "password": "a long enough password"}),
                        "user",
                    ),
                    _ => (
                        "/api/v1/agents",
                        json!({"name": format!("load-{w}-{i}"), "agent_type": "worker"}),
                        "agent",
                    ),
                };
                let res = c
                    .post(format!("{base}{path}"))
                    .header("x-csrf-token", &csrf)
                    .json(&body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 201 => acked
                        .lock()
                        .unwrap()
                        .push((kind.to_string(), format!("load-{w}-{i}"))),
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} writes before the kill",
        acked.len()
    );

    let mut child = spawn();
    wait_ready(&base).await;
    let conn = rusqlite::Connection::open(dir.path().join("data/agentry.db")).unwrap();
    for (kind, name) in &acked {
        let sql = match kind.as_str() {
            "user" => "SELECT COUNT(*) FROM users WHERE username = ?1",
            _ => "SELECT COUNT(*) FROM agents WHERE name = ?1",
        };
        let n: i64 = conn.query_row(sql, [name], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "acknowledged {kind} {name} was lost");
    }
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let verify = command()
        .env("AGENTRY_DATA_DIR", dir.path().join("data"))
        .args(["audit", "verify"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
