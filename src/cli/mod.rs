//! The command line: `serve` (the default) and the operator's tools.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad usage or
//! configuration. Passwords are read from a prompt or standard input, never
//! from arguments (which other users can see in the process list).

mod logging;
mod restore;
mod rotate_master;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::audit::writer::{self, Item};
use crate::audit::{self, Audit, ChainKey, Context, Event, Head, Outcome};
use crate::config::Config;
use crate::crypto::keyring::{KeyRing, Limits};
use crate::crypto::MasterKey;
use crate::db::{self, backup, migrate, sessions, users};
use crate::error::Error;
use crate::identity::{bootstrap, passwords, validate_username};
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
    /// Set a new password for a user, unlock it and end its sessions.
    ResetPassword(AdminArgs),
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
        Command::Serve => serve(config),
        Command::Admin {
            command: AdminCommand::Create(a),
        } => admin_create(&config, a),
        Command::Admin {
            command: AdminCommand::ResetPassword(a),
        } => admin_reset_password(&config, a),
        Command::Migrate => run_migrate(&config),
        Command::Backup { path, force } => run_backup(&config, path, force),
        Command::Restore { path } => restore::run(&config, path),
        Command::Keys {
            command: KeysCommand::RotateSigning,
        } => rotate_signing(&config),
        Command::Keys {
            command: KeysCommand::Rotate { classification },
        } => rotate_ring(&config, &classification),
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
        } => audit_verify(&config, head_seq.zip(head_hash)),
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

fn serve(config: Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.database.blocking_threads())
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let mut signals = ShutdownSignals::register()?;
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let mut running = crate::start(config, listener)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(admin) = &running.seeded.admin {
            print_first_admin(admin, &running.app.config.base_url());
        }
        tokio::select! {
            sig = signals.recv() => {
                tracing::info!(signal = sig, "shutting down: finishing in-flight requests");
                running.stop().await;
                tracing::info!("stopped");
                Ok(())
            }
            r = running.wait() => r.map_err(|e| format!("HTTP server failed: {e}")),
        }
    })
}

fn print_first_admin(admin: &crate::identity::bootstrap::FirstAdmin, url: &str) {
    match &admin.generated_password {
        Some(pw) => println!(
            "\nagentry: created the first administrator\n  sign in at: {url}/login\n  user:       {}\n  password:   {}\n\
             This password is shown only once. Keep it safe or reset it with `agentry admin reset-password`.\n",
            admin.username,
            pw.expose_secret()
        ),
        None => println!(
            "\nagentry: created the first administrator `{}` with the password from {}\n  sign in at: {url}/login\n",
            admin.username,
            crate::config::ENV_ADMIN_PASSWORD
        ),
    }
}

/// SIGTERM and SIGINT, registered before start-up: a stop that arrives
/// right after READY=1 must already find the handlers in place.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn register() -> Result<ShutdownSignals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |e: std::io::Error| format!("cannot install signal handlers: {e}");
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
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

fn read_new_password(username: &str, from_stdin: bool) -> Result<Zeroizing<String>, String> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(
                "no terminal to prompt on; pass --password-stdin and pipe the password".into(),
            );
        }
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("New password for {username}: "))
                .map_err(|e| e.to_string())?,
        );
        let again =
            Zeroizing::new(rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?);
        if *first != *again {
            return Err("the passwords differ".into());
        }
        first
    };
    passwords::check_policy(username, &password).map_err(|m| format!("password {m}"))?;
    Ok(password)
}

fn admin_create(config: &Config, a: AdminArgs) -> Result<(), String> {
    validate_username(&a.username).map_err(|m| format!("user name {m}"))?;
    let Opened {
        mut conn,
        chain: key,
        ..
    } = open_for_cli(config)?;
    let exists = users::by_username(&conn, &a.username)
        .map_err(|e| e.to_string())?
        .is_some();
    if exists {
        return Err(format!(
            "user {} already exists; use `admin reset-password`",
            a.username
        ));
    }
    let password = read_new_password(&a.username, a.password_stdin)?;
    let hash = passwords::hash_sync(&password).map_err(|e| e.to_string())?;
    let id = db::new_id();
    let event = cli_context()
        .event("user.create", Outcome::Success)
        .target("user", id.clone())
        .detail("username", &a.username)
        .detail("roles", [SYSTEM_ADMIN]);
    audited(&mut conn, &key, event, |tx| {
        bootstrap::insert_admin(tx, &id, &a.username, "", hash, db::now_ms())
    })?;
    println!(
        "created user {} (id {id}) with the {SYSTEM_ADMIN} role",
        a.username
    );
    Ok(())
}

fn admin_reset_password(config: &Config, a: AdminArgs) -> Result<(), String> {
    let Opened {
        mut conn,
        chain: key,
        ..
    } = open_for_cli(config)?;
    let user = users::by_username(&conn, &a.username)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {}", a.username))?;
    let password = read_new_password(&user.username, a.password_stdin)?;
    let hash = passwords::hash_sync(&password).map_err(|e| e.to_string())?;
    let event = cli_context()
        .event("user.password.reset", Outcome::Success)
        .target("user", &user.id)
        .detail("unlocked", true);
    let ended = audited(&mut conn, &key, event, |tx| {
        users::set_password(tx, &user.id, &hash, db::now_ms())?;
        sessions::delete_for_user(tx, &user.id)
    })?;
    println!(
        "password of {} reset; account unlocked; {ended} session(s) ended",
        user.username
    );
    Ok(())
}

fn run_migrate(config: &Config) -> Result<(), String> {
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

fn run_backup(config: &Config, path: PathBuf, force: bool) -> Result<(), String> {
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

fn audit_verify(config: &Config, saved: Option<(i64, String)>) -> Result<(), String> {
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

/// Runs `f` with the database and an audit writer, as the server has them.
fn with_services<T>(
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

fn rotate_signing(config: &Config) -> Result<(), String> {
    let kid = with_services(config, async |db, audit, master| {
        let keys = SigningKeys::new(master.derive(crate::tokens::keys::WRAP_KEY_LABEL));
        let max_token_ms = i64::from(config.tokens.lifetime_seconds) * 1000;
        keys.rotate(db, audit, &cli_context(), max_token_ms)
            .await
            .map_err(|e| e.to_string())
    })?;
    println!("new signing key {kid}; the previous key stays published until its tokens expire");
    Ok(())
}

fn rotate_ring(config: &Config, classification: &str) -> Result<(), String> {
    let version = with_services(config, async |db, audit, master| {
        let ring = KeyRing::new(
            master.derive(crate::crypto::keyring::WRAP_KEY_LABEL),
            Limits {
                max_encryptions: config.encryption.max_encryptions_per_key,
                rotation_days: config.encryption.rotation_days,
            },
        );
        let known = ring.rings(db, audit).await.map_err(|e| e.to_string())?;
        if !known.iter().any(|r| r.classification == classification) {
            let names: Vec<_> = known.iter().map(|r| r.classification.as_str()).collect();
            return Err(format!(
                "no classification {classification:?}; there are: {}",
                names.join(", ")
            ));
        }
        ring.rotate(audit, &cli_context(), classification, "requested")
            .await
            .map_err(|e| e.to_string())
    })?;
    println!(
        "{classification} now encrypts with key version {version}; older versions still decrypt"
    );
    Ok(())
}
