//! Liveness of the appliance's own background parts, and what the system's
//! health is read from.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::audit::Audit;
use crate::config::Config;
use crate::db::Db;
use crate::encryption::keyring::KeyRing;

/// How often the scheduler reports that it is alive.
pub const SCHEDULER_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// Liveness facts the background parts report, read by `/readyz`.
#[derive(Debug, Default)]
pub struct RuntimeStatus {
    scheduler_beat_ms: AtomicI64,
}

impl RuntimeStatus {
    pub fn scheduler_beat(&self, now_ms: i64) {
        self.scheduler_beat_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Time of the scheduler's last heartbeat (0: never).
    pub fn last_scheduler_beat(&self) -> i64 {
        self.scheduler_beat_ms.load(Ordering::Relaxed)
    }
}

/// What the health report, `/metrics` and the self-sampler read: the parts
/// of the running appliance, borrowed (built by `App::watched`).
pub struct Watched<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub config: &'a Config,
    pub status: &'a RuntimeStatus,
    pub checker_stats: &'a super::checker::CheckerStats,
    pub keyring: &'a KeyRing,
    pub signing_keys: &'a crate::tokens::SigningKeys,
    pub metrics: &'a super::metrics::MetricsStore,
    pub outbox_stats: &'a crate::notify::outbox::Stats,
    pub gateway_stats: &'a crate::mcp::stats::CallStats,
    pub telemetry_stats: &'a super::telemetry_stats::TelemetryStats,
}
