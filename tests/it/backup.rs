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

fn agentry_in(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    command()
        .env("AGENTRY_DATA_DIR", data_dir)
        .args(args)
        .output()
        .unwrap()
}

fn users_named(db: &std::path::Path, name: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM users WHERE username = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

/// Scheduled backups run on their cron schedule, are audited, and only
/// the newest `keep` stay.
#[actix_web::test]
async fn scheduled_backups_run_and_only_the_newest_stay() {
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_path_buf();
    let s = TestServer::start_with(|c| {
        c.backup.schedule = "* * * * * *".into();
        c.backup.keep = 2;
        c.backup.dir = Some(dir.clone());
    })
    .await;
    let (c, _) = admin(&s).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let audit: serde_json::Value =
            get_json(&c, &s, "/api/v1/audit?action=system.backup&outcome=success").await;
        if audit["items"].as_array().unwrap().len() >= 4 {
            assert_eq!(audit["items"][0]["details"]["scheduled"], true);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{audit}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    s.stop().await;
    let files: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        assert!(f
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("agentry-"));
        let conn = rusqlite::Connection::open(&f).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }
}

/// `agentry restore`: refused while serving and for anything that is not a
/// sound agentry backup under this master key; otherwise the data comes
/// back, the replaced database is kept, and the audit chain verifies.
#[actix_web::test]
async fn restore_checks_the_backup_then_brings_its_data_back() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_user(&s, &c, &csrf, "in-backup", "a long enough password").await;
    let data = s.running().app.config.data_dir.clone();
    let db = s.db_path();
    let backup = s.dir.path().join("nightly.db");
    let out = agentry_in(&data, &["backup", backup.to_str().unwrap()]);
    assert!(out.status.success());
    create_user(&s, &c, &csrf, "after-backup", "a long enough password").await;

    let out = agentry_in(&data, &["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it before restoring"));
    let dir = s.stop().await;

    // Not a database, damaged, not agentry's, another master key: refused,
    // and the live database is untouched.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just text").unwrap();
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    for b in bytes.iter_mut().skip(8192).take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&damaged, bytes).unwrap();
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    for (bad, why) in [
        (&junk, "not a database"),
        (&damaged, ""),
        (&foreign, "not an agentry database"),
        (&dir.path().join("missing.db"), "does not exist"),
    ] {
        let out = agentry_in(&data, &["restore", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} was restored");
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    assert_eq!(
        users_named(&db, "after-backup"),
        1,
        "refusals changed nothing"
    );
    assert!(!data.join(".restore-staging.db").exists());

    // The real one.
    let out = agentry_in(&data, &["restore", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("integrity ok") && said.contains("pre-restore-"),
        "{said}"
    );
    assert_eq!(users_named(&db, "in-backup"), 1);
    assert_eq!(users_named(&db, "after-backup"), 0);
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("agentry.db.pre-restore-"))
        .collect();
    // The replaced database, with its WAL and shared-memory files beside it.
    let main: Vec<_> = kept
        .iter()
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(main.len(), 1, "{kept:?}");
    assert_eq!(users_named(&data.join(main[0]), "after-backup"), 1);
    let verify = agentry_in(&data, &["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let restores: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'system.restore'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(restores, 1);
    drop(conn);

    // Disaster recovery onto a fresh host: the backup plus the master key.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_data = fresh.path().join("data");
    let out = agentry_in(&fresh_data, &["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no master key"));
    std::fs::copy(data.join("master.key"), fresh_data.join("master.key")).unwrap();
    let out = agentry_in(&fresh_data, &["restore", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut config = test_config(fresh.path());
    config.admin_password = None;
    let restored = TestServer::start_in(fresh, config).await;
    let (c, _) = admin(&restored).await;
    let me: serde_json::Value = c
        .get(restored.url("/api/v1/users?limit=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(me["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "in-backup"));
    restored.stop().await;

    // Under another master key the restore is refused.
    let wrong = tempfile::tempdir().unwrap();
    let wrong_data = wrong.path().join("data");
    std::fs::create_dir_all(&wrong_data).unwrap();
    let mut key = std::fs::read(data.join("master.key")).unwrap();
    key[0] ^= 1;
    std::fs::write(wrong_data.join("master.key"), key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            wrong_data.join("master.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::set_permissions(&wrong_data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let out = agentry_in(&wrong_data, &["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!wrong_data.join("agentry.db").exists());
}

/// A file-level replica (the database file and its WAL, as Litestream
/// keeps them) restores with every committed change, the WAL folded in.
#[actix_web::test]
async fn a_file_replica_with_its_wal_restores() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    for i in 0..20 {
        create_user(
            &s,
            &c,
            &csrf,
            &format!("replicated-{i}"),
            "a long enough password",
        )
        .await;
    }
    let data = s.running().app.config.data_dir.clone();
    let replica = s.dir.path().join("replica");
    std::fs::create_dir_all(&replica).unwrap();
    // The WAL holds commits not yet checkpointed into the main file.
    assert!(data.join("agentry.db-wal").metadata().unwrap().len() > 0);
    std::fs::copy(data.join("agentry.db"), replica.join("agentry.db")).unwrap();
    std::fs::copy(data.join("agentry.db-wal"), replica.join("agentry.db-wal")).unwrap();
    let dir = s.stop().await;

    let fresh = tempfile::tempdir().unwrap();
    let fresh_data = fresh.path().join("data");
    std::fs::create_dir_all(&fresh_data).unwrap();
    std::fs::copy(data.join("master.key"), fresh_data.join("master.key")).unwrap();
    let out = agentry_in(
        &fresh_data,
        &["restore", replica.join("agentry.db").to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        users_named(&fresh_data.join("agentry.db"), "replicated-19"),
        1
    );
    // The replica itself is left as it was.
    assert!(replica.join("agentry.db-wal").exists());
    drop(dir);
}
