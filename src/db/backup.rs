//! Online backup: a consistent copy of the live database while the server
//! keeps serving.
//!
//! The copy is taken with SQLite's backup API in a single step, which reads
//! one snapshot under a read transaction. In WAL mode readers never block
//! writers, so the server keeps writing; the snapshot simply does not see
//! commits that come after it started. The copy is written to a temporary
//! file beside the target, checked with `PRAGMA integrity_check`, synced, and
//! renamed into place, so a crash never leaves a half-written file at the
//! target path.

use std::path::{Path, PathBuf};

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose another path or pass --force")]
    Exists(PathBuf),
    #[error("the database {0} does not exist")]
    NoSource(PathBuf),
    #[error("backup copy failed its integrity check: {0}")]
    Integrity(String),
    #[error("backup failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("backup failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0} is not an agentry database (it has no schema_migrations table)")]
    NotAgentry(PathBuf),
    #[error("{path} has schema v{found}, newer than this binary (v{supported}); restore it with a newer agentry")]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: u32,
}

pub fn backup(source: &Path, target: &Path, overwrite: bool) -> Result<BackupReport, BackupError> {
    if !source.exists() {
        return Err(BackupError::NoSource(source.to_path_buf()));
    }
    if target.exists() && !overwrite {
        return Err(BackupError::Exists(target.to_path_buf()));
    }
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;

    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let tmp = target.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = copy_into(&src, &tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, target)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()?;
    }
    let bytes = std::fs::metadata(target)?.len();
    let check = Connection::open_with_flags(target, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let schema_version = super::migrate::current_version(&check)?;
    Ok(BackupReport {
        path: target.to_path_buf(),
        bytes,
        schema_version,
    })
}

fn copy_into(src: &Connection, tmp: &Path) -> Result<(), BackupError> {
    {
        let mut dst = Connection::open(tmp)?;
        {
            let b = Backup::new(src, &mut dst)?;
            // -1: every page in one step, i.e. one consistent snapshot.
            b.step(-1)?;
        }
        // A standalone file: no -wal beside it to lose in transit.
        dst.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })?;
        let verdict: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if verdict != "ok" {
            return Err(BackupError::Integrity(verdict));
        }
    }
    std::fs::File::open(tmp)?.sync_all()?;
    set_private(tmp)?;
    Ok(())
}

/// Backups hold password hashes and wrapped keys: owner-only, like the
/// database itself.
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Name of a scheduled backup taken at `ms`: sorts by time.
pub fn scheduled_name(ms: i64) -> String {
    format!("agentry-{}.db", crate::timefmt::compact_utc(ms))
}

fn is_scheduled(name: &str) -> bool {
    name.starts_with("agentry-")
        && name.ends_with(".db")
        && name.len() == "agentry-YYYYMMDDTHHMMSSZ.db".len()
}

/// Deletes the oldest scheduled backups in `dir` beyond `keep`; files not
/// named like scheduled backups are never touched. Returns what was removed.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_scheduled(n))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for n in names.into_iter().take(excess) {
        let p = dir.join(n);
        std::fs::remove_file(&p)?;
        removed.push(p);
    }
    Ok(removed)
}

/// Copies a backup (or a file replica such as Litestream's, with its
/// `-wal` beside it) to `staging`, folds any WAL into it, and checks it:
/// `PRAGMA integrity_check`, an agentry schema, not newer than this binary.
/// Returns its schema version. The source is never modified.
pub fn stage(source: &Path, staging: &Path) -> Result<u32, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoSource(source.to_path_buf()));
    }
    remove_with_sidecars(staging);
    std::fs::copy(source, staging)?;
    if sidecar(source, "-wal").is_file() {
        std::fs::copy(sidecar(source, "-wal"), sidecar(staging, "-wal"))?;
    }
    set_private(staging)?;
    let checked = (|| {
        let conn = Connection::open(staging)?;
        // Folds committed WAL frames into the file, then drops the WAL.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })?;
        let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if verdict != "ok" {
            return Err(BackupError::Integrity(verdict));
        }
        let has_schema: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )?;
        if !has_schema {
            return Err(BackupError::NotAgentry(source.to_path_buf()));
        }
        let found = super::migrate::current_version(&conn)?;
        let supported = super::migrate::latest_version();
        if found > supported {
            return Err(BackupError::TooNew {
                path: source.to_path_buf(),
                found,
                supported,
            });
        }
        Ok(found)
    })();
    if checked.is_err() {
        remove_with_sidecars(staging);
    } else {
        std::fs::File::open(staging)?.sync_all()?;
    }
    checked
}

/// Puts a staged database in place of `target`. The database it replaces
/// (with its `-wal` and `-shm`) is kept beside it as
/// `<target>.pre-restore-<tag>`; returns that path when there was one.
pub fn swap_in(staging: &Path, target: &Path, tag: &str) -> Result<Option<PathBuf>, BackupError> {
    let aside = PathBuf::from(format!("{}.pre-restore-{tag}", target.display()));
    let mut kept = None;
    if target.exists() {
        std::fs::rename(target, &aside)?;
        kept = Some(aside.clone());
    }
    for suffix in ["-wal", "-shm"] {
        let side = sidecar(target, suffix);
        if side.exists() {
            std::fs::rename(&side, sidecar(&aside, suffix))?;
        }
    }
    std::fs::rename(staging, target)?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(kept)
}

/// `<db>-wal` or `<db>-shm`: the files SQLite keeps beside a WAL database.
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

/// Removes a database file and its `-wal`/`-shm`, whichever exist.
pub fn remove_with_sidecars(db: &Path) {
    for p in [db.to_path_buf(), sidecar(db, "-wal"), sidecar(db, "-shm")] {
        let _ = std::fs::remove_file(p);
    }
}
