//! Forward-only schema migrations.
//!
//! Every `migrations/NNNN_name.sql` file is embedded in the binary and
//! applied in order, each in its own transaction together with the row that
//! records it in `schema_migrations` (and `PRAGMA user_version`, so the
//! `sqlite3` shell shows the version too). A database whose recorded
//! version is newer than the newest embedded migration is refused: an older
//! binary must not write to a schema it does not know.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "migrations/"]
#[include = "*.sql"]
struct MigrationFiles;

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub sql: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the database schema is version {db}, newer than this binary supports ({binary}); \
         run a newer agentry or restore a backup taken with this version"
    )]
    TooNew { db: u32, binary: u32 },
    #[error("migration {version} ({name}) failed: {source}")]
    Failed {
        version: u32,
        name: String,
        source: rusqlite::Error,
    },
    #[error("database error while migrating: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The embedded migrations, sorted by version. Names are checked by a unit
/// test: `NNNN_words.sql`, numbered 1, 2, 3... without gaps.
pub fn migrations() -> Vec<Migration> {
    let mut out: Vec<Migration> = MigrationFiles::iter()
        .filter_map(|file| {
            let (num, rest) = file.split_once('_')?;
            let version = num.parse().ok()?;
            let name = rest.strip_suffix(".sql")?.to_string();
            let data = MigrationFiles::get(&file)?;
            let sql = String::from_utf8(data.data.into_owned()).ok()?;
            Some(Migration { version, name, sql })
        })
        .collect();
    out.sort_by_key(|m| m.version);
    out
}

/// The schema version this binary brings.
pub fn latest_version() -> u32 {
    migrations().last().map(|m| m.version).unwrap_or(0)
}

/// The version recorded in the database (0 for a new file).
pub fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    let v: Option<u32> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    Ok(v.unwrap_or(0))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub from: u32,
    pub to: u32,
    pub applied: Vec<u32>,
}

/// Applies every pending migration. Safe to call on every start: a second
/// call applies nothing. Two processes starting at once serialise on the
/// IMMEDIATE transaction and the second finds nothing left to do.
pub fn migrate(conn: &mut Connection) -> Result<Report, MigrateError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let binary = latest_version();
    let from = current_version(conn)?;
    if from > binary {
        return Err(MigrateError::TooNew { db: from, binary });
    }
    let mut applied = Vec::new();
    for m in migrations() {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read inside the write lock: another process may have migrated.
        if current_version(&tx)? >= m.version {
            continue;
        }
        let fail = |source| MigrateError::Failed {
            version: m.version,
            name: m.name.clone(),
            source,
        };
        tx.execute_batch(&m.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, super::now_ms()],
        )
        .map_err(fail)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        applied.push(m.version);
    }
    Ok(Report {
        from,
        to: current_version(conn)?,
        applied,
    })
}

