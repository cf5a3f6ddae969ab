//! The r2d2 pool and the pragmas every connection gets.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

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
            "PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;",
        )
    }
}

impl r2d2::CustomizeConnection<Connection, rusqlite::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        self.apply(conn)
    }
}

/// Opens the pool. The first connection is made eagerly so a broken path or
/// an unreadable file is reported at start-up, not on the first request.
pub fn open(path: &Path, pragmas: Pragmas, size: u32) -> Result<Pool, r2d2::Error> {
    let manager = SqliteConnectionManager::file(path);
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(pragmas))
        .build(manager)
}

/// One connection with the same pragmas, for the CLI.
pub fn open_single(path: &Path, pragmas: Pragmas) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    pragmas.apply(&conn)?;
    Ok(conn)
}
