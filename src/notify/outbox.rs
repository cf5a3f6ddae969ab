//! The persisted outbox and its delivery worker.
//!
//! A notification is a row written in the same transaction as the alert
//! change that causes it, before any attempt. The worker claims due rows,
//! delivers up to `delivery_concurrency` at once, and records each attempt:
//! delivered, failed for good (a 4xx other than 408/429, or the last
//! attempt), or due again after an exponential backoff with jitter, capped.
//! A row in flight when the process dies is still pending and is sent again
//! after restart with the same id (at least once; receivers deduplicate).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, Notify, Semaphore};

pub use super::retry::RetryPolicy;
use super::store::ChannelStore;
use super::{deliver, AlertView, Kind, Message, Outcome};
use crate::db::alerts::AlertRow;
use crate::db::notifications::DeliveryStatus;
use crate::db::notifications::{self as repo, NotificationRow};
use crate::db::{self, Db};
use crate::error::Result;
use crate::timefmt;

/// Rows claimed per read.
const BATCH: u32 = 512;

/// Counters since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
}

/// The handle the engine wakes the worker with.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
    pub stats: Arc<Stats>,
}

/// The message an alert's notification carries.
pub fn message_for(a: &AlertRow, kind: Kind, id: &str, external_url: &str) -> Message {
    let base = external_url.trim_end_matches('/');
    Message {
        id: id.to_string(),
        kind,
        alert: AlertView {
            id: a.id.clone(),
            rule: a.rule.clone(),
            fingerprint: a.fingerprint.clone(),
            severity: a.severity.clone(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: timefmt::rfc3339(a.fired_at.unwrap_or(a.active_since)),
            ends_at: a.resolved_at.map(timefmt::rfc3339),
            value: a.value.clone(),
            url: format!("{base}/alerts/{}", a.id),
        },
        external_url: base.to_string(),
        sent_by: "agentry".into(),
    }
}

/// Queues one notification of `alert` inside the caller's transaction.
pub fn enqueue(
    c: &Connection,
    alert: &AlertRow,
    kind: Kind,
    channel: &str,
    channel_id: Option<&str>,
    external_url: &str,
    now: i64,
) -> Result<String> {
    let id = db::new_id();
    let msg = message_for(alert, kind, &id, external_url);
    let about = About::Alert(&alert.id);
    enqueue_message(c, &msg, about, channel, channel_id, now)?;
    Ok(id)
}

/// What a notification tells of.
#[derive(Debug, Clone, Copy)]
pub enum About<'a> {
    Alert(&'a str),
    Approval(&'a str),
}

/// Queues `msg` (its `id` is the row's) inside the caller's transaction. A
/// channel name with no configured channel is logged as failed at once, so
/// the gap is visible in the notification log.
pub fn enqueue_message(
    c: &Connection,
    msg: &Message,
    about: About<'_>,
    channel: &str,
    channel_id: Option<&str>,
    now: i64,
) -> Result<()> {
    let (status, error) = match channel_id {
        Some(_) => (DeliveryStatus::Pending, None),
        None => (
            DeliveryStatus::Failed,
            Some(format!("no channel named {channel:?} is configured")),
        ),
    };
    let (alert_id, approval_id) = match about {
        About::Alert(a) => (Some(a.to_string()), None),
        About::Approval(a) => (None, Some(a.to_string())),
    };
    repo::insert(
        c,
        &NotificationRow {
            id: msg.id.clone(),
            alert_id,
            approval_id,
            channel_id: channel_id.map(String::from),
            channel: channel.to_string(),
            kind: msg.kind.as_str().into(),
            message: serde_json::to_string(msg).expect("messages serialise"),
            status,
            attempts: 0,
            next_attempt_at: now,
            last_error: error,
            created_at: now,
            delivered_at: None,
        },
    )?;
    Ok(())
}

/// The notification log, newest first; `status` pending, delivered or
/// failed; `alert_id` one alert's notifications.
pub async fn list(
    db: &Db,
    status: Option<DeliveryStatus>,
    alert_id: Option<String>,
    before: Option<String>,
    limit: u32,
) -> Result<Vec<NotificationRow>> {
    db.read(move |c| repo::list(c, status, alert_id.as_deref(), before.as_deref(), limit))
        .await
}

/// One finished attempt.
struct Attempt {
    id: String,
    channel: String,
    attempts_before: i64,
    outcome: Outcome,
}

impl Outbox {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the worker; it runs until the returned handle is aborted.
    pub fn spawn(
        &self,
        db: Db,
        store: ChannelStore,
        policy: RetryPolicy,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.run(db, store, policy).await })
    }

    async fn run(self, db: Db, store: ChannelStore, policy: RetryPolicy) {
        let http = store.http().clone();
        let permits = Arc::new(Semaphore::new(policy.concurrency.max(1)));
        // Ids claimed and not yet recorded. Only this loop touches it, so a
        // row leaves it only between two reads: a read that began before
        // an attempt was committed can never hand that row out again.
        let mut in_flight: HashSet<String> = HashSet::new();
        let recorded: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel::<Attempt>();
        let recorder = tokio::spawn(record(
            db.clone(),
            rx,
            recorded.clone(),
            self.clone(),
            policy,
        ));
        let _stop_recorder = AbortOnDrop(recorder);
        loop {
            for id in std::mem::take(&mut *recorded.lock().expect("recorded ids")) {
                in_flight.remove(&id);
            }
            let now = db::now_ms();
            let rows = match db.read(move |c| repo::due(c, now, BATCH)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: could not read due notifications");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut claimed = 0;
            for row in rows {
                if !in_flight.insert(row.id.clone()) {
                    continue;
                }
                claimed += 1;
                let permit = permits.clone().acquire_owned().await.expect("never closed");
                let (http, store, tx) = (http.clone(), store.clone(), tx.clone());
                tokio::spawn(async move {
                    let outcome = attempt(&http, &store, &row, policy.timeout).await;
                    drop(permit);
                    let _ = tx.send(Attempt {
                        id: row.id,
                        channel: row.channel,
                        attempts_before: row.attempts,
                        outcome,
                    });
                });
            }
            if claimed == 0 {
                let next = db
                    .read(move |c| repo::next_due_after(c, now))
                    .await
                    .ok()
                    .flatten();
                let wait = next
                    .map(|t| (t - db::now_ms()).clamp(1, 1000) as u64)
                    .unwrap_or(1000);
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn attempt(
    http: &crate::net::Outbound,
    store: &ChannelStore,
    row: &NotificationRow,
    timeout: Duration,
) -> Outcome {
    let Some(channel_id) = &row.channel_id else {
        return Outcome::Fail(format!("no channel named {:?} is configured", row.channel));
    };
    let msg: Message = match serde_json::from_str(&row.message) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("stored message is unreadable: {e}")),
    };
    match store.settings(channel_id).await {
        Ok(Some(settings)) => deliver(http, &settings, &row.channel, &msg, timeout).await,
        Ok(None) => Outcome::Fail(format!("channel {:?} was deleted", row.channel)),
        Err(e) => Outcome::Retry(format!("channel settings unavailable: {e}")),
    }
}

/// Writes finished attempts in batches (one transaction each).
async fn record(
    db: Db,
    mut rx: mpsc::UnboundedReceiver<Attempt>,
    recorded: Arc<Mutex<Vec<String>>>,
    outbox: Outbox,
    policy: RetryPolicy,
) {
    let mut buf = Vec::with_capacity(BATCH as usize);
    while rx.recv_many(&mut buf, BATCH as usize).await > 0 {
        let batch: Vec<Attempt> = std::mem::take(&mut buf);
        let ids: Vec<String> = batch.iter().map(|a| a.id.clone()).collect();
        let now = db::now_ms();
        let rows: Vec<(String, DeliveryStatus, i64, Option<String>)> = batch
            .into_iter()
            .map(|a| {
                let attempts = a.attempts_before + 1;
                match a.outcome {
                    Outcome::Delivered => {
                        outbox.stats.delivered.fetch_add(1, Ordering::Relaxed);
                        (a.id, DeliveryStatus::Delivered, now, None)
                    }
                    Outcome::Fail(e) => {
                        outbox.stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(channel = %a.channel, error = %e, "notification failed");
                        (a.id, DeliveryStatus::Failed, now, Some(e))
                    }
                    Outcome::Retry(e) if attempts >= policy.max_attempts => {
                        outbox.stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(channel = %a.channel, error = %e, attempts, "notification failed for good");
                        (a.id, DeliveryStatus::Failed, now, Some(format!("gave up after {attempts} attempts: {e}")))
                    }
                    Outcome::Retry(e) => {
                        outbox.stats.retried.fetch_add(1, Ordering::Relaxed);
                        (a.id, DeliveryStatus::Pending, now + policy.backoff_ms(attempts), Some(e))
                    }
                }
            })
            .collect();
        let written = db
            .write(move |c| {
                for (id, status, next, err) in &rows {
                    repo::record_attempt(c, id, *status, *next, err.as_deref(), now)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = written {
            // The rows stay pending and are attempted again: at least once.
            tracing::warn!(error = %e, "outbox: could not record delivery attempts");
        }
        // Handed back only after the commit (or its failure: then the rows
        // are still pending and are simply attempted again).
        recorded.lock().expect("recorded ids").extend(ids);
        outbox.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let p = RetryPolicy {
            concurrency: 1,
            max_attempts: 10,
            initial_ms: 1000,
            max_ms: 8000,
            timeout: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let b1 = p.backoff_ms(1);
            assert!((500..=1000).contains(&b1), "{b1}");
            let b3 = p.backoff_ms(3);
            assert!((2000..=4000).contains(&b3), "{b3}");
            let b9 = p.backoff_ms(9);
            assert!((4000..=8000).contains(&b9), "{b9}");
            assert!(p.backoff_ms(1000) <= 8000);
        }
    }
}
