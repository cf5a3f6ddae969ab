//! Keeping the write-ahead log bounded under uninterrupted load.
//!
//! SQLite's automatic checkpoints are PASSIVE: they copy what they can into
//! the database file but never wait for readers. The log only starts over
//! from its beginning when a writer finds every frame copied *and* no
//! reader still looking at any of them. An appliance that always has a
//! request reading never reaches that moment, so the log grows by every
//! write for as long as the load lasts (a soak grew it to 1.8 GB in three
//! minutes, and throughput fell with it: every read searches a larger log
//! index). A TRUNCATE checkpoint waits, briefly, for the readers that began
//! before it to finish (new readers read the database file, which now holds
//! everything) and then empties the log.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

/// The log is emptied once it is larger than this: the size SQLite is told
/// to truncate a restarted log back to (`journal_size_limit`). SQLite's own
/// passive checkpoints run every 1,000 pages (about 4 MiB), and Litestream,
/// when it runs beside agentry, checkpoints by itself well below this size,
/// so the two only meet when a log has grown past what either keeps it to.
pub const TRUNCATE_ABOVE_BYTES: u64 = super::pool::JOURNAL_SIZE_LIMIT;

/// How long the checkpoint waits for the writer lock and for older
/// readers. Writers queue behind it meanwhile, so it is kept short: a
/// checkpoint that gives up is simply tried again at the next tick.
pub const WAIT: Duration = Duration::from_millis(500);

/// Size of the log on disk (0 when there is none).
pub fn size(database: &Path) -> u64 {
    std::fs::metadata(super::backup::sidecar(database, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// What one checkpoint did (the three numbers `PRAGMA wal_checkpoint`
/// returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The wait ran out (the writer lock or an old reader): the log was
    /// copied as far as possible but not emptied.
    pub busy: bool,
    /// Frames in the log when it ran (-1 when it could not look).
    pub log_frames: i64,
    /// Frames copied into the database file.
    pub checkpointed_frames: i64,
}

/// Folds the write-ahead log into the database and leaves WAL mode, so
/// the file is one self-contained database to move (a restore's staged
/// copy).
pub fn into_single_file(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
        r.get::<_, String>(0)
    })?;
    Ok(())
}

/// Copies the log into the database file and empties it, waiting at most
/// the connection's busy timeout.
pub fn truncate(conn: &Connection) -> rusqlite::Result<Checkpoint> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok(Checkpoint {
            busy: r.get::<_, i64>(0)? != 0,
            log_frames: r.get(1)?,
            checkpointed_frames: r.get(2)?,
        })
    })
}

/// Runs [`truncate`] once the log is larger than a threshold
/// ([`TRUNCATE_ABOVE_BYTES`] in the appliance), on a connection of its own (opened on first
/// use, with [`WAIT`] as its busy timeout), so a checkpoint neither waits
/// for a pool slot nor holds one. Blocking: call it off the async workers.
pub struct Keeper {
    database: PathBuf,
    above_bytes: u64,
    conn: Mutex<Option<Connection>>,
}

impl Keeper {
    pub fn new(database: PathBuf, above_bytes: u64) -> Keeper {
        Keeper {
            database,
            above_bytes,
            conn: Mutex::new(None),
        }
    }

    /// `Ok(None)` when the log was small, or when the previous run is still
    /// going (a slow checkpoint overlapping the next tick).
    pub fn run(&self) -> rusqlite::Result<Option<Checkpoint>> {
        let Ok(mut slot) = self.conn.try_lock() else {
            return Ok(None);
        };
        if size(&self.database) <= self.above_bytes {
            return Ok(None);
        }
        if slot.is_none() {
            let pragmas = super::pool::Pragmas { busy_timeout: WAIT };
            *slot = Some(super::pool::open_single(&self.database, pragmas)?);
        }
        let conn = slot.as_ref().expect("opened above");
        let out = truncate(conn);
        if out.is_err() {
            // Reopen next time rather than keep a connection in an unknown state.
            *slot = None;
        }
        out.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn wal_db(dir: &Path) -> (Connection, PathBuf) {
        let path = dir.join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (v BLOB);",
        )
        .unwrap();
        (conn, path)
    }

    fn fill(conn: &Connection, mib: usize) {
        for _ in 0..mib * 4 {
            conn.execute("INSERT INTO t VALUES (zeroblob(262144))", [])
                .unwrap();
        }
    }

    #[test]
    fn a_small_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = wal_db(dir.path());
        fill(&conn, 1);
        assert!(size(&path) > 0);
        assert_eq!(Keeper::new(path, 2 * MIB).run().unwrap(), None);
    }

    #[test]
    fn a_large_log_is_emptied_even_while_another_connection_has_read() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = wal_db(dir.path());
        fill(&conn, 3);
        // A reader that has finished its read: it still has the connection
        // open, which is what a pool does between requests.
        let reader = Connection::open(&path).unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 12);
        let before = size(&path);
        assert!(before > 2 * MIB, "{before}");

        let cp = Keeper::new(path.clone(), 2 * MIB).run().unwrap().unwrap();
        assert!(!cp.busy);
        assert_eq!(cp.log_frames, 0, "TRUNCATE reports the emptied log");
        assert_eq!(size(&path), 0);
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 12, "nothing lost");
    }

    #[test]
    fn an_open_read_transaction_makes_it_busy_not_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, path) = wal_db(dir.path());
        fill(&conn, 3);
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        fill(&conn, 1);
        conn.busy_timeout(Duration::from_millis(50)).unwrap();

        let cp = truncate(&conn).unwrap();
        assert!(cp.busy, "{cp:?}");
        assert!(size(&path) > 2 * MIB);
        reader.execute_batch("COMMIT").unwrap();

        let cp = truncate(&conn).unwrap();
        assert!(!cp.busy);
        assert_eq!(size(&path), 0);
    }
}
