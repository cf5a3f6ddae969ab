//! `GET /metrics`: the appliance's own figures and its instances' health in
//! the Prometheus text format (0.0.4), built with the `prometheus` crate
//! into a fresh registry per scrape, so every value is current and nothing
//! is kept between scrapes.

use std::sync::atomic::Ordering;

use prometheus::{Encoder, Gauge, GaugeVec, IntCounter, IntGauge, Opts, Registry, TextEncoder};

use super::health;
use super::runtime::Watched;
use super::state::Health;
use crate::db::{agents, instances};
use crate::error::{Error, Result};
use crate::identity::auth_stats;

fn gauge(r: &Registry, name: &str, help: &str, v: f64) -> Result<()> {
    let g = Gauge::new(name, help).map_err(Error::internal)?;
    g.set(v);
    r.register(Box::new(g)).map_err(Error::internal)
}

fn counter(r: &Registry, name: &str, help: &str, v: u64) -> Result<()> {
    let c = IntCounter::new(name, help).map_err(Error::internal)?;
    c.inc_by(v);
    r.register(Box::new(c)).map_err(Error::internal)
}

fn vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels).map_err(Error::internal)?;
    r.register(Box::new(g.clone())).map_err(Error::internal)?;
    Ok(g)
}

/// The exposition text.
pub async fn render(app: &Watched<'_>) -> Result<String> {
    let r = Registry::new();
    #[cfg(target_os = "linux")]
    r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))
    .map_err(Error::internal)?;

    let info = vec(
        &r,
        "agentry_build_info",
        "The running agentry version.",
        &["version"],
    )?;
    info.with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);

    let (rows, types) = app
        .db
        .read(|c| Ok((instances::all(c)?, agents::all_types(c)?)))
        .await?;
    let types: std::collections::HashMap<_, _> = types.into_iter().collect();
    let labels = [
        "instance_id",
        "instance_name",
        "agent_id",
        "agent_type",
        "kind",
    ];
    let state = vec(
        &r,
        "agentry_instance_state",
        "1 for the state each enabled instance is in (unknown, healthy, degraded, unhealthy).",
        &[&labels[..], &["state"]].concat(),
    )?;
    let latency = vec(
        &r,
        "agentry_instance_response_time_seconds",
        "Response time of each HTTP instance's last check.",
        &labels,
    )?;
    let mut counts = [0i64; 4];
    for i in rows.iter().filter(|i| i.enabled) {
        let t = i.agent_type_in(&types);
        let l = [i.id.as_str(), &i.name, i.agent_key(), t, &i.kind];
        let now = Health::parse(&i.state);
        for h in [
            Health::Unknown,
            Health::Healthy,
            Health::Degraded,
            Health::Unhealthy,
        ] {
            let v = if h == now { 1.0 } else { 0.0 };
            state
                .with_label_values(&[&l[..], &[h.as_str()]].concat())
                .set(v);
        }
        counts[now as usize] += 1;
        if let Some(ms) = i.last_latency_ms {
            latency.with_label_values(&l).set(ms as f64 / 1000.0);
        }
    }
    let by_state = vec(
        &r,
        "agentry_instances",
        "Enabled instances per state.",
        &["state"],
    )?;
    for h in [
        Health::Unknown,
        Health::Healthy,
        Health::Degraded,
        Health::Unhealthy,
    ] {
        by_state
            .with_label_values(&[h.as_str()])
            .set(counts[h as usize] as f64);
    }

    let s = &app.checker_stats;
    counter(
        &r,
        "agentry_health_checks_total",
        "Health checks run since start.",
        s.checks.load(Ordering::Relaxed),
    )?;
    counter(
        &r,
        "agentry_health_check_failures_total",
        "Health checks that failed since start.",
        s.failures.load(Ordering::Relaxed),
    )?;
    let in_flight = IntGauge::new(
        "agentry_health_checks_in_flight",
        "Health checks running now.",
    )
    .map_err(Error::internal)?;
    in_flight.set(s.in_flight.load(Ordering::Relaxed) as i64);
    r.register(Box::new(in_flight)).map_err(Error::internal)?;
    r.register(Box::new(s.lateness.clone()))
        .map_err(Error::internal)?;

    gauge(
        &r,
        "agentry_audit_queue_depth",
        "Audit records submitted and not yet taken by the writer.",
        app.audit.queue_depth() as f64,
    )?;

    let auth = auth_stats::current(app.db).await?;
    gauge(
        &r,
        "agentry_recent_failed_logins",
        "Failed sign-ins in the last 15 minutes (from the audit log).",
        auth.failed_last_15_minutes as f64,
    )?;
    gauge(
        &r,
        "agentry_locked_accounts",
        "Accounts locked out now.",
        auth.locked_accounts as f64,
    )?;

    let checks = health::infrastructure_checks(app).await;
    let comp = vec(
        &r,
        "agentry_component_up",
        "1 when an appliance component is ok.",
        &["component"],
    )?;
    for (name, v) in &checks {
        comp.with_label_values(&[name])
            .set(if v == "ok" { 1.0 } else { 0.0 });
    }
    if let Some(bytes) = health::database_bytes(app) {
        gauge(
            &r,
            "agentry_database_size_bytes",
            "Size of the SQLite database, its write-ahead log included.",
            bytes as f64,
        )?;
    }

    alerting(app, &r).await?;
    let gw = app.gateway_stats;
    r.register(Box::new(gw.calls.clone()))
        .map_err(Error::internal)?;
    r.register(Box::new(gw.denied.clone()))
        .map_err(Error::internal)?;
    r.register(Box::new(gw.errors.clone()))
        .map_err(Error::internal)?;
    r.register(Box::new(gw.latency.clone()))
        .map_err(Error::internal)?;
    let t = app.telemetry_stats;
    r.register(Box::new(t.items.clone()))
        .map_err(Error::internal)?;
    r.register(Box::new(t.forwarded.clone()))
        .map_err(Error::internal)?;
    r.register(Box::new(t.forward_retries.clone()))
        .map_err(Error::internal)?;
    r.register(Box::new(t.gateway_spans_dropped.clone()))
        .map_err(Error::internal)?;
    let stored = app.db.read(crate::db::telemetry_usage::total).await?;
    gauge(
        &r,
        "agentry_telemetry_stored_bytes",
        "What the stored spans and log records weigh (the unit of telemetry.max_bytes).",
        stored as f64,
    )?;

    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .map_err(Error::internal)?;
    String::from_utf8(out).map_err(Error::internal)
}

