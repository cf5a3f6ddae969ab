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

mod access;
mod check;
mod gateway;
mod oauth;
mod oidc;
mod operations;
mod server;
mod telemetry;
#[cfg(test)]
mod tests;

pub use access::{
    ApiConfig, ApiKeysConfig, AuditConfig, AuditDecisions, AuthzConfig, LoginConfig, SessionConfig,
    TokensConfig,
};
pub use gateway::GatewayConfig;
pub use oauth::{DynamicRegistration, OAuthConfig, Switch};
pub use oidc::{ConfigSecret, OidcConfig};
pub use operations::{AlertingConfig, BackupConfig, EncryptionConfig, MonitoringConfig};
pub use server::{DatabaseConfig, LogConfig, LogFormat, NetworkConfig, SystemdConfig, TlsConfig};
pub use telemetry::TelemetryConfig;

use crate::net::rules::parse_networks;
use check::invalid;

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
    pub oauth: OAuthConfig,
    pub oidc: OidcConfig,
    pub gateway: GatewayConfig,
    pub telemetry: TelemetryConfig,
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
        parse_networks(&self.trusted_proxies)
    }
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
            oauth: OAuthConfig::default(),
            oidc: OidcConfig::default(),
            gateway: GatewayConfig::default(),
            telemetry: TelemetryConfig::default(),
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

    /// Semantic checks serde cannot express: each section checks its own
    /// keys (ranges through one helper that writes the message).
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
        check::within(
            "max_body_bytes",
            self.max_body_bytes,
            1024..=64 * 1024 * 1024,
        )?;
        check::networks("trusted_proxies", &self.trusted_proxies, 256)?;
        self.network.validate()?;
        self.log.validate()?;
        self.tls.validate()?;
        self.session.validate()?;
        self.login.validate()?;
        self.database.validate()?;
        self.audit.validate()?;
        self.api_keys.validate()?;
        self.api.validate()?;
        self.tokens.validate()?;
        self.oauth.validate()?;
        self.oidc.validate()?;
        self.gateway.validate()?;
        self.telemetry.validate()?;
        self.encryption.validate()?;
        self.monitoring.validate()?;
        self.alerting.validate()?;
        self.backup.validate()
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
