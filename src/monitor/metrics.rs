//! Metrics reported by agents (`POST /api/v1/metrics`) and read back by
//! series (`GET /api/v1/metrics/query`).
//!
//! A batch is validated whole before anything is written, and written in
//! one transaction: either every sample is stored or none is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::db::{self, metrics as repo, Db};
use crate::error::{Error, FieldErrors, Result};

pub const MAX_BATCH: usize = 5000;
pub use crate::names::MAX_METRIC_NAME as MAX_NAME;
pub const MAX_LABELS: usize = 20;
pub use crate::names::MAX_LABEL_NAME;
pub const MAX_LABEL_VALUE: usize = 256;
/// How far ahead of the server's clock a timestamp may be.
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;

/// Series ids by (reporter, name, labels), so a report does not look each
/// series up again. Read and changed only inside write transactions (which
/// take turns), so a prune that deletes series cannot race an ingest.
#[derive(Clone, Default)]
pub struct SeriesCache(Arc<Mutex<HashMap<SeriesKey, i64>>>);

/// (reporter, name, labels as canonical JSON).
type SeriesKey = (String, String, String);

const SERIES_CACHE_MAX: usize = 200_000;

/// One sample as reported.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub value: f64,
    pub labels: BTreeMap<String, String>,
    /// ms since the epoch; `None` = now.
    pub at: Option<i64>,
}

/// Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    (1..=MAX_NAME).contains(&n.len())
        && c.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub use crate::names::valid_label_name;

fn check(i: usize, s: &Sample, now: i64, oldest: i64, e: &mut FieldErrors) {
    let at = |f: &str| format!("metrics[{i}].{f}");
    if !valid_name(&s.name) {
        e.insert(
            at("name"),
            format!("must match [a-zA-Z_:][a-zA-Z0-9_:]* and be at most {MAX_NAME} characters"),
        );
    }
    if !s.value.is_finite() {
        e.insert(at("value"), "must be a finite number".into());
    } else if (s.name.ends_with("_rate") || s.name.ends_with("_utilization"))
        && !(0.0..=1.0).contains(&s.value)
    {
        e.insert(
            at("value"),
            "a *_rate or *_utilization is a ratio between 0 and 1".into(),
        );
    }
    if s.labels.len() > MAX_LABELS {
        e.insert(at("labels"), format!("at most {MAX_LABELS} labels"));
    } else {
        for (k, v) in &s.labels {
            if !valid_label_name(k) {
                e.insert(
                    at("labels"),
                    format!("label names match [a-zA-Z_][a-zA-Z0-9_]*, at most {MAX_LABEL_NAME} characters, not starting with __"),
                );
                break;
            }
            if v.chars().count() > MAX_LABEL_VALUE {
                e.insert(
                    at("labels"),
                    format!("label values are at most {MAX_LABEL_VALUE} characters"),
                );
                break;
            }
        }
    }
    match s.at {
        Some(t) if t > now + MAX_FUTURE_MS => {
            e.insert(
                at("timestamp"),
                "is more than 5 minutes in the future".into(),
            );
        }
        Some(t) if t < oldest => {
            e.insert(
                at("timestamp"),
                "is older than the metrics retention".into(),
            );
        }
        _ => {}
    }
}

/// What is wrong with one sample for a store keeping `retention_days`,
/// if anything (for senders whose samples are taken one by one, as OTLP's
/// partial success does).
pub fn problem(s: &Sample, retention_days: u32) -> Option<String> {
    let now = db::now_ms();
    let oldest = now - i64::from(retention_days) * 86_400_000;
    let mut e = FieldErrors::new();
    check(0, s, now, oldest, &mut e);
    e.into_iter()
        .next()
        .map(|(field, msg)| format!("{} {msg}", field.trim_start_matches("metrics[0].")))
}