/// Alerts by state, the outbox by status (pending is its depth; failed are
/// deliveries given up on), and delivery counters since start.
async fn alerting(app: &Watched<'_>, r: &Registry) -> Result<()> {
    let (alerts, notes) = app
        .db
        .read(|c| {
            Ok((
                crate::db::alerts::counts(c)?,
                crate::db::notifications::counts(c)?,
            ))
        })
        .await?;
    let by_state = vec(
        r,
        "agentry_alerts",
        "Alerts by state (pending, firing, resolved, inactive), as kept in the history.",
        &["state"],
    )?;
    for st in crate::alerts::AlertState::ALL {
        let n = alerts.iter().find(|(s, _)| s == st).map_or(0, |(_, n)| *n);
        by_state.with_label_values(&[st.as_str()]).set(n as f64);
    }
    let by_status = vec(
        r,
        "agentry_notifications",
        "Notifications by status: pending (the outbox depth), delivered, failed (given up).",
        &["status"],
    )?;
    for st in crate::notify::DeliveryStatus::ALL {
        let n = notes.iter().find(|(s, _)| s == st).map_or(0, |(_, n)| *n);
        by_status.with_label_values(&[st.as_str()]).set(n as f64);
    }
    let stats = app.outbox_stats;
    counter(
        r,
        "agentry_notification_attempts_retried_total",
        "Delivery attempts that failed and were scheduled again, since start.",
        stats.retried.load(Ordering::Relaxed),
    )?;
    counter(
        r,
        "agentry_notifications_delivered_total",
        "Notifications delivered since start.",
        stats.delivered.load(Ordering::Relaxed),
    )?;
    counter(
        r,
        "agentry_notifications_failed_total",
        "Notifications given up on since start.",
        stats.failed.load(Ordering::Relaxed),
    )?;
    Ok(())
}
