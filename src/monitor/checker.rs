//! The health checker: a schedule of every enabled instance, checks run
//! with bounded concurrency, results written in batches.
//!
//! Each instance is due every `interval_seconds`, first at an offset
//! spread over its interval (from its id), so thousands of instances do
//! not fire at once. A tick every 100 ms starts what is due; a semaphore
//! bounds the checks in flight (`monitoring.max_concurrent_checks`). Results
//! go to one writer task, which advances each instance's state machine and
//! commits up to a few hundred results per transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};

use super::instances::InstanceKind;
use super::state::{advance, Health, Streaks, Thresholds, Verdict};
use super::status_spec::StatusSpec;
use crate::audit::Audit;
use crate::db::{self, instances as repo, Db};
use crate::net::{Outbound, OutboundRules};

const TICK: Duration = Duration::from_millis(100);
const BATCH: usize = 500;
/// How much of a body is searched for `body_contains`.
const BODY_LIMIT: usize = 256 * 1024;
/// Redirects a check follows, each hop under the outbound rules.
const MAX_REDIRECTS: usize = 3;

/// What the checker counts, for `/metrics` and the benchmark.
pub struct CheckerStats {
    pub checks: AtomicU64,
    pub failures: AtomicU64,
    pub in_flight: AtomicU64,
    /// How late checks start against their schedule (seconds).
    pub lateness: prometheus::Histogram,
}

impl Default for CheckerStats {
    fn default() -> Self {
        let opts = prometheus::HistogramOpts::new(
            "agentry_health_check_lateness_seconds",
            "Delay between a check's scheduled and actual start.",
        )
        .buckets(vec![0.01, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        CheckerStats {
            checks: AtomicU64::default(),
            failures: AtomicU64::default(),
            in_flight: AtomicU64::default(),
            lateness: prometheus::Histogram::with_opts(opts).expect("valid histogram options"),
        }
    }
}

/// A running checker; dropping the handle does not stop it: call `stop`.
pub struct Checker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Def {
    id: String,
    kind: InstanceKind,
    url: Option<String>,
    interval_ms: i64,
    timeout_ms: i64,
    expected: StatusSpec,
    body_contains: Option<String>,
    thresholds: Thresholds,
    degraded_latency_ms: Option<i64>,
    mcp_server_id: Option<String>,
}

impl Def {
    /// A passed check that took `latency_ms`: slow above the degraded
    /// threshold.
    fn passed(&self, latency_ms: i64) -> Verdict {
        Verdict::Ok {
            slow: self.degraded_latency_ms.is_some_and(|d| latency_ms > d),
        }
    }
}

struct Due {
    def: Def,
    next_ms: i64,
}

/// One finished check.
struct Finished {
    def: Def,
    at: i64,
    verdict: Verdict,
    status: Option<i64>,
    latency_ms: Option<i64>,
    error: Option<String>,
}

/// Spread over the interval by the id, so the offset is stable across
/// restarts and reloads.
fn offset(id: &str, interval_ms: i64) -> i64 {
    let h = id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    (h % interval_ms.max(1) as u64) as i64
}

fn def_of(r: &repo::InstanceRow) -> Option<Def> {
    Some(Def {
        id: r.id.clone(),
        kind: r.kind()?,
        url: r.url.clone(),
        interval_ms: r.interval_seconds * 1000,
        timeout_ms: r.timeout_ms,
        expected: StatusSpec::parse(&r.expected_status).ok()?,
        body_contains: r.body_contains.clone(),
        thresholds: Thresholds {
            failure: r.failure_threshold,
            success: r.success_threshold,
        },
        degraded_latency_ms: r.degraded_latency_ms,
        mcp_server_id: r.mcp_server_id.clone(),
    })
}

impl Checker {
    pub fn start(
        db: Db,
        audit: Audit,
        max_concurrent: usize,
        stats: Arc<CheckerStats>,
        rules: Arc<OutboundRules>,
        gateway: crate::mcp::gateway::Gateway,
    ) -> Checker {
        let (stop, stopped) = watch::channel(false);
        let client = Outbound::new(
            rules,
            MAX_REDIRECTS,
            concat!("agentry-health/", env!("CARGO_PKG_VERSION")),
        );
        let (tx, rx) = mpsc::channel(BATCH * 4);
        let writer = tokio::spawn(write_results(db.clone(), rx));
        let st = stats.clone();
        let task = tokio::spawn(async move {
            let probes = Probes { client, gateway };
            schedule(db, audit, probes, max_concurrent, tx, stopped, st).await;
            // The schedule dropped its sender; the writer drains and ends.
            let _ = writer.await;
        });
        Checker { stop, task }
    }

    /// Stops scheduling, lets running checks finish and their results be
    /// written.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn load(db: &Db) -> Vec<repo::InstanceRow> {
    match db.read(repo::all).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the instances to check");
            Vec::new()
        }
    }
}

