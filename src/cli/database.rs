//! `agentry migrate`, `agentry backup` and `agentry audit verify`: the
//! database and its audit chain, offline.

use super::*;

pub(super) fn run_migrate(config: &Config) -> Result<(), String> {
    server::prepare_data_dir(&config.data_dir).map_err(|e| e.to_string())?;
    let mut conn = db::pool::open_single(&config.database_path(), server::pragmas(config))
        .map_err(|e| format!("cannot open {}: {e}", config.database_path().display()))?;
    let report = migrate::migrate(&mut conn).map_err(|e| e.to_string())?;
    if report.applied.is_empty() {
        println!("schema is up to date at v{}", report.to);
    } else {
        println!(
            "migrated schema from v{} to v{} (applied {:?})",
            report.from, report.to, report.applied
        );
    }
    Ok(())
}

pub(super) fn run_backup(config: &Config, path: PathBuf, force: bool) -> Result<(), String> {
    let report =
        backup::backup(&config.database_path(), &path, force).map_err(|e| e.to_string())?;
    // Recorded after the copy, so the copy does not contain its own record.
    // The database exists and is live: no migration, and a generous wait
    // for the write lock behind the server's own writes.
    let pragmas = db::pool::Pragmas {
        busy_timeout: std::time::Duration::from_secs(60),
    };
    let mut conn =
        db::pool::open_single(&config.database_path(), pragmas).map_err(|e| e.to_string())?;
    let (master_key, _) = server::load_master_key(config).map_err(|e| e.to_string())?;
    let (_, keys) =
        server::unlock_database(config, &mut conn, master_key).map_err(|e| e.to_string())?;
    let key = ChainKey::new(keys.audit_chain);
    let event = cli_context()
        .event("system.backup", Outcome::Success)
        .detail("path", report.path.display().to_string())
        .detail("bytes", report.bytes);
    writer::append_one(&mut conn, &key, event).map_err(|e| e.to_string())?;
    println!(
        "backup written to {} ({} bytes, schema v{}, integrity ok)",
        report.path.display(),
        report.bytes,
        report.schema_version
    );
    Ok(())
}

pub(super) fn audit_verify(config: &Config, saved: Option<(i64, String)>) -> Result<(), String> {
    let Opened {
        conn, chain: key, ..
    } = open_for_cli(config)?;
    let saved = saved.map(|(seq, hash)| Head { seq, hash });
    let report = audit::verify_sync(&conn, &key, saved).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if report.ok {
        Ok(())
    } else {
        let bad = report
            .first_bad
            .map(|b| format!("record {}: {}", b.seq, b.problem))
            .unwrap_or_default();
        Err(format!("the audit chain does not verify: {bad}"))
    }
}
