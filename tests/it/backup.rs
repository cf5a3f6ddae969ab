//! `agentry backup` while the server is serving and being written to.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::support::*;

#[tokio::test]
async fn backup_under_write_load_is_consistent_and_restorable() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_user(&s, &c, &csrf, "before-backup", "a long enough password").await;

    // Writers hammer the database from another connection while the backup
    // runs (bounded: they stop when the backup is done).
    let db = s.db_path();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let uid: String = conn
                .query_row("SELECT id FROM users WHERE username = 'admin'", [], |r| {
                    r.get(0)
                })
                .unwrap();
            // Like a real writer: commits of 50 rows back to back, with a
            // moment between them for other writers (tens of thousands of
            // rows a second).
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 200_000 {
                let tx = conn.unchecked_transaction().unwrap();
                for _ in 0..50 {
                    tx.execute(
                        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES (?1, ?2, 0, 0, 0)",
                        rusqlite::params![format!("load-{i}"), uid],
                    )
                    .unwrap();
                    i += 1;
                }
                tx.commit().unwrap();
                written.store(i, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    while written.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let target = s.dir.path().join("backup.db");
    let out = command()
        .env("AGENTRY_DATA_DIR", s.running().app.config.data_dir.clone())
        .args(["backup", target.to_str().unwrap()])
        .output()
        .unwrap();
    let during = written.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("integrity ok"));
    assert!(written.load(Ordering::Relaxed) > 500 && during > 500);

    let copy = rusqlite::Connection::open(&target).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n: i64 = copy
        .query_row(
            "SELECT COUNT(*) FROM users WHERE username = 'before-backup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    let load: i64 = copy
        .query_row(
            "SELECT COUNT(*) FROM sessions WHERE token_hash LIKE 'load-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        load >= 500,
        "the copy holds the rows committed before it started ({load})"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode, 0o600);
    drop(copy);

    // Refuses to overwrite without --force.
    let again = command()
        .env("AGENTRY_DATA_DIR", s.running().app.config.data_dir.clone())
        .args(["backup", target.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // The copy serves as a data directory: start a server on it and log in.
    let restore_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(restore_dir.path());
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::copy(&target, config.database_path()).unwrap();
    std::fs::copy(
        s.running().app.config.data_dir.join("master.key"),
        config.data_dir.join("master.key"),
    )
    .unwrap();
    config.admin_password = None;
    s.stop().await;
    let restored = TestServer::start_in(restore_dir, config).await;
    let c = client();
    login(&restored, &c, "admin", ADMIN_PASSWORD).await;
    restored.stop().await;
}