/// What checks reach out with: the HTTP client under the outbound rules,
/// and the gateway for a proxied server's upstream credential.
#[derive(Clone)]
struct Probes {
    client: Outbound,
    gateway: crate::mcp::gateway::Gateway,
}

async fn schedule(
    db: Db,
    audit: Audit,
    client: Probes,
    max_concurrent: usize,
    tx: mpsc::Sender<Finished>,
    mut stopped: watch::Receiver<bool>,
    stats: Arc<CheckerStats>,
) {
    let permits = Arc::new(Semaphore::new(max_concurrent));
    let mut due: HashMap<String, Due> = HashMap::new();
    let mut generation = u64::MAX;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        // Definitions change only through audited writes.
        if audit.generation() != generation {
            generation = audit.generation();
            let now = db::now_ms();
            let rows = load(&db).await;
            let mut next = HashMap::with_capacity(rows.len());
            for r in rows.iter().filter(|r| r.enabled) {
                let Some(def) = def_of(r) else { continue };
                let next_ms = match due.remove(&r.id) {
                    Some(d) if d.def.interval_ms == def.interval_ms => d.next_ms,
                    _ => now + offset(&r.id, def.interval_ms),
                };
                next.insert(r.id.clone(), Due { def, next_ms });
            }
            due = next;
        }
        let now = db::now_ms();
        for d in due.values_mut().filter(|d| d.next_ms <= now) {
            let scheduled = d.next_ms;
            // Fixed rate; after a long stall, skip what was missed.
            d.next_ms += d.def.interval_ms;
            if d.next_ms <= now {
                d.next_ms = now + d.def.interval_ms;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // Saturated: try again next tick rather than queue forever.
                d.next_ms = scheduled;
                continue;
            };
            stats
                .lateness
                .observe((now - scheduled).max(0) as f64 / 1000.0);
            stats.in_flight.fetch_add(1, Ordering::Relaxed);
            let (def, client, db, tx, stats) = (
                d.def.clone(),
                client.clone(),
                db.clone(),
                tx.clone(),
                stats.clone(),
            );
            tokio::spawn(async move {
                let finished = check(&client, &db, def, now).await;
                stats.checks.fetch_add(1, Ordering::Relaxed);
                if finished.verdict == Verdict::Fail {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                }
                stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                let _ = tx.send(finished).await;
                drop(permit);
            });
        }
    }
    // Wait for the checks in flight (they hold permits).
    let _ = permits.acquire_many(max_concurrent as u32).await;
}

async fn check(probes: &Probes, db: &Db, def: Def, at: i64) -> Finished {
    let (verdict, status, latency_ms, error) = match def.kind {
        InstanceKind::Heartbeat => heartbeat_check(db, &def, at).await,
        InstanceKind::Http => http_check(&probes.client, &def).await,
        InstanceKind::Mcp => mcp_check(probes, &def).await,
    };
    Finished {
        def,
        at,
        verdict,
        status,
        latency_ms,
        error,
    }
}

type Outcome = (Verdict, Option<i64>, Option<i64>, Option<String>);

async fn heartbeat_check(db: &Db, def: &Def, now: i64) -> Outcome {
    let id = def.id.clone();
    let last = db.read(move |c| repo::last_heartbeat(c, &id)).await;
    // A beat within the interval (plus the timeout as grace) is a pass.
    let window = def.interval_ms + def.timeout_ms;
    match last {
        Ok(Some(t)) if now - t <= window => (Verdict::Ok { slow: false }, None, None, None),
        Ok(Some(t)) => (
            Verdict::Fail,
            None,
            None,
            Some(format!("no heartbeat for {} s", (now - t) / 1000)),
        ),
        Ok(None) => (Verdict::Fail, None, None, Some("no heartbeat yet".into())),
        Err(e) => (
            Verdict::Fail,
            None,
            None,
            Some(format!("cannot read the heartbeat: {e}")),
        ),
    }
}

