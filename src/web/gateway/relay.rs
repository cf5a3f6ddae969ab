//! Carrying an upstream's answer body to the client without holding more
//! than one event (or one chunk) of it, and never past its time.
//!
//! - [`sse`]: a server-sent event stream, parsed by `sse-stream` event by
//!   event. Events pass as they come; the answer to the watched request is
//!   handed to the [`Watch`] (a list is filtered) and ends a POST's stream
//!   (Streamable HTTP: the server may close it then; a hostile one that
//!   keeps it open does not hold the client). An event larger than the
//!   limit, a broken stream or the deadline end it, with a JSON-RPC error
//!   event for the watched request.
//! - [`bytes`]: any other body, passed chunk by chunk up to a total size
//!   and a deadline.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use sse_stream::{Sse, SseStream};
use tokio::time::Instant;

use super::jsonrpc;
use super::watch::Watch;
use crate::mcp::message::codes;

/// Asks whether the stream's client may still receive: its credential
/// still valid, its principal still enabled (a quarantine, a revocation).
pub type StillAdmitted = Box<dyn FnMut() -> futures_util::future::BoxFuture<'static, bool> + Send>;

/// Said when the upstream has not answered by the call's deadline.
pub const TIMED_OUT: &str = "the upstream did not answer in time (gateway.call_timeout_seconds)";
/// Said when an upstream answer is over the size bound.
pub const TOO_LARGE: &str = "the upstream's answer is larger than gateway.max_response_bytes";

/// How often an open stream asks [`StillAdmitted`].
pub const RECHECK: Duration = Duration::from_secs(2);

/// How long a stream may run, and how much one event may hold.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The answer must be complete by then (POST), if set.
    pub deadline: Option<Instant>,
    /// The stream ends after this long without an event (GET), if set.
    pub idle: Option<Duration>,
    /// Bytes one event (or, for [`bytes`], the whole body) may hold.
    pub max_bytes: usize,
}

/// The earliest of the instants given.
fn earliest(instants: &[Option<Instant>]) -> Option<Instant> {
    instants.iter().flatten().min().copied()
}

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;
type Out = Result<Bytes, actix_web::Error>;

/// Without the URL: the upstream's address is not the client's business,
/// and it ends up in the client's error and the audit record.
fn io_error(e: reqwest::Error) -> std::io::Error {
    std::io::Error::other(e.without_url())
}

/// The upstream body as chunks, counting the bytes since the last event
/// in `pending`: past `max`, the stream fails (the parser would otherwise
/// hold an endless event in memory).
fn counted(upstream: reqwest::Response, pending: Arc<AtomicUsize>, max: usize) -> Chunks {
    Box::pin(upstream.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(io_error)?;
        let held = pending.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
        if held > max {
            return Err(std::io::Error::other(format!(
                "an event is larger than {max} bytes (gateway.max_response_bytes)"
            )));
        }
        Ok(chunk)
    }))
}

/// One event in SSE form; multi-line data keeps its lines.
pub fn encode(event: &Sse) -> Bytes {
    let mut out = String::new();
    if let Some(e) = &event.event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    if let Some(id) = &event.id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(r) = event.retry {
        out.push_str(&format!("retry: {r}\n"));
    }
    if let Some(data) = &event.data {
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    Bytes::from(out)
}

struct SseState {
    events: Pin<Box<SseStream<sse_stream::ByteStreamBody<Chunks, Bytes>>>>,
    pending: Arc<AtomicUsize>,
    watch: Option<Watch>,
    bounds: Bounds,
    done: bool,
    /// When the last event came (for the idle bound).
    last_event: Instant,
    /// For a stream that stays open (GET): asked every [`RECHECK`].
    recheck: Option<(StillAdmitted, Instant)>,
}

impl SseState {
    /// The error event for the watched request (recording the failure),
    /// or nothing when no request is watched.
    fn fail(&mut self, code: i64, detail: String) -> Option<Out> {
        self.done = true;
        let watch = self.watch.as_mut()?;
        watch.failed(&detail);
        let body = jsonrpc::error(watch.id(), code, &detail, None);
        let event = Sse::default().event("message").data(body.to_string());
        Some(Ok(encode(&event)))
    }

    /// Passes one event; the watched answer is taken by the watch and
    /// ends the stream.
    fn pass(&mut self, mut event: Sse) -> Out {
        self.pending.store(0, Ordering::Relaxed);
        let Some(watch) = self.watch.as_mut() else {
            return Ok(encode(&event));
        };
        let Some(data) = event.data.as_deref() else {
            return Ok(encode(&event));
        };
        let Ok(mut message) = serde_json::from_str::<Value>(data) else {
            return Ok(encode(&event));
        };
        if !watch.is_answer(&message) {
            return Ok(encode(&event));
        }
        if watch.answer(&mut message) {
            event.data = Some(message.to_string());
        }
        self.done = true;
        Ok(encode(&event))
    }

    async fn next(&mut self) -> Option<Out> {
        loop {
            if self.done {
                return None;
            }
            if let Some((still, at)) = self.recheck.as_mut() {
                if Instant::now() >= *at {
                    if !still().await {
                        // Cut off: quarantined, disabled or revoked.
                        self.done = true;
                        return None;
                    }
                    *at = Instant::now() + RECHECK;
                }
            }
            let idle_at = self.bounds.idle.map(|d| self.last_event + d);
            let recheck_at = self.recheck.as_ref().map(|(_, at)| *at);
            let wake = earliest(&[self.bounds.deadline, idle_at, recheck_at]);
            let next = match wake {
                Some(at) => match tokio::time::timeout_at(at, self.events.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        let now = Instant::now();
                        if self.bounds.deadline.is_some_and(|d| now >= d) {
                            return self.fail(codes::UPSTREAM_TIMEOUT, TIMED_OUT.into());
                        }
                        if idle_at.is_some_and(|d| now >= d) {
                            // Idle: end the stream; the client resumes it.
                            self.done = true;
                            return None;
                        }
                        // Time to ask again whether the client may listen.
                        continue;
                    }
                },
                None => self.events.next().await,
            };
            self.last_event = Instant::now();
            return match next {
                Some(Ok(event)) => Some(self.pass(event)),
                Some(Err(e)) => self.fail(
                    codes::UPSTREAM_FAILURE,
                    format!("the upstream's event stream broke: {e}"),
                ),
                None => self.fail(
                    codes::UPSTREAM_FAILURE,
                    "the upstream ended the event stream without answering".into(),
                ),
            };
        }
    }
}

