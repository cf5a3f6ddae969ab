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

    // An agent, not a user: a user's password hash would add its own time
    // to the wait measured here.
    let started = Instant::now();
    let res = c
        .post(s.url("/api/v1/agents"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "while-locked", "agent_type": "planner"}))
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
    let agents: Value = get_json(&c, &s, "/api/v1/agents").await;
    assert!(!agents.to_string().contains("while-locked"));
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
    let spawn = || spawn_agentry(dir.path(), port, &[]);
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
    assert_audit_verifies(dir.path());
}

/// A small tmpfs mounted for one test, unmounted when dropped. Needs root
/// (the test suite runs as root: it installs packages).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` to the last byte; returns the file.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let mut byte = [0u8; 1];
    while f.write(&byte[..]).map(|n| n > 0).unwrap_or(false) {
        byte[0] = byte[0].wrapping_add(1);
    }
    let _ = f.sync_all();
    path
}

/// The disk fills up: writes fail with a clear 503 ("disk is full"), reads
/// keep working, nothing is corrupted, and writes work again once space
/// returns.
#[actix_web::test]
async fn a_full_disk_fails_writes_clearly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("fs");
    std::fs::create_dir_all(&mount).unwrap();
    let _fs = Tmpfs::mount(&mount, "24m");
    let mut config = test_config(&mount);
    config.backup.schedule = String::new();
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), config).await;
    let (c, csrf) = admin(&s).await;
    create_user(&s, &c, &csrf, "before-full", "a long enough password").await;

    let filler = fill(&mount);
    let mut refused = 0;
    for i in 0..20 {
        let res = c
            .post(s.url("/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .json(
                &json!({"username": format!("while-full-{i}"), "password": "a long enough password",
                "display_name": "x".repeat(2000)}),
            )
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            201 => {}
            503 => {
                let p: Value = res.json().await.unwrap();
                assert!(
                    p["detail"].as_str().unwrap().contains("disk is full"),
                    "{p}"
                );
                refused += 1;
            }
            other => panic!(
                "a write on a full disk got {other}: {}",
                res.text().await.unwrap()
            ),
        }
    }
    assert!(refused > 0, "no write was refused on a full disk");
    // Reads still work.
    let res = c.get(s.url("/api/v1/users?limit=5")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = c.get(s.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);

    // Space returns: writes work again, and nothing is damaged.
    std::fs::remove_file(filler).unwrap();
    let mut recovered = false;
    for _ in 0..50 {
        let res = c
            .post(s.url("/api/v1/users"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"username": "after-full", "password": "a long enough password"}))
            .send()
            .await
            .unwrap();
        if res.status() == 201 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "writes did not come back after space returned");
    let verify: Value = get_json(&c, &s, "/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let db = s.db_path();
    s.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    for name in ["before-full", "after-full"] {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM users WHERE username = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{name}");
    }
}

/// SIGTERM to the real binary under a concurrent write load: every request
/// that was answered got a real answer (no 5xx), the process exits 0, and
/// every acknowledged change is in the database with a verifying chain.
#[actix_web::test]
async fn sigterm_under_load_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_agentry(dir.path(), port, &[]);
    wait_ready(&base).await;
    let c = client();
    let csrf = login_at(&base, &c, "admin", ADMIN_PASSWORD).await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let bad = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (c, csrf, base) = (c.clone(), csrf.clone(), base.clone());
        let (acked, bad) = (acked.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("term-{w}-{i}");
                let res = c
                    .post(format!("{base}/api/v1/agents"))
                    .header("x-csrf-token", &csrf)
                    .json(&json!({"name": name, "agent_type": "worker"}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(name),
                    Ok(r) => bad.lock().unwrap().push(r.status().as_u16()),
                    // Refused or closed once the server stops accepting.
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    assert!(status.success(), "exit {status:?}");
    let bad = bad.lock().unwrap().clone();
    assert!(
        bad.iter().all(|s| *s < 500),
        "answers during shutdown: {bad:?}"
    );
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "only {} writes", acked.len());
    let conn = rusqlite::Connection::open(dir.path().join("data/agentry.db")).unwrap();
    for name in &acked {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM agents WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "acknowledged agent {name} was lost");
    }
    drop(conn);
    assert_audit_verifies(dir.path());
}
