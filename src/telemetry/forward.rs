//! Re-export to an OpenTelemetry Collector (`telemetry.forward_otlp_url`):
//! every export received is sent on as OTLP/HTTP protobuf, from a queue
//! bounded in bytes (the oldest dropped first when the receiver cannot keep
//! up), retried with backoff while the receiver is unreachable or answers
//! 429/502/503/504 (honouring `Retry-After`), dropped on any other refusal.
//! One sender, in order: a Collector is where a fleet that outgrows one
//! host keeps its pipeline, not a second store to race.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::monitor::telemetry_stats::TelemetryStats;
use crate::net::Outbound;

/// Longest a re-export may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Which OTLP path an export goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

struct Export {
    signal: Signal,
    body: Vec<u8>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Export>,
    bytes: usize,
}

#[derive(Clone)]
pub struct Forwarder {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    max_bytes: usize,
    stats: Arc<TelemetryStats>,
}

impl Forwarder {
    /// Starts the sender to `base` (the receiver's URL, without
    /// `/v1/...`), with `headers` on every request.
    pub fn start(
        base: &str,
        headers: reqwest::header::HeaderMap,
        max_bytes: usize,
        http: Outbound,
        stats: Arc<TelemetryStats>,
    ) -> Forwarder {
        let f = Forwarder {
            queue: Arc::default(),
            wake: Arc::default(),
            max_bytes,
            stats,
        };
        let base = base.trim_end_matches('/').to_string();
        tokio::spawn(send_all(f.clone(), base, headers, http));
        f
    }

    /// Queues an export (protobuf); makes room by dropping the oldest.
    pub fn push(&self, signal: Signal, body: Vec<u8>) {
        if body.len() > self.max_bytes {
            self.stats.forward_dropped();
            return;
        }
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        while q.bytes + body.len() > self.max_bytes {
            let Some(old) = q.items.pop_front() else {
                break;
            };
            q.bytes -= old.body.len();
            self.stats.forward_dropped();
        }
        q.bytes += body.len();
        q.items.push_back(Export { signal, body });
        drop(q);
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<Export> {
        let mut q = self.queue.lock().ok()?;
        let e = q.items.pop_front()?;
        q.bytes -= e.body.len();
        Some(e)
    }

    /// Puts a failed export back at the front, if it still fits (newer
    /// exports that arrived meanwhile are kept first).
    fn retry_later(&self, e: Export) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        if q.bytes + e.body.len() > self.max_bytes {
            self.stats.forward_dropped();
            return;
        }
        q.bytes += e.body.len();
        q.items.push_front(e);
    }
}

/// How an attempt went.
enum Sent {
    Done,
    /// Worth trying again, after at least this long.
    Retry(Option<Duration>),
    Refused(String),
}

async fn send_one(
    http: &Outbound,
    base: &str,
    headers: &reqwest::header::HeaderMap,
    e: &Export,
) -> Sent {
    let url = format!("{base}{}", e.signal.path());
    let req = match http.request(reqwest::Method::POST, &url) {
        Ok(r) => r,
        Err(refusal) => return Sent::Refused(refusal.to_string()),
    };
    let sent = req
        .headers(headers.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .body(e.body.clone())
        .timeout(SEND_TIMEOUT)
        .send()
        .await;
    match sent {
        Err(err) => {
            tracing::debug!(error = %crate::net::request_failure(err), "re-export failed; retrying");
            Sent::Retry(None)
        }
        Ok(resp) if resp.status().is_success() => Sent::Done,
        Ok(resp) if matches!(resp.status().as_u16(), 429 | 502 | 503 | 504) => {
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(BACKOFF_MAX));
            Sent::Retry(after)
        }
        Ok(resp) => Sent::Refused(format!(
            "the receiver answered HTTP {}",
            resp.status().as_u16()
        )),
    }
}

async fn send_all(f: Forwarder, base: String, headers: reqwest::header::HeaderMap, http: Outbound) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let Some(e) = f.pop() else {
            f.wake.notified().await;
            continue;
        };
        match send_one(&http, &base, &headers, &e).await {
            Sent::Done => {
                f.stats.forwarded.with_label_values(&["sent"]).inc();
                backoff = BACKOFF_FIRST;
            }
            Sent::Refused(why) => {
                f.stats.forward_dropped();
                tracing::warn!(reason = %why, "the OTLP receiver refused a re-export; dropped");
            }
            Sent::Retry(after) => {
                f.stats.forward_retries.inc();
                f.retry_later(e);
                let wait = after.unwrap_or(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(max_bytes: usize) -> Forwarder {
        // No sender: the queue alone.
        Forwarder {
            queue: Arc::default(),
            wake: Arc::default(),
            max_bytes,
            stats: Arc::default(),
        }
    }

    fn dropped(f: &Forwarder) -> u64 {
        f.stats.forwarded.with_label_values(&["dropped"]).get()
    }

    #[test]
    fn the_queue_keeps_the_newest_within_its_bytes() {
        let f = idle(10);
        for n in [4, 4, 4] {
            f.push(Signal::Traces, vec![n; n as usize]);
        }
        assert_eq!(dropped(&f), 1);
        f.push(Signal::Logs, vec![0; 11]);
        assert_eq!(dropped(&f), 2, "larger than the queue");
        let first = f.pop().unwrap();
        assert_eq!(first.body.len(), 4);
        f.push(Signal::Metrics, vec![1; 6]);
        // No room to put the failed one back.
        f.retry_later(first);
        assert_eq!(dropped(&f), 3);
        assert_eq!(f.pop().unwrap().signal, Signal::Traces);
        assert_eq!(f.pop().unwrap().signal, Signal::Metrics);
        assert!(f.pop().is_none());
    }
}
