//! The appliance measures itself and its host (README, "Monitoring") and stores the
//! figures as metric series reported by `agentry`, like agents' metrics:
//! they appear in `GET /api/v1/metrics/query?reporter=agentry` and feed
//! alert rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use sysinfo::{Disks, ProcessesToUpdate, System};

use super::metrics::Sample;
use super::runtime::Watched;
use crate::db;
use crate::error::Result;

/// Who reports the appliance's own series.
pub const REPORTER: &str = "agentry";

/// Keeps the previous CPU reading: usage is a difference between two.
#[derive(Clone)]
pub struct Sampler {
    system: Arc<Mutex<System>>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            system: Arc::new(Mutex::new(System::new())),
        }
    }
}

fn sample(name: &str, value: f64) -> Sample {
    Sample {
        name: name.into(),
        value,
        labels: BTreeMap::new(),
        at: None,
    }
}

impl Sampler {
    /// Host and process figures (blocking: reads /proc).
    fn host(&self, data_dir: &std::path::Path) -> Vec<Sample> {
        let mut out = Vec::new();
        let Ok(mut sys) = self.system.lock() else {
            return out;
        };
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let pid = sysinfo::get_current_pid().ok();
        if let Some(pid) = pid {
            sys.refresh_processes(ProcessesToUpdate::Some(&[pid]), true);
        }
        let cpus = sys.cpus().len().max(1) as f64;
        out.push(sample(
            "host_cpu_utilization",
            (f64::from(sys.global_cpu_usage()) / 100.0).clamp(0.0, 1.0),
        ));
        if sys.total_memory() > 0 {
            out.push(sample(
                "host_memory_utilization",
                (sys.used_memory() as f64 / sys.total_memory() as f64).clamp(0.0, 1.0),
            ));
        }
        if let Some(p) = pid.and_then(|pid| sys.process(pid)) {
            out.push(sample("agentry_resident_memory_bytes", p.memory() as f64));
            // Of the whole host, so that 1 means every core busy.
            out.push(sample(
                "agentry_cpu_utilization",
                (f64::from(p.cpu_usage()) / 100.0 / cpus).clamp(0.0, 1.0),
            ));
        }
        drop(sys);
        let disks = Disks::new_with_refreshed_list();
        let dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        if let Some(d) = disks
            .list()
            .iter()
            .filter(|d| dir.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
        {
            out.push(sample("data_dir_free_bytes", d.available_space() as f64));
        }
        out
    }

    /// Samples everything once and stores it.
    pub async fn run(&self, app: &Watched<'_>) -> Result<usize> {
        let me = self.clone();
        let dir = app.config.data_dir.clone();
        let mut samples = tokio::task::spawn_blocking(move || me.host(&dir))
            .await
            .unwrap_or_default();
        let now = db::now_ms();
        if let Some(bytes) = super::health::database_bytes(app) {
            samples.push(sample("database_size_bytes", bytes as f64));
        }
        let lag = (now - app.status.last_scheduler_beat()).max(0) as f64 / 1000.0;
        samples.push(sample("scheduler_lag_seconds", lag));
        let stats = &app.checker_stats;
        samples.push(sample(
            "health_checks_in_flight",
            stats.in_flight.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ));
        samples.push(sample("audit_queue_depth", app.audit.queue_depth() as f64));
        let auth = crate::identity::auth_stats::current(app.db).await?;
        samples.push(sample(
            "failed_auth_attempts",
            auth.failed_last_minute as f64,
        ));
        samples.push(sample("locked_accounts", auth.locked_accounts as f64));
        if let Some(active) = app
            .signing_keys
            .entries()
            .iter()
            .find(|e| e.retired_at.is_none())
        {
            let age = (now - active.created_at).max(0) as f64 / 1000.0;
            samples.push(sample("signing_key_age_seconds", age));
        }
        let oldest = app
            .db
            .read(move |c| crate::db::api_keys::oldest_active_created(c, now))
            .await?;
        if let Some(t) = oldest {
            samples.push(sample(
                "api_key_oldest_age_seconds",
                (now - t).max(0) as f64 / 1000.0,
            ));
        }
        for ring in app.keyring.rings(app.db, app.audit).await? {
            if let Some(newest) = ring.versions.iter().max_by_key(|v| v.version) {
                if let Some(t) = crate::timefmt::parse_rfc3339(&newest.created_at) {
                    let mut s = sample(
                        "encryption_key_age_seconds",
                        (now - t).max(0) as f64 / 1000.0,
                    );
                    s.labels
                        .insert("classification".into(), ring.classification.clone());
                    samples.push(s);
                }
            }
        }
        let retention = app.config.monitoring.metrics_retention_days;
        app.metrics.ingest(REPORTER, samples, retention).await
    }
}
