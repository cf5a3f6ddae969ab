//! Start-up and shutdown of the whole appliance: data directory, master
//! key, database, bootstrap, scheduler and HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use secrecy::ExposeSecret;
use tokio_cron_scheduler::JobScheduler;

use crate::app::App;
use crate::audit::{Audit, ChainKey, Context, Outcome};
use crate::bootstrap::{self, Seeded};
use crate::config::Config;
use crate::crypto::appliance_keys::{self, ApplianceKeys, UnlockError};
use crate::crypto::{MasterKey, MasterKeyError};
use crate::db::{self, migrate, pool};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    Unlock(#[from] UnlockError),
    #[error(
        "another agentry process is using the data directory {0} (it holds agentry.lock); stop it first"
    )]
    Locked(String),
    #[error("database: {0}")]
    Database(String),
    #[error(transparent)]
    Migrate(#[from] migrate::MigrateError),
    #[error("first-start setup failed: {0}")]
    Bootstrap(crate::error::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("scheduler: {0}")]
    Scheduler(String),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
}

/// Creates the data directory with mode 0700 (and warns when an existing
/// one is open to others).
pub fn prepare_data_dir(dir: &Path) -> Result<(), StartError> {
    let err = |source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "data directory is accessible to group or others; chmod 700 it"
        );
    }
    Ok(())
}

/// Loads the master key from the environment or the data directory.
pub fn load_master_key(config: &Config) -> Result<(MasterKey, bool), StartError> {
    match &config.master_key {
        Some(b64) => Ok((
            MasterKey::from_base64(b64.expose_secret(), crate::config::ENV_MASTER_KEY)?,
            false,
        )),
        None => Ok(MasterKey::load_or_create(&config.data_dir)?),
    }
}

