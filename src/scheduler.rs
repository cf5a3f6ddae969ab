//! Timed jobs, registered on tokio-cron-scheduler. Each job calls a domain
//! function; nothing here knows SQL or HTTP.

use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::app::App;
use crate::audit::{Context, Outcome};
use crate::db;
use crate::identity::sessions;

/// How often the scheduler proves it is alive; `/readyz` fails after three
/// missed beats.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
const RETENTION: Duration = Duration::from_secs(3600);
/// How often the write-ahead log's size is looked at (see `db::wal`).
const WAL_CHECK: Duration = Duration::from_secs(5);
/// How often the appliance samples itself and its host.
const SELF_STATS: Duration = Duration::from_secs(15);
/// How often the series derived from spans are written to the metric store.
const DERIVED_SERIES: Duration = Duration::from_secs(15);
/// How often approval requests past their time are marked expired.
const APPROVAL_EXPIRY: Duration = Duration::from_secs(10);
/// Spans read back at start to fill the derived series' window.
const DERIVED_WARM_SPANS: u32 = 200_000;

pub async fn start(app: &App) -> Result<JobScheduler, JobSchedulerError> {
    let sched = JobScheduler::new().await?;

    let status = app.status.clone();
    status.scheduler_beat(db::now_ms());
    sched
        .add(Job::new_repeated_async(
            crate::monitor::runtime::SCHEDULER_HEARTBEAT,
            move |_, _| {
                let status = status.clone();
                Box::pin(async move { status.scheduler_beat(db::now_ms()) })
            },
        )?)
        .await?;

    let house = app.clone();
    sched
        .add(Job::new_repeated_async(HOUSEKEEPING, move |_, _| {
            let app = house.clone();
            Box::pin(async move { housekeeping(&app).await })
        })?)
        .await?;

    let retention = app.clone();
    sched
        .add(Job::new_repeated_async(RETENTION, move |_, _| {
            let app = retention.clone();
            Box::pin(async move {
                audit_retention(&app).await;
                check_retention(&app).await;
                alert_retention(&app).await;
            })
        })?)
        .await?;

    let alerts = app.clone();
    let every = Duration::from_secs(u64::from(app.config.alerting.evaluation_interval_seconds));
    sched
        .add(Job::new_repeated_async(every, move |_, _| {
            let app = alerts.clone();
            Box::pin(async move { evaluate_alerts(&app).await })
        })?)
        .await?;

    if !app.config.backup.schedule.trim().is_empty() {
        let backups = app.clone();
        sched
            .add(Job::new_async(
                app.config.backup.schedule.as_str(),
                move |_, _| {
                    let app = backups.clone();
                    Box::pin(async move { scheduled_backup(&app).await })
                },
            )?)
            .await?;
    }

    let keeper = std::sync::Arc::new(db::wal::Keeper::new(
        app.config.database_path(),
        db::wal::TRUNCATE_ABOVE_BYTES,
    ));
    sched
        .add(Job::new_repeated_async(WAL_CHECK, move |_, _| {
            let keeper = keeper.clone();
            Box::pin(async move { keep_wal_bounded(keeper).await })
        })?)
        .await?;

    let stats = app.clone();
    let sampler = crate::monitor::self_stats::Sampler::default();
    sched
        .add(Job::new_repeated_async(SELF_STATS, move |_, _| {
            let (app, sampler) = (stats.clone(), sampler.clone());
            Box::pin(async move {
                if let Err(e) = sampler.run(&app.watched()).await {
                    tracing::warn!(error = %e, "could not sample the appliance's own figures");
                }
            })
        })?)
        .await?;

    let warm = app.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.telemetry.warm(&warm.db, DERIVED_WARM_SPANS).await {
            tracing::warn!(error = %e, "could not read recent spans for the derived series");
        }
    });
    let derived = app.clone();
    sched
        .add(Job::new_repeated_async(DERIVED_SERIES, move |_, _| {
            let app = derived.clone();
            Box::pin(async move {
                let retention = app.config.monitoring.metrics_retention_days;
                if let Err(e) = app.telemetry.publish(&app.metrics, retention).await {
                    tracing::warn!(error = %e, "could not write the series derived from spans");
                }
            })
        })?)
        .await?;

    let approvals = app.clone();
    sched
        .add(Job::new_repeated_async(APPROVAL_EXPIRY, move |_, _| {
            let app = approvals.clone();
            Box::pin(async move { expire_approvals(&app).await })
        })?)
        .await?;

    sched.start().await?;
    Ok(sched)
}

