//! Storage: the SQLite pool, migrations, and one repository module per
//! aggregate. Repositories are plain functions over a `&Connection`; they
//! know SQL and rows, never domain services or HTTP.

pub mod agents;
pub mod alert_rules;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod channels;
pub mod check_rollups;
pub mod instances;
pub mod key_material;
pub mod keyrings;
pub mod metrics;
pub mod migrate;
pub mod notifications;
pub mod pool;
pub mod roles;
pub mod sessions;
pub mod silences;
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
    /// One permit per pooled connection. A task waits for a connection here,
    /// as a parked future, instead of on a thread of the blocking pool:
    /// without it every request waiting for a connection held a thread, the
    /// pool grew towards tokio's 512, and memory (each thread's stack and
    /// allocator arenas) followed the number of waiting requests.
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Db {
    pub fn new(pool: Pool) -> Db {
        let permits = tokio::sync::Semaphore::new(pool.max_size() as usize);
        Db {
            pool,
            write_gate: std::sync::Arc::default(),
            permits: std::sync::Arc::new(permits),
        }
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
        let _permit = self.permit().await?;
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
        let _permit = self.permit().await?;
        spawn_blocking(move || {
            let mut conn = pool.get()?;
            write_tx(&mut conn, f)
        })
        .await
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the database is closing".into()))
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