/// Takes the data directory's lock file, held for as long as the returned
/// file is open: one server per data directory, and commands that must not
/// run beside a server (master key rotation) can tell.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StartError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("agentry.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| StartError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StartError::Locked(dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::DataDir {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Checks the master key against the (migrated) database and returns the
/// appliance keys. A rotation that committed but stopped before renaming
/// its new key file into place is finished here.
pub fn unlock_database(
    config: &Config,
    conn: &mut rusqlite::Connection,
    master: MasterKey,
) -> Result<(MasterKey, ApplianceKeys), StartError> {
    match appliance_keys::unlock(conn, &master) {
        Ok(keys) => Ok((master, keys)),
        Err(UnlockError::WrongMasterKey) if config.master_key.is_none() => {
            let pending = MasterKey::pending(&config.data_dir)?;
            let Some(pending) = pending else {
                return Err(UnlockError::WrongMasterKey.into());
            };
            if appliance_keys::matches(conn, &pending).map_err(UnlockError::from)? != Some(true) {
                return Err(UnlockError::WrongMasterKey.into());
            }
            MasterKey::install_pending(&config.data_dir, false)?;
            tracing::warn!(
                "finished an interrupted master key rotation: master.key.new is now master.key"
            );
            let keys = appliance_keys::unlock(conn, &pending)?;
            Ok((pending, keys))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn pragmas(config: &Config) -> pool::Pragmas {
    pool::Pragmas {
        busy_timeout: Duration::from_millis(config.database.busy_timeout_ms),
    }
}

/// The database ready for the appliance.
pub struct Opened {
    pub db: db::Db,
    pub seeded: Seeded,
    pub master_key: MasterKey,
    pub keys: ApplianceKeys,
}

/// Opens the pool, applies migrations, checks the master key and seeds
/// first-start data.
pub fn open_database(config: &Config, master_key: MasterKey) -> Result<Opened, StartError> {
    let pool = pool::open(
        &config.database_path(),
        pragmas(config),
        config.database.pool_size,
    )
    .map_err(|e| StartError::Database(e.to_string()))?;
    let mut conn = pool
        .get()
        .map_err(|e| StartError::Database(e.to_string()))?;
    let report = migrate::migrate(&mut conn)?;
    if !report.applied.is_empty() {
        tracing::info!(from = report.from, to = report.to, "database migrated");
    }
    let (master_key, keys) = unlock_database(config, &mut conn, master_key)?;
    let seeded = bootstrap::seed(
        &mut conn,
        &ChainKey::new(keys.audit_chain.clone()),
        &config.admin_user,
        config.admin_password.as_ref(),
    )
    .map_err(StartError::Bootstrap)?;
    drop(conn);
    Ok(Opened {
        db: db::Db::new(pool),
        seeded,
        master_key,
        keys,
    })
}

/// A started appliance. Dropping it does not stop it; call [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    /// What first start created (the admin password appears here once).
    pub seeded: Seeded,
    pub master_key_created: bool,
    handle: ServerHandle,
    /// Held until the process ends: see [`lock_data_dir`].
    _lock: std::fs::File,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    scheduler: JobScheduler,
    checker: crate::monitor::checker::Checker,
    outbox: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops the jobs.
    pub async fn stop(mut self) {
        // Held calls answer now (their requests stay for the retries)
        // instead of holding the shutdown for the grace period.
        self.app.approvals_live.close();
        self.handle.stop(true).await;
        let _ = (&mut self.server).await;
        let _ = self.scheduler.shutdown().await;
        self.checker.stop().await;
        // Deliveries in flight are cut off; their rows stay pending and are
        // sent again after restart with the same idempotency key.
        self.outbox.abort();
        let stop = Context::system("agentry").event("system.stop", Outcome::Success);
        if let Err(e) = self.app.audit.record(stop).await {
            tracing::warn!(error = %e, "could not record the stop");
        }
        // Everything queued before this point is committed before we return.
        self.app.audit.shutdown().await;
    }

    /// Waits for the HTTP server to end by itself.
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.server).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Starts everything on an already-bound listener (tests bind
/// `127.0.0.1:0`; `serve` binds the configured address).
pub async fn start(mut config: Config, listener: TcpListener) -> Result<Running, StartError> {
    // Without a configured public URL, the issuer and links use the address
    // actually bound (which differs from `listen` when its port is 0).
    if config.public_url.is_none() {
        let addr = listener.local_addr().map_err(StartError::Http)?;
        let scheme = if config.tls_enabled() {
            "https"
        } else {
            "http"
        };
        config.public_url = Some(format!("{scheme}://{addr}"));
    }
    prepare_data_dir(&config.data_dir)?;
    let lock = lock_data_dir(&config.data_dir)?;
    let (master_key, master_key_created) = load_master_key(&config)?;
    let (config, opened) = tokio::task::spawn_blocking(move || {
        let opened = open_database(&config, master_key);
        (config, opened)
    })
    .await
    .map_err(|e| StartError::Database(e.to_string()))?;
    let Opened {
        db,
        seeded,
        master_key,
        keys,
    } = opened?;
    let chain_key = ChainKey::new(keys.audit_chain);
    let tls = match (&config.tls.cert_path, &config.tls.key_path) {
        (Some(c), Some(k)) => Some(crate::web::tls::server_config(c, k).map_err(StartError::Tls)?),
        _ => None,
    };
    let audit = Audit::start(&config.database_path(), pragmas(&config), chain_key)
        .map_err(|e| StartError::Database(format!("cannot start the audit writer: {e}")))?;
    audit
        .record(
            Context::system("agentry")
                .event("system.start", Outcome::Success)
                .detail("version", env!("CARGO_PKG_VERSION")),
        )
        .await
        .map_err(|e| StartError::Database(format!("cannot write the audit log: {e}")))?;
    let app = App::new(config, db, audit, &master_key, keys.csrf);
    drop(master_key);
    app.signing_keys
        .load(&app.db, &app.audit)
        .await
        .map_err(|e| StartError::Database(format!("cannot load the signing keys: {e}")))?;
    app.keyring
        .ensure_defaults(&app.db, &app.audit)
        .await
        .map_err(|e| StartError::Database(format!("cannot load the encryption key rings: {e}")))?;

    let scheduler = crate::scheduler::start(&app)
        .await
        .map_err(|e| StartError::Scheduler(e.to_string()))?;
    let checker = crate::monitor::checker::Checker::start(
        app.db.clone(),
        app.audit.clone(),
        app.config.monitoring.max_concurrent_checks as usize,
        app.checker_stats.clone(),
        app.outbound_rules.clone(),
        app.gateway.clone(),
    );
    let outbox = app.alerts.outbox().spawn(
        app.db.clone(),
        app.channels.clone(),
        crate::notify::outbox::RetryPolicy::from(&app.config.alerting),
    );
    let addr = listener.local_addr().map_err(StartError::Http)?;
    let server = crate::web::server(app.clone(), listener, tls).map_err(StartError::Http)?;
    let handle = server.handle();
    let server = tokio::spawn(server);
    tracing::info!(%addr, tls = app.config.tls_enabled(), "agentry is listening");
    if app.config.systemd.notify {
        notify_systemd();
    }
    Ok(Running {
        addr,
        app,
        seeded,
        master_key_created,
        handle,
        server,
        scheduler,
        checker,
        outbox,
        _lock: lock,
    })
}

/// READY=1 once listening, and WATCHDOG=1 at half the watchdog interval
/// when the unit asks for it. No-ops outside systemd.
fn notify_systemd() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::debug!(error = %e, "sd_notify READY failed");
    }
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let every = Duration::from_micros(usec / 2);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
}