/// The store agents report into. Reports are validated by the caller's
/// task, then queued to one writer that commits everything queued so far
/// in one transaction (group commit): a commit writes each touched
/// database page once however many reports it holds, which is what makes
/// ingest fast under concurrency.
#[derive(Clone)]
pub struct MetricsStore {
    queue: mpsc::Sender<Job>,
    cache: SeriesCache,
}

struct Job {
    reporter: Arc<str>,
    samples: Vec<Sample>,
    now: i64,
    reply: oneshot::Sender<Result<usize>>,
}

/// Reports per transaction at most.
const GROUP: usize = 64;

impl MetricsStore {
    /// Starts the writer (needs a tokio runtime).
    pub fn start(db: Db) -> MetricsStore {
        let (queue, rx) = mpsc::channel(GROUP * 4);
        let cache = SeriesCache::default();
        tokio::spawn(write_reports(db, cache.clone(), rx));
        MetricsStore { queue, cache }
    }

    /// Validates and stores a report from `reporter` (a principal id):
    /// every sample or none. Returns how many.
    pub async fn ingest(
        &self,
        reporter: &str,
        samples: Vec<Sample>,
        retention_days: u32,
    ) -> Result<usize> {
        if samples.is_empty() || samples.len() > MAX_BATCH {
            return Err(Error::field(
                "metrics",
                format!("must hold 1 to {MAX_BATCH} samples"),
            ));
        }
        let now = db::now_ms();
        let oldest = now - i64::from(retention_days) * 86_400_000;
        let mut errors = FieldErrors::new();
        for (i, s) in samples.iter().enumerate() {
            check(i, s, now, oldest, &mut errors);
            if errors.len() >= 20 {
                break;
            }
        }
        if !errors.is_empty() {
            return Err(Error::fields(errors));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            reporter: Arc::from(reporter),
            samples,
            now,
            reply,
        };
        let stopped = || Error::Unavailable("the metrics writer has stopped".into());
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Drops samples past the retention, and series left empty.
    pub async fn prune(&self, db: &Db, retention_days: u32) -> Result<usize> {
        let before = db::now_ms() - i64::from(retention_days) * 86_400_000;
        let cache = self.cache.clone();
        db.write(move |c| {
            let n = repo::prune(c, before)?;
            // Series without samples were deleted; forget every id.
            cache.clear();
            Ok(n)
        })
        .await
    }
}

async fn write_reports(db: Db, cache: SeriesCache, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut jobs, GROUP).await > 0 {
        let (reports, replies): (Vec<_>, Vec<_>) = jobs
            .drain(..)
            .map(|j| ((j.reporter, j.samples, j.now), j.reply))
            .unzip();
        let reports = Arc::new(reports);
        let mut result = commit(&db, &cache, reports.clone()).await;
        // A cached id whose series a prune removed fails the insert; the
        // retry starts from an empty cache.
        if result.is_err() && !cache.is_empty() {
            cache.clear();
            result = commit(&db, &cache, reports.clone()).await;
        }
        for (reply, (_, samples, _)) in replies.into_iter().zip(reports.iter()) {
            let answer = match &result {
                Ok(()) => Ok(samples.len()),
                Err(e) => Err(Error::Unavailable(format!("cannot store the samples: {e}"))),
            };
            let _ = reply.send(answer);
        }
    }
}

type Report = (Arc<str>, Vec<Sample>, i64);

