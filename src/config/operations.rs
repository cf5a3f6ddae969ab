//! Sections about the work the appliance does on its own: encryption key
//! rotation, health checks and their history, alerting and delivery,
//! backups.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::{invalid, within, zero_or_up_to};
use super::ConfigError;

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

impl EncryptionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        zero_or_up_to(
            "encryption.rotation_days",
            self.rotation_days,
            3650,
            "on demand only",
        )?;
        within(
            "encryption.max_encryptions_per_key",
            self.max_encryptions_per_key,
            1..=u64::from(u32::MAX),
        )
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

impl MonitoringConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "monitoring.max_concurrent_checks",
            self.max_concurrent_checks,
            1..=4096,
        )?;
        within(
            "monitoring.raw_retention_hours",
            self.raw_retention_hours,
            1..=8760,
        )?;
        within(
            "monitoring.metrics_retention_days",
            self.metrics_retention_days,
            1..=3650,
        )?;
        within(
            "monitoring.minute_rollup_days",
            self.minute_rollup_days,
            1..=365,
        )?;
        within(
            "monitoring.hour_rollup_days",
            self.hour_rollup_days,
            1..=3650,
        )
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

impl AlertingConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "alerting.evaluation_interval_seconds",
            self.evaluation_interval_seconds,
            1..=3600,
        )?;
        within(
            "alerting.delivery_concurrency",
            self.delivery_concurrency,
            1..=1024,
        )?;
        within(
            "alerting.delivery_max_attempts",
            self.delivery_max_attempts,
            1..=100,
        )?;
        within(
            "alerting.retry_initial_ms",
            self.retry_initial_ms,
            10..=600_000,
        )?;
        within(
            "alerting.retry_max_seconds",
            self.retry_max_seconds,
            1..=86_400,
        )?;
        within(
            "alerting.delivery_timeout_ms",
            self.delivery_timeout_ms,
            100..=120_000,
        )?;
        within(
            "alerting.history_retention_days",
            self.history_retention_days,
            1..=3650,
        )
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

impl BackupConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.schedule.trim().is_empty() {
            let valid = tokio_cron_scheduler::Job::new_async(self.schedule.as_str(), |_, _| {
                Box::pin(async {})
            });
            if let Err(e) = valid {
                return Err(invalid(
                    "backup.schedule",
                    format!("not a cron expression with seconds (e.g. \"0 0 3 * * *\"): {e}"),
                ));
            }
        }
        within("backup.keep", self.keep, 1..=10_000)
    }
}
