//! Layered configuration: embedded defaults → TOML file → `AGENTRY_*`
//! environment variables.
//!
//! A key inside a TOML table maps to an environment variable with a double
//! underscore: `[session] idle_timeout_minutes` is
//! `AGENTRY_SESSION__IDLE_TIMEOUT_MINUTES`. Unknown keys (in the file or in
//! the environment) and invalid values are start-up errors that name the key.
//!
//! A few `AGENTRY_*` variables are not configuration keys but secrets or
//! bootstrap inputs, read where they are used and never stored in [`Config`]:
//! [`ENV_ADMIN_PASSWORD`], [`ENV_MASTER_KEY`] and [`ENV_CONFIG`].

use crate::net::rules::parse_network;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Password for the first admin user (bootstrap only; never stored).
pub const ENV_ADMIN_PASSWORD: &str = "AGENTRY_ADMIN_PASSWORD";
/// Base64 master key, instead of the key file in the data directory.
pub const ENV_MASTER_KEY: &str = "AGENTRY_MASTER_KEY";
/// Path of the configuration file (same as `--config`).
pub const ENV_CONFIG: &str = "AGENTRY_CONFIG";
/// Configuration file read when it exists and no other is named.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/agentry/agentry.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration error: {0}")]
    Parse(String),
    #[error("configuration error: key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn secret_env(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP(S) server binds.
    pub listen: SocketAddr,
    /// Directory for the database and the master key file (created 0700).
    pub data_dir: PathBuf,
    /// User name of the first admin created on first start.
    pub admin_user: String,
    /// Externally visible base URL (used for the token issuer and links).
    /// Defaults to `http(s)://<listen>`.
    pub public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Addresses (`10.0.0.1`) or networks (`10.0.0.0/8`) of reverse proxies
    /// whose `X-Forwarded-For` is believed. Empty: the peer address is the
    /// client, whatever the headers say.
    pub trusted_proxies: Vec<String>,
    pub log: LogConfig,
    pub tls: TlsConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub database: DatabaseConfig,
    pub systemd: SystemdConfig,
    pub audit: AuditConfig,
    pub api_keys: ApiKeysConfig,
    pub api: ApiConfig,
    pub tokens: TokensConfig,
    pub authz: AuthzConfig,
    pub encryption: EncryptionConfig,
    pub monitoring: MonitoringConfig,
    pub alerting: AlertingConfig,
    pub backup: BackupConfig,
    pub network: NetworkConfig,
    /// From `AGENTRY_ADMIN_PASSWORD`; used once, on first start.
    #[serde(skip)]
    pub admin_password: Option<SecretString>,
    /// From `AGENTRY_MASTER_KEY`; replaces the key file when set.
    #[serde(skip)]
    pub master_key: Option<SecretString>,
}