/// An upstream event stream relayed to the client; `still` (for a stream
/// that stays open) is asked every [`RECHECK`] whether the client may go on
/// listening, and the stream ends when it may not.
pub fn sse(
    upstream: reqwest::Response,
    watch: Option<Watch>,
    bounds: Bounds,
    still: Option<StillAdmitted>,
) -> impl Stream<Item = Out> {
    let pending = Arc::new(AtomicUsize::new(0));
    let chunks = counted(upstream, pending.clone(), bounds.max_bytes);
    let state = SseState {
        events: Box::pin(SseStream::from_bytes_stream(chunks)),
        pending,
        watch,
        bounds,
        done: false,
        last_event: Instant::now(),
        recheck: still.map(|s| (s, Instant::now() + RECHECK)),
    };
    futures_util::stream::unfold(state, |mut s| async move {
        let item = s.next().await?;
        Some((item, s))
    })
}

/// Any other upstream body, chunk by chunk, up to `bounds.max_bytes` in
/// all and the deadline; then the body is cut (the client sees a broken
/// response, as it would from the upstream).
pub fn bytes(upstream: reqwest::Response, bounds: Bounds) -> impl Stream<Item = Out> {
    let chunks = upstream.bytes_stream();
    futures_util::stream::unfold(
        (Box::pin(chunks), 0usize, false),
        move |(mut chunks, sent, done)| async move {
            if done {
                return None;
            }
            let idle_at = bounds.idle.map(|d| Instant::now() + d);
            let next = match earliest(&[bounds.deadline, idle_at]) {
                Some(at) => tokio::time::timeout_at(at, chunks.next()).await.ok()?,
                None => chunks.next().await,
            };
            match next? {
                Ok(chunk) if sent + chunk.len() <= bounds.max_bytes => {
                    let n = sent + chunk.len();
                    Some((Ok(chunk), (chunks, n, false)))
                }
                Ok(_) => Some((
                    Err(actix_web::error::ErrorBadGateway(TOO_LARGE)),
                    (chunks, sent, true),
                )),
                Err(e) => Some((
                    Err(actix_web::error::ErrorBadGateway(e.without_url())),
                    (chunks, sent, true),
                )),
            }
        },
    )
}

/// A whole body of at most `max` bytes, read by the deadline.
pub async fn read_all(
    upstream: reqwest::Response,
    max: usize,
    deadline: Instant,
) -> Result<Bytes, (i64, String)> {
    if upstream.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut chunks = upstream.bytes_stream();
    let mut body = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, chunks.next())
            .await
            .map_err(|_| (codes::UPSTREAM_TIMEOUT, TIMED_OUT.to_string()))?;
        match next {
            None => return Ok(Bytes::from(body)),
            Some(Ok(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Some(Err(e)) => {
                return Err((
                    codes::UPSTREAM_FAILURE,
                    format!(
                        "the upstream's answer broke off: {}",
                        crate::net::root_cause(&e.without_url())
                    ),
                ))
            }
        }
    }
}

fn too_large() -> (i64, String) {
    (codes::UPSTREAM_FAILURE, TOO_LARGE.into())
}