/// `initialize` + `ping` (see `mcp::probe`); a proxied server's probe
/// carries the server's upstream headers, as the gateway's calls do.
async fn mcp_check(probes: &Probes, def: &Def) -> Outcome {
    let Some(url) = def.url.as_deref() else {
        return (Verdict::Fail, None, None, Some("no URL".into()));
    };
    let headers = match &def.mcp_server_id {
        Some(id) => match probes.gateway.upstream_headers_of(id).await {
            Ok(h) => h,
            Err(e) => {
                return (
                    Verdict::Fail,
                    None,
                    None,
                    Some(format!("cannot open the upstream headers: {e}")),
                )
            }
        },
        None => Default::default(),
    };
    let started = Instant::now();
    let timeout = Duration::from_millis(def.timeout_ms as u64);
    let result = crate::mcp::probe::probe(&probes.client, url, &headers, timeout).await;
    let latency = started.elapsed().as_millis() as i64;
    match result {
        Ok(()) => (def.passed(latency), None, Some(latency), None),
        Err(e) => (Verdict::Fail, None, Some(latency), Some(e.to_string())),
    }
}

async fn http_check(client: &Outbound, def: &Def) -> Outcome {
    let Some(url) = def.url.as_deref() else {
        return (Verdict::Fail, None, None, Some("no URL".into()));
    };
    let request = match client.request(reqwest::Method::GET, url) {
        Ok(r) => r,
        Err(refusal) => return (Verdict::Fail, None, None, Some(refusal.to_string())),
    };
    let started = Instant::now();
    let timeout = Duration::from_millis(def.timeout_ms as u64);
    let result = tokio::time::timeout(timeout, async {
        let mut res = request.send().await?;
        let status = res.status().as_u16();
        let mut found = def.body_contains.is_none();
        if let Some(needle) = def.body_contains.as_deref() {
            let mut seen: Vec<u8> = Vec::new();
            while let Some(chunk) = res.chunk().await? {
                seen.extend_from_slice(&chunk);
                if seen.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found = true;
                    break;
                }
                if seen.len() > BODY_LIMIT {
                    break;
                }
            }
        }
        Ok::<_, reqwest::Error>((status, found))
    })
    .await;
    let latency = started.elapsed().as_millis() as i64;
    match result {
        Err(_) => (
            Verdict::Fail,
            None,
            Some(latency),
            Some(format!("timed out after {} ms", def.timeout_ms)),
        ),
        Ok(Err(e)) => (
            Verdict::Fail,
            None,
            Some(latency),
            Some(crate::net::request_failure(e)),
        ),
        Ok(Ok((status, found))) => {
            let code = Some(i64::from(status));
            if !def.expected.accepts(status) {
                (
                    Verdict::Fail,
                    code,
                    Some(latency),
                    Some(format!("status {status}")),
                )
            } else if !found {
                let e = "the body does not contain the expected text".to_string();
                (Verdict::Fail, code, Some(latency), Some(e))
            } else {
                (def.passed(latency), code, Some(latency), None)
            }
        }
    }
}

struct Known {
    state: Health,
    since: Option<i64>,
    streaks: Streaks,
}

async fn write_results(db: Db, mut rx: mpsc::Receiver<Finished>) {
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut loaded = false;
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        if !loaded {
            loaded = true;
            for r in load(&db).await {
                known.insert(
                    r.id.clone(),
                    Known {
                        state: Health::parse(&r.state),
                        since: r.state_since,
                        streaks: Streaks {
                            fail: r.fail_streak,
                            ok: r.ok_streak,
                            slow: r.slow_streak,
                            fast: r.fast_streak,
                        },
                    },
                );
            }
        }
        let mut rows = Vec::with_capacity(buf.len());
        for f in buf.drain(..) {
            let k = known.entry(f.def.id.clone()).or_insert(Known {
                state: Health::Unknown,
                since: None,
                streaks: Streaks::default(),
            });
            let (next, streaks) = advance(k.state, k.streaks, f.verdict, f.def.thresholds);
            if next != k.state {
                tracing::info!(instance = %f.def.id, from = k.state.as_str(), to = next.as_str(), "instance state changed");
                k.since = Some(f.at);
            }
            k.state = next;
            k.streaks = streaks;
            rows.push((
                repo::CheckRow {
                    instance_id: f.def.id,
                    at: f.at,
                    ok: f.verdict != Verdict::Fail,
                    status_code: f.status,
                    latency_ms: f.latency_ms,
                    error: f.error,
                },
                repo::StateRow {
                    state: next.as_str().into(),
                    state_since: k.since,
                    fail_streak: streaks.fail,
                    ok_streak: streaks.ok,
                    slow_streak: streaks.slow,
                    fast_streak: streaks.fast,
                },
            ));
        }
        let result = db
            .write(move |tx| {
                for (c, s) in &rows {
                    repo::record_check(tx, c, s)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot store health check results");
        }
    }
}