impl Config {
    /// `trusted_proxies` parsed (validated at load, so every entry parses).
    pub fn trusted_proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|e| parse_network(e).ok())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `agentry=debug,actix_web=info`, ...
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. TLS is on when both paths are set.
    pub cert_path: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_timeout_minutes: u64,
    pub absolute_lifetime_hours: u64,
    /// Force the `Secure` cookie flag (always on when serving TLS). Set it
    /// when a TLS-terminating reverse proxy sits in front.
    pub cookie_secure: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins within `failure_window_minutes` that lock an account.
    pub max_failures: u32,
    pub failure_window_minutes: u64,
    pub lockout_minutes: u64,
    /// Login attempts one client IP may make per minute (then 429).
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub busy_timeout_ms: u64,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Records older than this many days are pruned (behind a checkpoint
    /// that keeps the rest verifiable). 0 keeps everything.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 365,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// Longest lifetime a key may be given, and the lifetime of keys created
    /// without one. 0: no maximum, and keys without expiry are allowed.
    pub max_lifetime_days: u32,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig {
            max_lifetime_days: 365,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Refused bearer credentials (API keys, access tokens, malformed
    /// `Authorization` headers) one client IP may send per minute; further
    /// refusals are answered 429 and not audited one by one.
    pub auth_failures_per_minute: u32,
    /// Requests one client IP may send per minute to the endpoints that
    /// need no credential (probes, published documents, static assets, the
    /// login page, unknown paths); further ones are answered 429. 0 turns
    /// the limit off.
    pub anonymous_requests_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            auth_failures_per_minute: 60,
            anonymous_requests_per_minute: 6000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Lifetime of issued access tokens (60-86400 seconds).
    pub lifetime_seconds: u32,
    /// The signing key is rotated when it is this many days old (0: only
    /// on demand).
    pub signing_key_rotation_days: u32,
    /// Token, introspection and revocation requests one client IP may make
    /// per minute.
    pub rate_limit_per_minute: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            lifetime_seconds: 900,
            signing_key_rotation_days: 30,
            rate_limit_per_minute: 600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecisions {
    All,
    Denials,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzConfig {
    /// Which decisions of the decision API are recorded: "all" or "denials".
    pub audit_decisions: AuditDecisions,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        AuthzConfig {
            audit_decisions: AuditDecisions::All,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// A classification's key gets a new version when its newest is this
    /// many days old, unless the ring sets its own period (0: on demand
    /// only).
    pub rotation_days: u32,
    /// A key version is rotated before it has encrypted more than this
    /// (at most 2^32 - 1: the safe limit for random 96-bit GCM nonces).
    pub max_encryptions_per_key: u64,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            rotation_days: 90,
            max_encryptions_per_key: 4_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Health checks in flight at once (1-4096).
    pub max_concurrent_checks: u32,
    /// How long every check result is kept before it is folded into
    /// per-minute rollups (1-8760 hours).
    pub raw_retention_hours: u32,
    /// How long metric samples are kept (1-3650 days).
    pub metrics_retention_days: u32,
    /// How long per-minute rollups of check results are kept before they
    /// become per-hour rollups (1-365 days).
    pub minute_rollup_days: u32,
    /// How long per-hour rollups are kept (1-3650 days).
    pub hour_rollup_days: u32,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            max_concurrent_checks: 64,
            raw_retention_hours: 48,
            metrics_retention_days: 30,
            minute_rollup_days: 7,
            hour_rollup_days: 90,
        }
    }
}

/// Where outbound requests that an admin can aim (health checks,
/// notification channels) may go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Networks (CIDR) or addresses never connected to, checked on the
    /// resolved address of every connection and redirect hop. Default:
    /// link-local and the cloud metadata addresses.
    pub outbound_deny: Vec<String>,
    /// Whether loopback and private networks (RFC 1918, RFC 6598, unique
    /// local IPv6) may be reached; agents live there.
    pub outbound_allow_private: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            outbound_deny: crate::net::rules::DEFAULT_DENY
                .iter()
                .map(|n| n.to_string())
                .collect(),
            outbound_allow_private: true,
        }
    }
}

impl NetworkConfig {
    /// The rules (validated at load, so every entry parses).
    pub fn rules(&self) -> crate::net::OutboundRules {
        let deny: Vec<ipnet::IpNet> = self
            .outbound_deny
            .iter()
            .filter_map(|e| parse_network(e).ok())
            .collect();
        crate::net::OutboundRules::new(&deny, self.outbound_allow_private)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// When to take an online backup: a cron expression with seconds
    /// (`sec min hour day-of-month month day-of-week`, UTC); empty: never.
    pub schedule: String,
    /// Where scheduled backups go; default `<data_dir>/backups`.
    pub dir: Option<PathBuf>,
    /// How many scheduled backups to keep (1-10000); older ones are deleted.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            schedule: "0 0 3 * * *".into(),
            dir: None,
            keep: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// How often every enabled rule is evaluated (1-3600 seconds).
    pub evaluation_interval_seconds: u32,
    /// Notifications being delivered at once (1-1024).
    pub delivery_concurrency: u32,
    /// Attempts before a notification is marked failed (1-100).
    pub delivery_max_attempts: u32,
    /// Wait before the first retry; doubled after each failure, with
    /// jitter (10-600000 ms).
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts (1-86400 seconds).
    pub retry_max_seconds: u64,
    /// Time allowed for one delivery attempt (100-120000 ms).
    pub delivery_timeout_ms: u64,
    /// How long resolved alerts, their events, expired silences and
    /// finished notifications are kept (1-3650 days).
    pub history_retention_days: u32,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            evaluation_interval_seconds: 15,
            delivery_concurrency: 32,
            delivery_max_attempts: 12,
            retry_initial_ms: 1000,
            retry_max_seconds: 300,
            delivery_timeout_ms: 10_000,
            history_retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemdConfig {
    /// Send READY=1 (and WATCHDOG=1 when the unit sets WatchdogSec) over
    /// $NOTIFY_SOCKET. Harmless when not run under systemd.
    pub notify: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./agentry-data"),
            admin_user: "admin".into(),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
            log: LogConfig::default(),
            tls: TlsConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            database: DatabaseConfig::default(),
            systemd: SystemdConfig::default(),
            audit: AuditConfig::default(),
            api_keys: ApiKeysConfig::default(),
            api: ApiConfig::default(),
            tokens: TokensConfig::default(),
            authz: AuthzConfig::default(),
            encryption: EncryptionConfig::default(),
            monitoring: MonitoringConfig::default(),
            alerting: AlertingConfig::default(),
            backup: BackupConfig::default(),
            network: NetworkConfig::default(),
            admin_password: None,
            master_key: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Plain,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout_minutes: 30,
            absolute_lifetime_hours: 12,
            cookie_secure: false,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failures: 5,
            failure_window_minutes: 15,
            lockout_minutes: 15,
            rate_limit_per_minute: 30,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            busy_timeout_ms: 5000,
            pool_size: 8,
        }
    }
}

