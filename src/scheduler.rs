//! Timed jobs, registered on tokio-cron-scheduler. Each job calls a domain
//! function; nothing here knows SQL or HTTP.

use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::app::App;
use crate::db;
use crate::identity::sessions;

/// How often the scheduler proves it is alive; `/readyz` fails after three
/// missed beats.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
const HOUSEKEEPING: Duration = Duration::from_secs(60);

pub async fn start(app: &App) -> Result<JobScheduler, JobSchedulerError> {
    let sched = JobScheduler::new().await?;

    let status = app.status.clone();
    status.scheduler_beat(db::now_ms());
    sched
        .add(Job::new_repeated_async(HEARTBEAT, move |_, _| {
            let status = status.clone();
            Box::pin(async move { status.scheduler_beat(db::now_ms()) })
        })?)
        .await?;

    let house = app.clone();
    sched
        .add(Job::new_repeated_async(HOUSEKEEPING, move |_, _| {
            let app = house.clone();
            Box::pin(async move { housekeeping(&app).await })
        })?)
        .await?;

    sched.start().await?;
    Ok(sched)
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
    app.login_limiter.prune();
}
