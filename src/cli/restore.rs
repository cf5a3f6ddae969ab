//! `agentry restore PATH`: replace the database with a backup (or a file
//! replica of it), checked before anything is replaced.
//!
//! The backup is copied to a staging file in the data directory, any WAL
//! beside it is folded in, and it must pass `PRAGMA integrity_check`, be an
//! agentry database no newer than this binary, migrate forward, and belong
//! to this data directory's master key. Only then is it renamed into place;
//! the database it replaces is kept as `agentry.db.pre-restore-<UTC>`.
//! Refused while a server uses the data directory.

use std::path::{Path, PathBuf};

use crate::audit::writer;
use crate::audit::{ChainKey, Outcome};
use crate::config::Config;
use crate::crypto::master_key::KEY_FILE;
use crate::db::{self, backup, migrate};
use crate::server::{self, StartError};

pub fn run(config: &Config, path: PathBuf) -> Result<(), String> {
    server::prepare_data_dir(&config.data_dir).map_err(|e| e.to_string())?;
    let _lock = server::lock_data_dir(&config.data_dir).map_err(|e| match e {
        StartError::Locked(_) => {
            "a server is using this data directory; stop it before restoring".to_string()
        }
        other => other.to_string(),
    })?;
    if config.master_key.is_none() && !config.data_dir.join(KEY_FILE).exists() {
        return Err(format!(
            "no master key in {}: put the master key the backup was made under there \
             (or set AGENTRY_MASTER_KEY) before restoring",
            config.data_dir.display()
        ));
    }
    let staging = config.data_dir.join(".restore-staging.db");
    let found = backup::stage(&path, &staging).map_err(|e| e.to_string())?;
    let to = match prepare(config, &staging, &path, found) {
        Ok(to) => to,
        Err(e) => {
            backup::remove_with_sidecars(&staging);
            return Err(e);
        }
    };
    let tag = crate::timefmt::compact_utc(db::now_ms());
    let aside =
        backup::swap_in(&staging, &config.database_path(), &tag).map_err(|e| e.to_string())?;
    println!(
        "restored {} (schema v{found}{}, integrity ok) into {}",
        path.display(),
        if to != found {
            format!(", migrated to v{to}")
        } else {
            String::new()
        },
        config.database_path().display()
    );
    if let Some(a) = aside {
        println!("the database it replaced is kept as {}", a.display());
    }
    Ok(())
}

/// Migrates the staged copy, checks it against the master key, and records
/// the restore in its own audit chain. Returns the schema version reached.
fn prepare(config: &Config, staging: &Path, source: &Path, found: u32) -> Result<u32, String> {
    let mut conn = db::pool::open_single(staging, server::pragmas(config))
        .map_err(|e| format!("cannot open the staged copy: {e}"))?;
    let report = migrate::migrate(&mut conn).map_err(|e| e.to_string())?;
    let (master_key, _) = server::load_master_key(config).map_err(|e| e.to_string())?;
    let (_, keys) = server::unlock_database(config, &mut conn, master_key).map_err(|e| {
        format!("{e} (a backup can only be restored with the master key it was made under)")
    })?;
    let event = super::cli_context()
        .event("system.restore", Outcome::Success)
        .detail("from", source.display().to_string())
        .detail("schema_version", found)
        .detail("migrated_to", report.to);
    writer::append_one(&mut conn, &ChainKey::new(keys.audit_chain), event)
        .map_err(|e| e.to_string())?;
    // One self-contained file to rename into place.
    db::wal::into_single_file(&conn).map_err(|e| e.to_string())?;
    Ok(report.to)
}
