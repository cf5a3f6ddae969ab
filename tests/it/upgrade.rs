//! Upgrade from the first released schema: a data directory written by the
//! first release (schema v1, `tests/fixtures/v1/`, see its README) is
//! opened by the current binary, migrated forward, and every record it held
//! is still there and still usable.

use std::collections::BTreeMap;

use crate::support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1");
/// The password the first admin was given when the fixture was made.
const V1_ADMIN_PASSWORD: &str = "first release admin password";

type Rows = Vec<BTreeMap<String, String>>;

/// Every row of `table`, every column the v1 schema had, as text.
fn rows(db: &std::path::Path, table: &str, columns: &[&str]) -> Rows {
    let conn = rusqlite::Connection::open(db).unwrap();
    let sql = format!(
        "SELECT {} FROM {table} ORDER BY rowid",
        columns
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| {
        let mut m = BTreeMap::new();
        for (i, c) in columns.iter().enumerate() {
            m.insert(c.to_string(), r.get::<_, String>(i)?);
        }
        Ok(m)
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn columns(db: &std::path::Path, table: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[actix_web::test]
async fn a_first_release_database_migrates_with_every_record_intact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["agentry.db", "master.key"] {
        std::fs::copy(format!("{FIXTURE}/{f}"), data.join(f)).unwrap();
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        for f in ["agentry.db", "master.key"] {
            std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let db = data.join("agentry.db");
    let before_version: u32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before_version, 1, "the fixture is schema v1");
    let tables = [
        "users",
        "agents",
        "roles",
        "role_permissions",
        "role_assignments",
    ];
    let before: Vec<(String, Vec<String>, Rows)> = tables
        .iter()
        .filter(|t| !columns(&db, t).is_empty())
        .map(|t| {
            let cols = columns(&db, t);
            let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
            (t.to_string(), cols.clone(), rows(&db, t, &refs))
        })
        .collect();
    assert!(before.iter().any(|(t, _, r)| t == "users" && r.len() >= 3));

    let mut config = test_config(dir.path());
    config.admin_password = None;
    let s = TestServer::start_in(dir, config).await;
    let c = client();
    // The first release's admin signs in with the password it had.
    let csrf = login(&s, &c, "admin", V1_ADMIN_PASSWORD).await;
    let users: serde_json::Value = get_json(&c, &s, "/api/v1/users?limit=100").await;
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    for n in ["admin", "alice", "bob"] {
        assert!(names.contains(&n), "{names:?}");
    }
    // And the new features work on it.
    let agent = create_agent(&s, &c, &csrf, "after-upgrade", "planner").await;
    assert!(!agent.is_empty());
    let db = s.db_path();
    let dir = s.stop().await;

    let after_version: u32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(after_version > 1);
    for (table, cols, old) in before {
        let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
        let now = rows(&db, &table, &refs);
        for row in &old {
            assert!(now.contains(row), "{table}: lost or changed {row:?}");
        }
    }
    let verify = command()
        .env("AGENTRY_DATA_DIR", dir.path().join("data"))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