/// An in-memory database with every migration applied, for unit tests.
#[cfg(test)]
pub fn in_memory() -> Connection {
    let mut conn = Connection::open_in_memory().expect("an in-memory database opens");
    migrate(&mut conn).expect("the migrations apply");
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_without_gaps() {
        let all = migrations();
        assert!(!all.is_empty());
        for (i, m) in all.iter().enumerate() {
            assert_eq!(
                m.version as usize,
                i + 1,
                "migration {} out of sequence",
                m.name
            );
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "bad migration name {}",
                m.name
            );
        }
        // Every file in the folder must have been picked up.
        assert_eq!(MigrationFiles::iter().count(), all.len());
    }

    #[test]
    fn fresh_then_rerun_then_too_new() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let r = migrate(&mut conn).unwrap();
        assert_eq!(r.from, 0);
        assert_eq!(r.to, latest_version());
        let again = migrate(&mut conn).unwrap();
        assert!(again.applied.is_empty());
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, 'future', 0)",
            [latest_version() + 1],
        )
        .unwrap();
        match migrate(&mut conn) {
            Err(MigrateError::TooNew { db, binary }) => {
                assert_eq!(db, latest_version() + 1);
                assert_eq!(binary, latest_version());
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    /// An in-memory database with every migration before `version`
    /// applied, as a database written by an older release would be.
    fn migrated_before(version: u32) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for m in migrations().into_iter().filter(|m| m.version < version) {
            conn.execute_batch(&m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![m.version, m.name],
            )
            .unwrap();
        }
        conn
    }

    #[test]
    fn v21_tallies_every_stored_check_and_each_new_one() {
        let mut conn = migrated_before(21);
        const H: i64 = 3_600_000;
        conn.execute_batch(&format!(
            "INSERT INTO agents (id, name, agent_type, description, enabled, created_at, updated_at)
               VALUES ('a', 'a', 'planner', '', 1, 0, 0);
             INSERT INTO instances (id, agent_id, name, kind, url, interval_seconds, timeout_ms,
               enabled, created_at, updated_at) VALUES ('i', 'a', 'i', 'heartbeat', NULL, 30, 5000, 1, 0, 0);
             -- Hour 10: two raw results (one failed) and a minute rollup of 3 (1 failed).
             INSERT INTO check_results (instance_id, at, ok) VALUES ('i', {a}, 1), ('i', {b}, 0);
             INSERT INTO check_rollups VALUES ('i', 60000, {c}, 3, 1, 5, 9);
             -- Hour 2: an hour rollup of 60 (6 failed).
             INSERT INTO check_rollups VALUES ('i', 3600000, {d}, 60, 6, 5, 9);",
            a = 10 * H + 5,
            b = 10 * H + 60_000,
            c = 10 * H + 120_000,
            d = 2 * H,
        ))
        .unwrap();
        migrate(&mut conn).unwrap();
        let tallies = |conn: &Connection| -> Vec<(i64, i64, i64)> {
            conn.prepare("SELECT hour, checks, failures FROM check_tallies ORDER BY hour")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(tallies(&conn), [(2 * H, 60, 6), (10 * H, 5, 2)]);
        // New results are counted as they are written.
        conn.execute_batch(&format!(
            "INSERT INTO check_results (instance_id, at, ok) VALUES ('i', {}, 0), ('i', {}, 1)",
            10 * H + 7,
            11 * H
        ))
        .unwrap();
        assert_eq!(
            tallies(&conn),
            [(2 * H, 60, 6), (10 * H, 6, 3), (11 * H, 1, 0)]
        );
        // And go with their instance.
        conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM instances;")
            .unwrap();
        assert!(tallies(&conn).is_empty());
    }

    #[test]
    fn telemetry_goes_by_age_then_oldest_minutes_first_down_to_the_budget() {
        const M: i64 = 60_000;
        let mut conn = migrated_before(25);
        for k in 1..=4i64 {
            conn.execute(
                "INSERT INTO spans VALUES (?1, 'aaaaaaaaaaaaaaaa', ?2, 's', 'n', 1, 1, 2, 0, '',
                 '{}', '[]', '{}', '', 0, 'agent', ?3, 100)",
                rusqlite::params![
                    format!("{k:032x}"),
                    (k % 2 == 0).then_some("bbbbbbbbbbbbbbbb"),
                    k * M
                ],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        // v25: roots mark where traces enter; the usage is backfilled.
        let entries: i64 = conn
            .query_row("SELECT COUNT(*) FROM spans WHERE entry = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(entries, 2);
        assert_eq!(crate::db::telemetry_usage::total(&conn).unwrap(), 400);
        let log = crate::db::logs::LogRow {
            id: 0,
            time_ns: 1,
            severity: 9,
            severity_text: "INFO".into(),
            body: "disk nearly full".into(),
            attributes: serde_json::json!({}),
            resource: serde_json::json!({}),
            service: "s".into(),
            scope: String::new(),
            trace_id: None,
            span_id: None,
            dropped_attributes: 0,
        };
        let (_, bytes) = crate::db::logs::insert(&conn, &[log], "agent", 5 * M).unwrap();
        crate::db::telemetry_usage::add(&conn, 5 * M, bytes).unwrap();
        // Minute 1 is past retention; minute 2 goes for the budget.
        let p = crate::db::telemetry_usage::prune(&conn, 2 * M, (250 + bytes) as u64).unwrap();
        assert_eq!((p.spans, p.logs), (2, 0));
        assert_eq!(
            crate::db::telemetry_usage::total(&conn).unwrap(),
            200 + bytes
        );
        let found = |conn: &Connection| -> i64 {
            conn.query_row(
                "SELECT COUNT(*) FROM logs_text WHERE logs_text MATCH 'disk'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(found(&conn), 1);
        let p = crate::db::telemetry_usage::prune(&conn, 0, 0).unwrap();
        assert_eq!((p.spans, p.logs), (2, 1));
        assert_eq!(found(&conn), 0, "the word index follows its rows");
        assert_eq!(crate::db::telemetry_usage::total(&conn).unwrap(), 0);
    }

    #[test]
    fn v24_lets_the_system_agent_service_role_send_telemetry() {
        let mut conn = migrated_before(24);
        conn.execute_batch(
            "INSERT INTO roles (name, system, created_at, updated_at) VALUES
                 ('agent_service', 1, 0, 0), ('my_agents', 0, 0, 0);
             INSERT INTO role_permissions VALUES ('agent_service', 'metrics:report');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let held: Vec<(String, String)> = conn
            .prepare("SELECT role, pattern FROM role_permissions ORDER BY role, pattern")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            held,
            [
                ("agent_service".to_string(), "metrics:report".to_string()),
                ("agent_service".to_string(), "telemetry:write".to_string())
            ]
        );
    }

    #[test]
    fn agent_names_that_differ_only_in_case_are_renamed_by_v12() {
        let mut conn = migrated_before(12);
        for (id, name, at) in [
            ("0001-aaaaaaaaaaaa", "svc-agent", 1),
            ("0002-bbbbbbbbbbbb", "SVC-AGENT", 2),
            ("0003-cccccccccccc", "Svc-Agent", 3),
            ("0004-dddddddddddd", "other", 1),
        ] {
            conn.execute(
                "INSERT INTO agents (id, name, agent_type, description, enabled, created_at, updated_at)
                 VALUES (?1, ?2, 'planner', '', 1, ?3, ?3)",
                rusqlite::params![id, name, at],
            )
            .unwrap();
        }
        let r = migrate(&mut conn).unwrap();
        assert_eq!(r.to, latest_version());
        let names: Vec<String> = conn
            .prepare("SELECT name FROM agents ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            names,
            [
                "svc-agent",
                "SVC-AGENT-bbbbbbbbbbbb",
                "Svc-Agent-cccccccccccc",
                "other"
            ]
        );
        let dup = conn.execute(
            "INSERT INTO agents (id, name, agent_type, description, enabled, created_at, updated_at)
             VALUES ('x', 'OTHER', 'planner', '', 1, 0, 0)",
            [],
        );
        assert!(dup.is_err(), "the index refuses a case variant");
    }
}
