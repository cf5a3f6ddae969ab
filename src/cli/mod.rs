//! The command line: `serve` (the default) and the operator's tools.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad usage or
//! configuration. Passwords are read from a prompt or standard input, never
//! from arguments (which other users can see in the process list).

mod admin;
mod database;
mod keys;
mod logging;
mod restore;
mod rotate_master;
mod serve;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::audit::writer::{self, Item};
use crate::audit::{self, Audit, ChainKey, Context, Event, Head, Outcome};
use crate::bootstrap;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::db::{self, backup, migrate, sessions, users};
use crate::encryption::keyring::{KeyRing, Limits};
use crate::error::Error;
use crate::identity::{passwords, validate_username};
use crate::rbac::system_roles::{self, SYSTEM_ADMIN};
use crate::server;
use crate::tokens::SigningKeys;

#[derive(Parser)]
#[command(
    name = "agentry",
    version,
    about = "Security and operations control plane for AI agents"
)]
struct Cli {
    /// Configuration file (default: /etc/agentry/agentry.toml when it exists).
    #[arg(long, global = true, value_name = "PATH", env = "AGENTRY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server, scheduler and workers (the default).
    Serve,
    /// Manage administrator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent copy of the database to PATH (safe while serving).
    Backup {
        path: PathBuf,
        /// Replace PATH if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the database with a backup or a file replica of it, after
    /// checking its integrity, schema and master key; the replaced database
    /// is kept beside it. Refused while a server runs.
    Restore { path: PathBuf },
    /// Validate the configuration, print the effective values, and exit.
    CheckConfig,
    /// Manage keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate the token signing key now. Tokens signed by the old key stay
    /// valid until they expire; a running server picks the new key up on
    /// its next restart or rotation check (within a minute).
    RotateSigning,
    /// Add a new key version to an encryption classification. Old
    /// packages stay decryptable; a running server encrypts with the new
    /// version within seconds.
    Rotate {
        /// The classification (public, internal, confidential, restricted, ...).
        classification: String,
    },
    /// Replace the master key: every data key, signing key and appliance
    /// key is rewrapped under a new random key in one transaction. Refused
    /// while a server uses the data directory (stop it first).
    RotateMaster {
        /// Keep the old key file as master.key.<UTC time>.bak (it can still
        /// read backups taken before the rotation).
        #[arg(long)]
        keep_old: bool,
        /// Where to write the new key when the current one comes from
        /// AGENTRY_MASTER_KEY (then put its content into that variable).
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole chain; prints the JSON report, exits 1 when it fails.
    Verify {
        /// Sequence number of a head saved earlier (with --head-hash).
        #[arg(long, requires = "head_hash")]
        head_seq: Option<i64>,
        /// Hash of that saved head.
        #[arg(long, requires = "head_seq")]
        head_hash: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user holding the system_admin role.
    Create(AdminArgs),
    /// Set a new password for a user, unlock it and end its sessions (its
    /// second factors stay).
    ResetPassword(AdminArgs),
    /// Clear a user's second factors and recovery codes and end its
    /// sessions: the way back in when a device and its recovery codes are
    /// lost. A user whose role requires a factor enrols a new one at the
    /// next sign-in.
    ResetSecondFactor(UserArg),
}

#[derive(Args)]
struct UserArg {
    /// The user name.
    #[arg(long)]
    username: String,
}

#[derive(Args)]
struct AdminArgs {
    /// The user name.
    #[arg(long)]
    username: String,
    /// Read the password from the first line of standard input instead of
    /// prompting.
    #[arg(long)]
    password_stdin: bool,
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agentry: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(config),
        Command::Admin {
            command: AdminCommand::Create(a),
        } => admin::admin_create(&config, a),
        Command::Admin {
            command: AdminCommand::ResetPassword(a),
        } => admin::admin_reset_password(&config, a),
        Command::Admin {
            command: AdminCommand::ResetSecondFactor(a),
        } => admin::admin_reset_second_factor(&config, &a.username),
        Command::Migrate => database::run_migrate(&config),
        Command::Backup { path, force } => database::run_backup(&config, path, force),
        Command::Restore { path } => restore::run(&config, path),
        Command::Keys {
            command: KeysCommand::RotateSigning,
        } => keys::rotate_signing(&config),
        Command::Keys {
            command: KeysCommand::Rotate { classification },
        } => keys::rotate_ring(&config, &classification),
        Command::Keys {
            command:
                KeysCommand::RotateMaster {
                    keep_old,
                    new_key_file,
                },
        } => rotate_master::run(&config, keep_old, new_key_file),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    head_seq,
                    head_hash,
                },
        } => database::audit_verify(&config, head_seq.zip(head_hash)),
        Command::CheckConfig => {
            println!(
                "# configuration is valid; effective values:\n{}",
                config.to_toml()
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("agentry: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The database opened for an operator command.
pub(crate) struct Opened {
    pub conn: rusqlite::Connection,
    pub chain: ChainKey,
    pub master: MasterKey,
}

/// Opens the database for an operator command: creates and migrates it if
/// needed, checks the master key and seeds the system roles, but never
/// creates the first admin.
pub(crate) fn open_for_cli(config: &Config) -> Result<Opened, String> {
    server::prepare_data_dir(&config.data_dir).map_err(|e| e.to_string())?;
    let (master_key, _) = server::load_master_key(config).map_err(|e| e.to_string())?;
    let mut conn = db::pool::open_single(&config.database_path(), server::pragmas(config))
        .map_err(|e| format!("cannot open {}: {e}", config.database_path().display()))?;
    migrate::migrate(&mut conn).map_err(|e| e.to_string())?;
    let (master, keys) =
        server::unlock_database(config, &mut conn, master_key).map_err(|e| e.to_string())?;
    db::write_tx(&mut conn, |tx| system_roles::seed(tx, db::now_ms()))
        .map_err(|e| e.to_string())?;
    Ok(Opened {
        conn,
        chain: ChainKey::new(keys.audit_chain),
        master,
    })
}

/// The operator at the command line, as an audit actor.
pub(crate) fn cli_context() -> Context {
    let mut ctx = Context::system("cli");
    ctx.user_agent = Some(format!("agentry-cli/{}", env!("CARGO_PKG_VERSION")));
    ctx
}

/// Runs `change` and appends its audit record in one transaction.
pub(crate) fn audited<T>(
    conn: &mut rusqlite::Connection,
    key: &ChainKey,
    event: Event,
    change: impl FnOnce(&rusqlite::Connection) -> Result<T, Error>,
) -> Result<T, String> {
    db::write_tx(conn, |tx| {
        let out = change(tx)?;
        writer::append_in(tx, key, &mut [Item::new(event, None)])?;
        Ok(out)
    })
    .map_err(|e| e.to_string())
}

/// Runs `f` with the database and an audit writer, as the server has them.
pub(super) fn with_services<T>(
    config: &Config,
    f: impl AsyncFnOnce(&db::Db, &Audit, &MasterKey) -> Result<T, String>,
) -> Result<T, String> {
    let Opened {
        conn,
        chain,
        master,
    } = open_for_cli(config)?;
    drop(conn);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let pool = db::pool::open(&config.database_path(), server::pragmas(config), 2)?;
        let db = db::Db::new(pool);
        let audit = Audit::start(&config.database_path(), server::pragmas(config), chain)
            .map_err(|e| e.to_string())?;
        let out = f(&db, &audit, &master).await;
        audit.shutdown().await;
        out
    })
}
