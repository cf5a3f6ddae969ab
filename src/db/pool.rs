//! The r2d2 pool and the pragmas every connection gets.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// What a restarted write-ahead log is truncated back to (64 MiB).
pub const JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Applied to every connection as it is opened. busy_timeout comes first so
/// that switching to WAL itself waits for a concurrent writer.
///
/// `synchronous=NORMAL` in WAL mode keeps every committed transaction across
/// a process crash (`kill -9`): the WAL is written before COMMIT returns and
/// only an OS crash or power loss can lose the last transactions.
#[derive(Debug, Clone, Copy)]
pub struct Pragmas {
    pub busy_timeout: Duration,
}

impl Pragmas {
    pub fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.busy_timeout(self.busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "cannot switch the database to WAL (journal_mode is {mode})"
            )));
        }
        conn.execute_batch(
            // journal_size_limit: when a checkpoint resets the WAL it is
            // truncated to 64 MiB rather than keeping its high-water mark
            // (a 10-minute soak left 400 MiB). Readers that never pause can
            // still keep it from restarting at all: `db::wal` sees to that.
            &format!(
                "PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA temp_store = MEMORY;
                 PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
            ),
        )
    }
}

impl r2d2::CustomizeConnection<Connection, rusqlite::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        self.apply(conn)
    }
}

/// Creates the database file owner-only (0600) when it does not exist yet,
/// whatever the umask. SQLite gives its `-wal` and `-shm` files the main
/// file's mode, so all three stay private.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens the pool. The first connection is made eagerly so a broken path or
/// an unreadable file is reported at start-up, not on the first request.
pub fn open(path: &Path, pragmas: Pragmas, size: u32) -> Result<Pool, String> {
    create_private(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let manager = SqliteConnectionManager::file(path);
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(pragmas))
        .build(manager)
        .map_err(|e| e.to_string())
}

/// One connection with the same pragmas, for the CLI.
pub fn open_single(path: &Path, pragmas: Pragmas) -> rusqlite::Result<Connection> {
    create_private(path)
        .map_err(|e| rusqlite::Error::InvalidPath(format!("{}: {e}", path.display()).into()))?;
    let conn = Connection::open(path)?;
    pragmas.apply(&conn)?;
    Ok(conn)
}
