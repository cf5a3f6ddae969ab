//! `agentry keys rotate-master`: replace the master key.
//!
//! The server holds the master key's derived keys in memory, so the
//! rotation is refused while a server uses the data directory (it holds
//! `agentry.lock`). Order of steps, so that no crash loses a key:
//! 1. the new key is written to `master.key.new` (or `--new-key-file`);
//! 2. one transaction rewraps every data key, signing key and appliance key
//!    and replaces the check value, with its audit record;
//! 3. `master.key.new` is renamed over `master.key` (after linking the old
//!    one to a dated backup with `--keep-old`).
//!
//! A crash between 2 and 3 leaves a database that only the new key opens;
//! the next start sees `master.key.new` match and finishes step 3.

use std::path::PathBuf;

use super::{audited, cli_context, open_for_cli, Opened};
use crate::audit::Outcome;
use crate::config::Config;
use crate::crypto::appliance_keys;
use crate::crypto::master_key::PENDING_FILE;
use crate::crypto::MasterKey;
use crate::server::{self, StartError};

pub fn run(config: &Config, keep_old: bool, new_key_file: Option<PathBuf>) -> Result<(), String> {
    let from_env = config.master_key.is_some();
    let target = match (from_env, new_key_file) {
        (true, None) => {
            return Err(format!(
                "the master key comes from {}: pass --new-key-file PATH to receive the new one",
                crate::config::ENV_MASTER_KEY
            ))
        }
        (true, Some(_)) if keep_old => {
            return Err(format!(
                "--keep-old keeps the old key file; with {} keep the old value yourself",
                crate::config::ENV_MASTER_KEY
            ))
        }
        (true, Some(p)) => p,
        (false, Some(_)) => {
            return Err(
                "--new-key-file is for a master key given in the environment; \
                 the key file in the data directory is replaced in place"
                    .into(),
            )
        }
        (false, None) => config.data_dir.join(PENDING_FILE),
    };
    server::prepare_data_dir(&config.data_dir).map_err(|e| e.to_string())?;
    let _lock = server::lock_data_dir(&config.data_dir).map_err(|e| match e {
        StartError::Locked(_) => format!(
            "{e}: a running server cannot switch master keys; stop it (systemctl stop agentry), rotate, then start it"
        ),
        e => e.to_string(),
    })?;
    // Checks the current key against the database (and finishes an
    // interrupted rotation) before anything is written.
    let Opened {
        mut conn,
        chain,
        master,
    } = open_for_cli(config)?;
    if !from_env {
        // The database matched the current key, so a leftover pending key
        // is from a rotation that never committed.
        let _ = std::fs::remove_file(&target);
    }
    let new = MasterKey::generate();
    new.write_new(&target).map_err(|e| e.to_string())?;
    let event = cli_context().event("crypto.master_key.rotate", Outcome::Success);
    let rewrapped = match audited(&mut conn, &chain, event, |tx| {
        appliance_keys::rewrap_all(tx, &master, &new)
    }) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&target);
            return Err(format!("nothing was changed: {e}"));
        }
    };
    println!(
        "master key rotated: {} data key(s), {} signing key(s) and {} appliance key(s) rewrapped",
        rewrapped.data_keys, rewrapped.signing_keys, rewrapped.appliance_keys
    );
    if from_env {
        println!(
            "the new key is in {}: put its content into {} before the next start, then delete the file",
            target.display(),
            crate::config::ENV_MASTER_KEY
        );
        return Ok(());
    }
    let backup = MasterKey::install_pending(&config.data_dir, keep_old)
        .map_err(|e| format!("{e} (the next start finishes the rotation)"))?;
    match backup {
        Some(b) => println!(
            "the old key is kept in {}: it opens backups taken before now; store it offline",
            b.display()
        ),
        None => println!("the old key is gone: backups taken before now need it, so none can be restored with the new key"),
    }
    Ok(())
}