impl Default for SystemdConfig {
    fn default() -> Self {
        SystemdConfig { notify: true }
    }
}

impl Config {
    /// Loads defaults, then `path` (or `$AGENTRY_CONFIG`, or
    /// [`DEFAULT_CONFIG_PATH`] when it exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env_path = std::env::var_os(ENV_CONFIG).map(PathBuf::from);
        let file = match path.map(Path::to_path_buf).or(env_path) {
            Some(p) if !p.exists() => return Err(ConfigError::MissingFile(p)),
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        let mut config = Self::from_figment(Self::figment(file.as_deref()))?;
        config.admin_password = secret_env(ENV_ADMIN_PASSWORD);
        config.master_key = secret_env(ENV_MASTER_KEY);
        Ok(config)
    }

    /// Loads only from a TOML string and the defaults (no environment); for
    /// tests and `check-config` style validation of a snippet.
    pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
        Self::from_figment(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)),
        )
    }

    fn figment(file: Option<&Path>) -> Figment {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            fig = fig.merge(Toml::file_exact(file));
        }
        fig.merge(
            Env::prefixed("AGENTRY_")
                .ignore(&["admin_password", "master_key", "config"])
                .split("__"),
        )
    }

    fn from_figment(fig: Figment) -> Result<Config, ConfigError> {
        let config: Config = fig.extract().map_err(|e| {
            // figment reports every error it found; name each key.
            let all: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            ConfigError::Parse(all.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Semantic checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        crate::identity::validate_username(&self.admin_user)
            .map_err(|m| invalid("admin_user", m))?;
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/') {
                return Err(invalid(
                    "public_url",
                    "must start with http:// or https:// and have no trailing slash",
                ));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        if self.trusted_proxies.len() > 256 {
            return Err(invalid("trusted_proxies", "at most 256 entries"));
        }
        for (i, entry) in self.trusted_proxies.iter().enumerate() {
            parse_network(entry)
                .map_err(|m| invalid("trusted_proxies", format!("entry {}: {m}", i + 1)))?;
        }
        if self.network.outbound_deny.len() > 1024 {
            return Err(invalid("network.outbound_deny", "at most 1024 entries"));
        }
        for (i, entry) in self.network.outbound_deny.iter().enumerate() {
            parse_network(entry)
                .map_err(|m| invalid("network.outbound_deny", format!("entry {}: {m}", i + 1)))?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", e.to_string()))?;
        match (&self.tls.cert_path, &self.tls.key_path) {
            (Some(_), None) => {
                return Err(invalid(
                    "tls.key_path",
                    "required when tls.cert_path is set",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls.cert_path",
                    "required when tls.key_path is set",
                ))
            }
            (Some(c), Some(k)) => {
                for (key, p) in [("tls.cert_path", c), ("tls.key_path", k)] {
                    if !p.is_file() {
                        return Err(invalid(
                            key,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
            }
            (None, None) => {}
        }
        let s = &self.session;
        if !(1..=24 * 60).contains(&s.idle_timeout_minutes) {
            return Err(invalid(
                "session.idle_timeout_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=24 * 30).contains(&s.absolute_lifetime_hours) {
            return Err(invalid(
                "session.absolute_lifetime_hours",
                "must be between 1 and 720",
            ));
        }
        let l = &self.login;
        if !(1..=100).contains(&l.max_failures) {
            return Err(invalid("login.max_failures", "must be between 1 and 100"));
        }
        if !(1..=24 * 60).contains(&l.failure_window_minutes) {
            return Err(invalid(
                "login.failure_window_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=7 * 24 * 60).contains(&l.lockout_minutes) {
            return Err(invalid(
                "login.lockout_minutes",
                "must be between 1 and 10080",
            ));
        }
        if !(1..=100_000).contains(&l.rate_limit_per_minute) {
            return Err(invalid(
                "login.rate_limit_per_minute",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=600_000).contains(&self.database.busy_timeout_ms) {
            return Err(invalid(
                "database.busy_timeout_ms",
                "must be between 1 and 600000",
            ));
        }
        if self.audit.retention_days > 36_500 {
            return Err(invalid(
                "audit.retention_days",
                "must be between 0 (keep forever) and 36500",
            ));
        }
        if self.api_keys.max_lifetime_days > 36_500 {
            return Err(invalid(
                "api_keys.max_lifetime_days",
                "must be between 0 (no maximum) and 36500",
            ));
        }
        if !(1..=1_000_000).contains(&self.api.auth_failures_per_minute) {
            return Err(invalid(
                "api.auth_failures_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if self.api.anonymous_requests_per_minute > 10_000_000 {
            return Err(invalid(
                "api.anonymous_requests_per_minute",
                "must be between 0 (off) and 10000000",
            ));
        }
        if !(60..=86_400).contains(&self.tokens.lifetime_seconds) {
            return Err(invalid(
                "tokens.lifetime_seconds",
                "must be between 60 and 86400",
            ));
        }
        if self.tokens.signing_key_rotation_days > 3650 {
            return Err(invalid(
                "tokens.signing_key_rotation_days",
                "must be between 0 (on demand only) and 3650",
            ));
        }
        if !(1..=1_000_000).contains(&self.tokens.rate_limit_per_minute) {
            return Err(invalid(
                "tokens.rate_limit_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if self.encryption.rotation_days > 3650 {
            return Err(invalid(
                "encryption.rotation_days",
                "must be between 0 (on demand only) and 3650",
            ));
        }
        if !(1..=u64::from(u32::MAX)).contains(&self.encryption.max_encryptions_per_key) {
            return Err(invalid(
                "encryption.max_encryptions_per_key",
                "must be between 1 and 4294967295",
            ));
        }
        if !(1..=4096).contains(&self.monitoring.max_concurrent_checks) {
            return Err(invalid(
                "monitoring.max_concurrent_checks",
                "must be between 1 and 4096",
            ));
        }
        if !(1..=8760).contains(&self.monitoring.raw_retention_hours) {
            return Err(invalid(
                "monitoring.raw_retention_hours",
                "must be between 1 and 8760",
            ));
        }
        if !(1..=3650).contains(&self.monitoring.metrics_retention_days) {
            return Err(invalid(
                "monitoring.metrics_retention_days",
                "must be between 1 and 3650",
            ));
        }
        if !(1..=365).contains(&self.monitoring.minute_rollup_days) {
            return Err(invalid(
                "monitoring.minute_rollup_days",
                "must be between 1 and 365",
            ));
        }
        if !(1..=3650).contains(&self.monitoring.hour_rollup_days) {
            return Err(invalid(
                "monitoring.hour_rollup_days",
                "must be between 1 and 3650",
            ));
        }
        if !(1..=3600).contains(&self.alerting.evaluation_interval_seconds) {
            return Err(invalid(
                "alerting.evaluation_interval_seconds",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=1024).contains(&self.alerting.delivery_concurrency) {
            return Err(invalid(
                "alerting.delivery_concurrency",
                "must be between 1 and 1024",
            ));
        }
        if !(1..=100).contains(&self.alerting.delivery_max_attempts) {
            return Err(invalid(
                "alerting.delivery_max_attempts",
                "must be between 1 and 100",
            ));
        }
        if !(10..=600000).contains(&self.alerting.retry_initial_ms) {
            return Err(invalid(
                "alerting.retry_initial_ms",
                "must be between 10 and 600000",
            ));
        }
        if !(1..=86400).contains(&self.alerting.retry_max_seconds) {
            return Err(invalid(
                "alerting.retry_max_seconds",
                "must be between 1 and 86400",
            ));
        }
        if !(100..=120000).contains(&self.alerting.delivery_timeout_ms) {
            return Err(invalid(
                "alerting.delivery_timeout_ms",
                "must be between 100 and 120000",
            ));
        }
        if !(1..=3650).contains(&self.alerting.history_retention_days) {
            return Err(invalid(
                "alerting.history_retention_days",
                "must be between 1 and 3650",
            ));
        }
        if !self.backup.schedule.trim().is_empty() {
            let valid =
                tokio_cron_scheduler::Job::new_async(self.backup.schedule.as_str(), |_, _| {
                    Box::pin(async {})
                });
            if let Err(e) = valid {
                return Err(invalid(
                    "backup.schedule",
                    format!("not a cron expression with seconds (e.g. \"0 0 3 * * *\"): {e}"),
                ));
            }
        }
        if !(1..=10_000).contains(&self.backup.keep) {
            return Err(invalid("backup.keep", "must be between 1 and 10000"));
        }
        if !(2..=64).contains(&self.database.pool_size) {
            return Err(invalid("database.pool_size", "must be between 2 and 64"));
        }
        Ok(())
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.cert_path.is_some() && self.tls.key_path.is_some()
    }

    /// Base URL used for the issuer and absolute links.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.clone(),
            None => {
                let scheme = if self.tls_enabled() { "https" } else { "http" };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("agentry.db")
    }

    /// Where scheduled backups are written.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// The effective configuration as TOML (no secrets live in `Config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_key_names_the_key() {
        let err = Config::from_toml_str("bogus_key = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus_key"), "{err}");
        let err = Config::from_toml_str("[session]\nidle_timeout = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_timeout"), "{err}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = Config::from_toml_str("[session]\nidle_timeout_minutes = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_timeout_minutes"), "{err}");
        let err = Config::from_toml_str("[session]\nidle_timeout_minutes = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("session.idle_timeout_minutes"), "{err}");
        let err = Config::from_toml_str("listen = \"nope\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Config::from_toml_str("[api]\nauth_failures_per_minute = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api.auth_failures_per_minute"), "{err}");
        let err = Config::from_toml_str("[api]\nanonymous_requests_per_minute = 10000001")
            .unwrap_err()
            .to_string();
        assert!(err.contains("api.anonymous_requests_per_minute"), "{err}");
        let err = Config::from_toml_str("[tls]\ncert_path = \"/x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.key_path"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = Config::from_toml_str(
            "trusted_proxies = [\"10.0.0.1\", \"192.168.0.0/16\", \"fd00::/8\", \"10.1.2.3/8\"]",
        )
        .unwrap();
        let nets: Vec<String> = c
            .trusted_proxy_networks()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            nets,
            ["10.0.0.1/32", "192.168.0.0/16", "fd00::/8", "10.0.0.0/8"]
        );
        for bad in ["\"10.0.0.0/33\"", "\"proxy.example\"", "\"\""] {
            let err = Config::from_toml_str(&format!("trusted_proxies = [\"10.0.0.1\", {bad}]"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("trusted_proxies") && err.contains("entry 2"),
                "{err}"
            );
        }
    }

    #[test]
    fn outbound_deny_entries_are_networks() {
        let c =
            Config::from_toml_str("[network]\noutbound_deny = [\"169.254.0.0/16\", \"10.9.9.9\"]")
                .unwrap();
        assert!(c
            .network
            .rules()
            .check_ip("10.9.9.9".parse().unwrap())
            .is_err());
        let err =
            Config::from_toml_str("[network]\noutbound_deny = [\"169.254.0.0/16\", \"nope\"]")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("network.outbound_deny") && err.contains("entry 2"),
            "{err}"
        );
    }

    #[test]
    fn toml_overrides_defaults() {
        let c = Config::from_toml_str("listen = \"127.0.0.1:9999\"\n[login]\nmax_failures = 3")
            .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.login.max_failures, 3);
        assert_eq!(c.login.lockout_minutes, 15);
    }

    #[test]
    fn packaged_sample_is_valid_and_documents_every_key() {
        let sample = include_str!("../packaging/agentry.toml");
        let c = Config::from_toml_str(sample).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/agentry"));
        // Every key of the effective configuration appears in the sample,
        // so the sample cannot silently fall behind the code.
        for line in Config::default().to_toml().lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                assert!(sample.contains(&format!("{key} =")), "sample lacks `{key}`");
            }
        }
    }

    #[test]
    fn secrets_never_print() {
        let c = Config {
            admin_password: Some(SecretString::from("hunter2-but-longer")),
            master_key: Some(SecretString::from(
                "c2VjcmV0IG1hc3RlciBrZXkgbWF0ZXJpYWwhISEhISE=",
            )),
            ..Config::default()
        };
        let shown = format!("{c:?}\n{}", c.to_toml());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }

    #[test]
    fn renders_round_trippable_toml() {
        let c = Config::default();
        let again = Config::from_toml_str(&c.to_toml()).unwrap();
        assert_eq!(again.listen, c.listen);
        assert_eq!(again.session.idle_timeout_minutes, 30);
    }
}
