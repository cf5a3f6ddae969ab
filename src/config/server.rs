//! Sections about the process and its host: logging, TLS, the database,
//! systemd, and where outbound requests may go.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::{invalid, networks, within};
use super::ConfigError;
use crate::net::rules::parse_networks;

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

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Plain,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|e| invalid("log.level", e.to_string()))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. TLS is on when both paths are set.
    pub cert_path: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: Option<PathBuf>,
}

impl TlsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match (&self.cert_path, &self.key_path) {
            (Some(_), None) => Err(invalid(
                "tls.key_path",
                "required when tls.cert_path is set",
            )),
            (None, Some(_)) => Err(invalid(
                "tls.cert_path",
                "required when tls.key_path is set",
            )),
            (Some(c), Some(k)) => {
                for (key, p) in [("tls.cert_path", c), ("tls.key_path", k)] {
                    if !p.is_file() {
                        return Err(invalid(
                            key,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// How long a statement waits for a lock (1-600000 ms).
    pub busy_timeout_ms: u64,
    /// Pooled connections (2-64).
    pub pool_size: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            busy_timeout_ms: 5000,
            pool_size: 8,
        }
    }
}

impl DatabaseConfig {
    /// The most threads each runtime (the main one and every HTTP worker's)
    /// keeps for blocking work: enough for every pooled connection to be in use
    /// plus password hashing (one per core) and the occasional export, backup
    /// or /proc read. Without a cap every database call waiting for a
    /// connection held a thread of its own, tokio grew the pool towards 512
    /// threads under load, and memory grew with every thread. Calls beyond the
    /// cap wait in tokio's queue, holding no thread. (A semaphore of
    /// `pool_size` permits in front of every call bounded the threads too, but
    /// cost 10-25 % of throughput on database-bound endpoints.)
    pub fn blocking_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        self.pool_size as usize + cores + 8
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "database.busy_timeout_ms",
            self.busy_timeout_ms,
            1..=600_000,
        )?;
        within("database.pool_size", self.pool_size, 2..=64)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemdConfig {
    /// Send READY=1 (and WATCHDOG=1 when the unit sets WatchdogSec) over
    /// $NOTIFY_SOCKET. Harmless when not run under systemd.
    pub notify: bool,
}

impl Default for SystemdConfig {
    fn default() -> Self {
        SystemdConfig { notify: true }
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        networks("network.outbound_deny", &self.outbound_deny, 1024)
    }

    /// The rules (validated at load, so every entry parses).
    pub fn rules(&self) -> crate::net::OutboundRules {
        crate::net::OutboundRules::new(
            &parse_networks(&self.outbound_deny),
            self.outbound_allow_private,
        )
    }
}
