//! Where received spans and log records go: validated and decoded by the
//! request's task, then queued to one writer that commits everything
//! queued so far in one transaction (group commit, as the audit and metric
//! writers do): a commit writes each touched page once however many
//! exports it holds, which is what keeps ingest fast under many exporters.
//! Committed spans then feed the derived series.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::derived::Derived;
use super::forward::{Forwarder, Signal};
use crate::db::logs::LogRow;
use crate::db::spans::SpanRow;
use crate::db::telemetry_usage::{self, Pruned};
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::monitor::metrics::{MetricsStore, MAX_BATCH};
use crate::monitor::self_stats::REPORTER;
use crate::monitor::telemetry_stats::TelemetryStats;

/// Exports per transaction at most.
const GROUP: usize = 32;

enum Batch {
    Spans(Vec<SpanRow>),
    Logs(Vec<LogRow>),
}

struct Job {
    sender: Arc<str>,
    batch: Batch,
    reply: oneshot::Sender<Result<usize>>,
}

#[derive(Clone)]
pub struct TelemetryStore {
    queue: mpsc::Sender<Job>,
    pub derived: Arc<Derived>,
    /// The re-export to a Collector, when configured.
    pub forwarder: Option<Forwarder>,
    pub stats: Arc<TelemetryStats>,
}

impl TelemetryStore {
    /// Starts the writer (needs a tokio runtime).
    pub fn start(
        db: Db,
        forwarder: Option<Forwarder>,
        stats: Arc<TelemetryStats>,
    ) -> TelemetryStore {
        let (queue, rx) = mpsc::channel(GROUP * 2);
        let derived = Arc::new(Derived::default());
        tokio::spawn(write_exports(db, derived.clone(), rx));
        TelemetryStore {
            queue,
            derived,
            forwarder,
            stats,
        }
    }

    /// Re-exports what arrived, as received (before anything is refused
    /// here), when a receiver is configured; `encode` gives its protobuf.
    pub fn forward(&self, signal: Signal, encode: impl FnOnce() -> Vec<u8>) {
        if let Some(f) = &self.forwarder {
            f.push(signal, encode());
        }
    }

    /// Stores spans from `sender` (a principal id); returns how many were
    /// new (a span sent again is kept once).
    pub async fn spans(&self, sender: &str, spans: Vec<SpanRow>) -> Result<usize> {
        self.submit(sender, Batch::Spans(spans)).await
    }

    /// Stores log records from `sender`; returns how many.
    pub async fn logs(&self, sender: &str, records: Vec<LogRow>) -> Result<usize> {
        self.submit(sender, Batch::Logs(records)).await
    }

    async fn submit(&self, sender: &str, batch: Batch) -> Result<usize> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            sender: Arc::from(sender),
            batch,
            reply,
        };
        let stopped = || Error::Unavailable("the telemetry writer has stopped".into());
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Fills the derived series' window from spans received in it (after a
    /// restart), at most `limit` of them.
    pub async fn warm(&self, db: &Db, limit: u32) -> Result<usize> {
        let now = db::now_ms();
        let since = now - super::derived::WINDOW_MS - 60_000;
        let spans = db
            .read(move |c| db::spans::received_since(c, since, limit))
            .await?;
        self.derived.observe(&spans, now);
        Ok(spans.len())
    }

    /// Writes the derived series as they stand now to `metrics` (as the
    /// appliance's own reports); returns how many samples.
    pub async fn publish(&self, metrics: &MetricsStore, retention_days: u32) -> Result<usize> {
        let samples = self.derived.samples(db::now_ms());
        let mut n = 0;
        for chunk in samples.chunks(MAX_BATCH) {
            n += metrics
                .ingest(REPORTER, chunk.to_vec(), retention_days)
                .await?;
        }
        Ok(n)
    }
}

impl crate::mcp::trace::SpanSink for TelemetryStore {
    /// Queues one span of the appliance's own (the gateway's) without
    /// waiting: under a full queue it is dropped rather than slow a call.
    fn emit(&self, span: SpanRow) {
        let (reply, _) = oneshot::channel();
        let job = Job {
            sender: Arc::from(crate::mcp::trace::SERVICE),
            batch: Batch::Spans(vec![span]),
            reply,
        };
        if self.queue.try_send(job).is_err() {
            self.stats.gateway_spans_dropped.inc();
            tracing::debug!("the telemetry queue is full: a gateway span was dropped");
        }
    }
}

/// Drops what is past `retention_hours` or over `max_bytes`, oldest
/// received first.
pub async fn prune(db: &Db, retention_hours: u32, max_bytes: u64) -> Result<Pruned> {
    let before = db::now_ms() - i64::from(retention_hours) * 3_600_000;
    db.write(move |tx| telemetry_usage::prune(tx, before, max_bytes))
        .await
}

async fn write_exports(db: Db, derived: Arc<Derived>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut jobs, GROUP).await > 0 {
        let (exports, replies): (Vec<_>, Vec<_>) = jobs
            .drain(..)
            .map(|j| ((j.sender, j.batch), j.reply))
            .unzip();
        let now = db::now_ms();
        let result = db
            .write(move |tx| {
                let mut counts = Vec::with_capacity(exports.len());
                // Per export, which spans were new (empty for logs).
                let mut fresh = Vec::with_capacity(exports.len());
                let mut bytes = 0;
                for (sender, batch) in &exports {
                    let (n, b) = match batch {
                        Batch::Spans(spans) => {
                            let stored = db::spans::insert(tx, spans, sender, now)?;
                            let n = stored.added();
                            fresh.push(stored.fresh);
                            (n, stored.bytes)
                        }
                        Batch::Logs(records) => {
                            fresh.push(Vec::new());
                            db::logs::insert(tx, records, sender, now)?
                        }
                    };
                    counts.push(n);
                    bytes += b;
                }
                telemetry_usage::add(tx, now, bytes)?;
                // The exports come back out: the derived series read them
                // after the commit, not inside the write transaction.
                Ok((counts, exports, fresh))
            })
            .await;
        match result {
            Ok((counts, exports, fresh)) => {
                let committed = exports
                    .iter()
                    .zip(&fresh)
                    .filter_map(|((_, batch), new)| match batch {
                        Batch::Spans(spans) => Some(spans.iter().zip(new)),
                        Batch::Logs(_) => None,
                    })
                    .flatten()
                    .filter(|(_, new)| **new)
                    .map(|(s, _)| s);
                derived.observe(committed, now);
                for (reply, n) in replies.into_iter().zip(counts) {
                    let _ = reply.send(Ok(n));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not store received telemetry");
                for reply in replies {
                    let _ = reply.send(Err(Error::Unavailable(format!(
                        "cannot store the telemetry: {e}"
                    ))));
                }
            }
        }
    }
}