/// Marks approval requests nobody decided (or used) in time as expired,
/// with their records. A held call ends at its own expiry; this catches
/// requests whose caller has gone, so the pages and the API say
/// `expired` soon after the fact.
pub async fn expire_approvals(app: &App) {
    let ctx = Context::system("scheduler");
    if let Err(e) = app.approvals().expire(&ctx).await {
        tracing::warn!(error = %e, "could not expire approval requests");
    }
}

/// Drops expired sessions, stale login failures and idle rate-limit
/// buckets.
pub async fn housekeeping(app: &App) {
    match sessions::prune(&app.db, app.session_policy).await {
        Ok(n) if n > 0 => tracing::debug!(removed = n, "pruned expired sessions"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "session pruning failed"),
    }
    let before = db::now_ms() - app.lockout_policy.window_ms;
    if let Err(e) = app
        .db
        .write(move |tx| db::users::prune_failures(tx, before))
        .await
    {
        tracing::warn!(error = %e, "login failure pruning failed");
    }
    let t = &app.config.telemetry;
    match crate::telemetry::store::prune(&app.db, t.retention_hours, t.max_bytes).await {
        Ok(p) if p.spans + p.logs > 0 => {
            tracing::debug!(spans = p.spans, logs = p.logs, "pruned telemetry")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "telemetry pruning failed"),
    }
    app.login_limiter.prune();
    app.token_limiter.prune();
    app.auth_failure_limiter.prune();
    if let Some(l) = &app.anonymous_limiter {
        l.prune();
    }
    let now = db::now_ms();
    if let Err(e) = app
        .db
        .write(move |tx| db::tokens::prune_revoked(tx, now))
        .await
    {
        tracing::warn!(error = %e, "revoked-token pruning failed");
    }
    if let Err(e) = app.signing_keys.reload(&app.db).await {
        tracing::warn!(error = %e, "signing key reload failed");
    }
    rotate_signing_key_if_due(app).await;
    match app.keyring.rotate_due(&app.db, &app.audit).await {
        Ok(rotated) if !rotated.is_empty() => {
            tracing::info!(classifications = ?rotated, "encryption keys rotated on schedule")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "scheduled encryption key rotation failed"),
    }
}

/// Rotates the signing key once it is older than the configured age.
pub async fn rotate_signing_key_if_due(app: &App) {
    let days = app.config.tokens.signing_key_rotation_days;
    if days == 0 {
        return;
    }
    let due = app
        .signing_keys
        .entries()
        .iter()
        .find(|e| e.retired_at.is_none())
        .is_none_or(|e| db::now_ms() - e.created_at >= i64::from(days) * 86_400_000);
    if due {
        let max_token_ms = i64::from(app.config.tokens.lifetime_seconds) * 1000;
        let ctx = Context::system("rotation");
        match app
            .signing_keys
            .rotate(&app.db, &app.audit, &ctx, max_token_ms)
            .await
        {
            Ok(kid) => tracing::info!(%kid, "signing key rotated"),
            Err(e) => tracing::error!(error = %e, "signing key rotation failed"),
        }
    }
}

/// Prunes audit records past the retention period and records that it did.
pub async fn audit_retention(app: &App) {
    let days = app.config.audit.retention_days;
    if days == 0 {
        return;
    }
    let before = db::now_ms() - i64::from(days) * 86_400_000;
    match app.audit.prune(before).await {
        Ok(0) => {}
        Ok(n) => {
            let ev = Context::system("retention")
                .event("audit.prune", Outcome::Success)
                .detail("removed", n)
                .detail("retention_days", days);
            if let Err(e) = app.audit.record(ev).await {
                tracing::error!(error = %e, "could not record the audit prune");
            }
        }
        Err(e) => tracing::error!(error = %e, "audit retention failed"),
    }
}

