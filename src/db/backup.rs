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
