//! Storage: the SQLite pool, migrations, and one repository module per
//! aggregate. Repositories are plain functions over a `&Connection`; they
//! know SQL and rows, never domain services or HTTP.

pub mod agents;
pub mod alert_rules;
pub mod alerts;
pub mod api_keys;
pub mod approvals;
pub mod backup;
pub mod channels;
pub mod check_rollups;
pub mod check_tallies;
pub mod clauses;
pub mod client_keys;
pub mod factors;
pub mod instances;
pub mod key_material;
pub mod keyrings;
pub mod logs;
pub mod mcp_servers;
pub mod metric_reads;
pub mod metrics;
pub mod migrate;
pub mod notifications;
pub mod oauth_clients;
pub mod oauth_grants;
pub mod pool;
pub mod recovery_codes;
pub mod roles;
pub mod sessions;
pub mod silences;
pub mod spans;
pub mod telemetry_resources;
pub mod telemetry_usage;
pub mod tokens;
pub mod users;
pub mod wal;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
pub use pool::Pool;

/// Handle to the database shared by the whole process. Cloning is cheap.
///
/// SQLite calls block (a writer may wait up to `busy_timeout`), so they run
/// on tokio's blocking pool, never on an async worker.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Writers of this process take turns here rather than in SQLite's
    /// busy handler, which sleeps in growing steps (up to 100 ms) while
    /// the lock may already be free: under many concurrent writers the
    /// queue keeps the database busy instead of idle.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Slots for long reads (see [`Db::long_read`]).
    long_reads: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Held by a long read for as long as it runs: its long-read slot.
pub struct LongRead {
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Db {
    pub fn new(pool: Pool) -> Db {
        let size = pool.max_size() as usize;
        Db {
            pool,
            write_gate: std::sync::Arc::default(),
            long_reads: std::sync::Arc::new(tokio::sync::Semaphore::new((size / 4).max(1))),
        }
    }

    /// Reserves a connection for a read that lasts as long as a client
    /// takes to download it (an audit export). At most a quarter of the pool
    /// (at least one connection) is held that way, so slow downloads cannot
    /// starve every other request; past that the caller is refused at once
    /// rather than queued.
    pub fn long_read(&self) -> Result<LongRead> {
        let slot = self.long_reads.clone().try_acquire_owned().map_err(|_| {
            Error::Unavailable(
                "too many exports are running at once; try again when one has finished".into(),
            )
        })?;
        Ok(LongRead { _slot: slot })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
    }

    /// Runs `f` inside an IMMEDIATE transaction (takes the write lock up
    /// front, so concurrent writers queue on busy_timeout instead of failing
    /// on upgrade) and commits when it returns `Ok`. Nothing is written when
    /// it returns `Err`.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let _turn = self.write_gate.lock().await;
        spawn_blocking(move || {
            let mut conn = pool.get()?;
            write_tx(&mut conn, f)
        })
        .await
    }
}

/// Synchronous form of [`Db::write`] for the CLI and start-up code.
pub fn write_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("database task failed: {e}")))?
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

/// A fresh opaque id (UUIDv7: unique, and sorts by creation time, which
/// keeps cursor pagination stable).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `e` is a UNIQUE/PRIMARY KEY violation (for 409 mapping).
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ffi::ErrorCode::ConstraintViolation
            && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY))
}

/// Reads a JSON text column into `T`; a value that does not parse is a
/// conversion error (the database was edited by hand), not a panic.
pub fn json_column<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(pool_size: u32) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let pragmas = pool::Pragmas {
            busy_timeout: std::time::Duration::from_secs(1),
        };
        let pool = pool::open(&dir.path().join("t.db"), pragmas, pool_size).unwrap();
        (dir, Db::new(pool))
    }

    #[tokio::test]
    async fn long_reads_get_a_quarter_of_the_pool_and_the_rest_is_refused_at_once() {
        let (_dir, db) = db(8);
        let a = db.long_read().unwrap();
        let b = db.long_read().unwrap();
        let refused = db.long_read().err().unwrap();
        assert!(matches!(refused, Error::Unavailable(_)), "{refused}");
        // Ordinary reads still have the other six connections.
        let n: i64 = db
            .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 1);
        drop(a);
        let _c = db.long_read().unwrap();
        drop(b);
    }

    #[tokio::test]
    async fn a_small_pool_still_allows_one_long_read() {
        let (_dir, db) = db(2);
        let held = db.long_read().unwrap();
        assert!(db.long_read().is_err());
        drop(held);
        assert!(db.long_read().is_ok());
    }
}