async fn commit(db: &Db, cache: &SeriesCache, reports: Arc<Vec<Report>>) -> Result<()> {
    let shared = cache.clone();
    let created = db
        .write(move |tx| {
            // Held for the transaction: writers take turns anyway.
            let known = shared
                .0
                .lock()
                .map_err(|_| Error::internal("series cache poisoned"))?;
            let mut created: HashMap<SeriesKey, i64> = HashMap::new();
            let mut rows = Vec::new();
            for (reporter, samples, now) in reports.iter() {
                for s in samples {
                    let labels = serde_json::to_string(&s.labels).map_err(Error::internal)?;
                    let key = (reporter.to_string(), s.name.clone(), labels);
                    let id = match known.get(&key).or_else(|| created.get(&key)) {
                        Some(id) => *id,
                        None => {
                            let id = repo::series_id(tx, &key.1, &key.0, &key.2, *now)?;
                            created.insert(key, id);
                            id
                        }
                    };
                    rows.push((id, s.at.unwrap_or(*now), s.value));
                }
            }
            // Rows go in order: a later sample for the same series and time
            // replaces an earlier one.
            repo::insert_samples(tx, &rows)?;
            Ok(created)
        })
        .await?;
    // Only ids of committed series enter the cache.
    cache.extend(created);
    Ok(())
}

impl SeriesCache {
    fn is_empty(&self) -> bool {
        self.0.lock().map(|m| m.is_empty()).unwrap_or(true)
    }

    fn extend(&self, created: HashMap<SeriesKey, i64>) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() + created.len() > SERIES_CACHE_MAX {
                m.clear();
            }
            m.extend(created);
        }
    }

    fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

/// A series and its samples in a window.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Series {
    pub name: String,
    pub reporter: String,
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<Point>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Point {
    pub timestamp: String,
    pub value: f64,
}

/// Every series named `name` whose labels include `matching`, with its
/// samples in [from, to).
pub async fn query(
    db: &Db,
    name: String,
    reporter: Option<String>,
    matching: BTreeMap<String, String>,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<Series>> {
    db.read(move |c| {
        let mut out = Vec::new();
        for s in repo::series_named(c, &name, reporter.as_deref())? {
            let labels: BTreeMap<String, String> =
                serde_json::from_str(&s.labels).map_err(Error::internal)?;
            if matching.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                continue;
            }
            let samples = repo::samples(c, s.id, from, to, limit)?
                .into_iter()
                .map(|(at, value)| Point {
                    timestamp: crate::timefmt::rfc3339(at),
                    value,
                })
                .collect();
            out.push(Series {
                name: s.name,
                reporter: s.reporter,
                labels,
                samples,
            });
        }
        Ok(out)
    })
    .await
}

/// A series drawn on a chart: its identity and (bucket start, largest
/// value in the bucket) points.
pub struct Plotted {
    pub reporter: String,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

/// The series named `name` whose labels `keep` accepts, each folded into
/// buckets of `bucket_ms` over [from, to): at most `max_series` of them,
/// and how many matched in all.
pub async fn plot(
    db: &Db,
    name: String,
    keep: impl Fn(&BTreeMap<String, String>) -> bool + Send + 'static,
    from: i64,
    to: i64,
    bucket_ms: i64,
    max_series: usize,
) -> Result<(Vec<Plotted>, usize)> {
    db.read(move |c| {
        let mut out = Vec::new();
        let mut matched = 0;
        for s in repo::series_named(c, &name, None)? {
            let labels: BTreeMap<String, String> =
                serde_json::from_str(&s.labels).map_err(Error::internal)?;
            if !keep(&labels) {
                continue;
            }
            matched += 1;
            if out.len() < max_series {
                out.push(Plotted {
                    points: repo::bucketed_max(c, s.id, from, to, bucket_ms)?,
                    reporter: s.reporter,
                    labels,
                });
            }
        }
        Ok((out, matched))
    })
    .await
}

/// Every metric name reported so far, sorted.
pub async fn names(db: &Db) -> Result<Vec<String>> {
    let mut v: Vec<String> = db
        .read(crate::db::metric_reads::reported_names)
        .await?
        .into_iter()
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus() {
        for ok in ["error_rate", "http_requests_total", "a:b_c", "_x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "error-rate", "a b", "é", &"x".repeat(201)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_label_name("workflow"));
        assert!(!valid_label_name("__name__") && !valid_label_name("a-b") && !valid_label_name(""));
    }
}
