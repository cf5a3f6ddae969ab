//! First start, restarts, and migrations against a real data directory.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn first_start_creates_private_files_and_seeds() {
    let s = TestServer::start().await;
    let data = s.running().app.config.data_dir.clone();
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let key = data.join("master.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(s.running().master_key_created);
    for f in ["agentry.db", "agentry.db-wal", "agentry.db-shm"] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let admin = s.running().seeded.admin.as_ref().expect("first admin");
    assert_eq!(admin.username, "admin");
    assert!(
        admin.generated_password.is_none(),
        "password came from the config"
    );
    let db = s.db_path();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM roles WHERE system = 1"), 7);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM role_inherits WHERE role = 'workflow_manager' AND parent = 'workflow_operator'"),
        1
    );
    let v = agentry::db::migrate::latest_version() as i64;
    assert_eq!(count(&db, "SELECT MAX(version) FROM schema_migrations"), v);
    assert_eq!(count(&db, "PRAGMA user_version"), v);
    let mode: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    s.stop().await;
}

#[tokio::test]
async fn generated_admin_password_when_none_is_given() {
    let s = TestServer::start_with(|c| c.admin_password = None).await;
    let pw = {
        use secrecy::ExposeSecret;
        s.running()
            .seeded
            .admin
            .as_ref()
            .unwrap()
            .generated_password
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_string()
    };
    assert!(pw.len() >= 20);
    let c = client();
    login(&s, &c, "admin", &pw).await;
    s.stop().await;
}

#[tokio::test]
async fn second_start_changes_nothing() {
    let s = TestServer::start().await;
    let db = s.db_path();
    let before = (
        count(&db, "SELECT COUNT(*) FROM users"),
        count(&db, "SELECT COUNT(*) FROM roles"),
        count(&db, "SELECT COUNT(*) FROM role_assignments"),
        count(&db, "SELECT COUNT(*) FROM schema_migrations"),
        std::fs::read(s.running().app.config.data_dir.join("master.key")).unwrap(),
    );
    let dir = s.stop().await;
    let config = test_config(dir.path());
    let s = TestServer::start_in(dir, config).await;
    assert!(s.running().seeded.admin.is_none());
    assert_eq!(s.running().seeded.roles_added, 0);
    assert!(!s.running().master_key_created);
    let after = (
        count(&db, "SELECT COUNT(*) FROM users"),
        count(&db, "SELECT COUNT(*) FROM roles"),
        count(&db, "SELECT COUNT(*) FROM role_assignments"),
        count(&db, "SELECT COUNT(*) FROM schema_migrations"),
        std::fs::read(s.running().app.config.data_dir.join("master.key")).unwrap(),
    );
    assert_eq!(before, after);
    // The admin can still log in with the same password.
    login(&s, &client(), "admin", ADMIN_PASSWORD).await;
    s.stop().await;
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let s = TestServer::start().await;
    let db = s.db_path();
    let dir = s.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let config = test_config(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = match agentry::start(config, listener).await {
        Ok(_) => panic!("a newer schema must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("9999") && err.contains("newer"), "{err}");
    // The CLI refuses too, with a non-zero exit.
    let out = command()
        .env("AGENTRY_DATA_DIR", dir.path().join("data"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this binary"));
}

#[tokio::test]
async fn a_world_readable_master_key_is_refused() {
    let s = TestServer::start().await;
    let data = s.running().app.config.data_dir.clone();
    let dir = s.stop().await;
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = match agentry::start(test_config(dir.path()), listener).await {
        Ok(_) => panic!("must refuse"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("chmod 600"), "{err}");
}