/// Folds old check results into rollups (see `monitor::rollup`) and drops
/// metric samples past their retention.
pub async fn check_retention(app: &App) {
    let m = &app.config.monitoring;
    let windows = crate::monitor::rollup::Windows {
        raw_hours: i64::from(m.raw_retention_hours),
        minute_days: i64::from(m.minute_rollup_days),
        hour_days: i64::from(m.hour_rollup_days),
    };
    match crate::monitor::rollup::run(&app.db, db::now_ms(), windows).await {
        Ok(f) => tracing::debug!(?f, "health check history downsampled"),
        Err(e) => tracing::error!(error = %e, "health check downsampling failed"),
    }
    let days = app.config.monitoring.metrics_retention_days;
    match app.metrics.prune(&app.db, days).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "pruned old metric samples"),
        Err(e) => tracing::error!(error = %e, "metrics retention failed"),
    }
}

/// One evaluation cycle of every enabled alert rule.
async fn evaluate_alerts(app: &App) {
    match app.alerts.cycle(&app.db, &app.audit, db::now_ms()).await {
        Ok(r) if r.notifications > 0 || r.firing > 0 => {
            tracing::debug!(
                rules = r.rules,
                firing = r.firing,
                queued = r.notifications,
                "alert rules evaluated"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
    }
}

/// Resolved alerts, ended silences and finished notifications past the
/// retention go.
async fn alert_retention(app: &App) {
    match crate::alerts::engine::prune(&app.db, app.config.alerting.history_retention_days).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "alert history pruned"),
        Err(e) => tracing::warn!(error = %e, "alert history pruning failed"),
    }
}

/// Empties the write-ahead log when it has grown (see `db::wal`). A busy
/// checkpoint is normal under load and is retried at the next tick.
async fn keep_wal_bounded(keeper: std::sync::Arc<db::wal::Keeper>) {
    match tokio::task::spawn_blocking(move || keeper.run()).await {
        Ok(Ok(Some(cp))) => tracing::debug!(
            busy = cp.busy,
            log_frames = cp.log_frames,
            checkpointed = cp.checkpointed_frames,
            "write-ahead log checkpointed"
        ),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "write-ahead log checkpoint failed"),
        Err(e) => tracing::warn!(error = %e, "write-ahead log checkpoint task failed"),
    }
}

/// An online backup into the backup directory, then the oldest beyond
/// `backup.keep` deleted; audited either way.
pub async fn scheduled_backup(app: &App) {
    let source = app.config.database_path();
    let dir = app.config.backup_dir();
    let keep = app.config.backup.keep as usize;
    let taken = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let target = dir.join(db::backup::scheduled_name(db::now_ms()));
        let report = db::backup::backup(&source, &target, false)?;
        let removed = db::backup::prune(&dir, keep)?;
        Ok::<_, db::backup::BackupError>((report, removed))
    })
    .await;
    let ctx = Context::system("scheduler");
    let event = match taken {
        Ok(Ok((report, removed))) => {
            tracing::info!(path = %report.path.display(), bytes = report.bytes, removed = removed.len(), "scheduled backup written");
            ctx.event("system.backup", Outcome::Success)
                .detail("path", report.path.display().to_string())
                .detail("bytes", report.bytes)
                .detail("scheduled", true)
                .detail("removed", removed.len())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "scheduled backup failed");
            ctx.event("system.backup", Outcome::Error)
                .detail("scheduled", true)
                .reason(e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduled backup task failed");
            ctx.event("system.backup", Outcome::Error)
                .reason(e.to_string())
        }
    };
    if let Err(e) = app.audit.record(event).await {
        tracing::warn!(error = %e, "could not record the backup");
    }
}
