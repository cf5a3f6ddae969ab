//! One request to the upstream and its answer back to the client: the
//! transport headers pass both ways, the upstream's static credential is
//! added, and nothing else of the client's request goes upstream — above
//! all not its `Authorization` (the client's token is for agentry).

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::Value;
use tokio::time::Instant;

use super::jsonrpc;
use super::relay::{self, Bounds};
use super::watch::Watch;
use crate::mcp::gateway::Route;
use crate::mcp::message::codes;
use crate::web::state::WebState;

/// Request headers of the Streamable HTTP transport (and trace context)
/// that pass upstream.
const UPSTREAM_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "traceparent",
    "tracestate",
];

/// Answer headers that pass back to the client.
const CLIENT_HEADERS: &[&str] = &["mcp-session-id", "mcp-protocol-version"];

/// Error bodies (4xx/5xx) of an upstream are passed up to this size.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why the upstream gave no answer to relay.
pub struct Failure {
    pub code: i64,
    pub message: String,
}

impl Failure {
    fn new(code: i64, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// What goes upstream besides the client's headers.
pub struct Outgoing<'a> {
    pub method: reqwest::Method,
    pub body: Option<Bytes>,
    /// The exchanged token, if the server takes one.
    pub bearer: Option<&'a str>,
    /// The gateway's span as the upstream's parent, in place of the
    /// client's `traceparent`.
    pub traceparent: Option<&'a str>,
}

/// Sends the client's request upstream, by `deadline` for the answer's
/// headers.
pub async fn send(
    st: &WebState,
    route: &Route,
    req: &HttpRequest,
    out: Outgoing<'_>,
    deadline: Instant,
) -> Result<reqwest::Response, Failure> {
    let Outgoing {
        method,
        body,
        bearer,
        traceparent,
    } = out;
    let mut up = st
        .gateway
        .outbound()
        .request(method, &route.upstream_url)
        .map_err(|r| Failure::new(codes::UPSTREAM_FAILURE, r.to_string()))?;
    for name in UPSTREAM_HEADERS {
        if *name == "traceparent" && traceparent.is_some() {
            continue;
        }
        for value in req.headers().get_all(*name) {
            up = up.header(*name, value.as_bytes());
        }
    }
    if let Some(tp) = traceparent {
        up = up.header("traceparent", tp);
    }
    // The server's own headers, then the exchanged token (replacing a
    // static Authorization, not doubling it).
    let mut credentials = (*route.upstream_headers).clone();
    if let Some(token) = bearer {
        let mut v =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Failure::new(
                    codes::UPSTREAM_FAILURE,
                    "the exchanged token is not a header value",
                )
            })?;
        v.set_sensitive(true);
        credentials.insert(reqwest::header::AUTHORIZATION, v);
    }
    up = up.headers(credentials);
    if let Some(b) = body {
        up = up.body(b);
    }
    let sent = tokio::time::timeout_at(deadline, up.send()).await;
    let resp = match sent {
        Err(_) => return Err(Failure::new(codes::UPSTREAM_TIMEOUT, relay::TIMED_OUT)),
        Ok(Err(e)) => {
            return Err(Failure::new(
                codes::UPSTREAM_FAILURE,
                format!(
                    "the upstream cannot be reached: {}",
                    crate::net::request_failure(e)
                ),
            ))
        }
        Ok(Ok(r)) => r,
    };
    // The upstream refusing the gateway's own credential is the gateway's
    // failure to reach it, not the client's to fix: its challenge would
    // send the client to sign in somewhere else.
    if matches!(resp.status().as_u16(), 401 | 403) {
        return Err(Failure::new(
            codes::UPSTREAM_FAILURE,
            format!(
                "the upstream refused the gateway's request (HTTP {}): check the server's upstream_headers",
                resp.status().as_u16()
            ),
        ));
    }
    Ok(resp)
}

/// The media type of a `Content-Type` value, lowercase, without
/// parameters (`text/event-stream`), or empty.
pub(crate) fn media_type(value: Option<&str>) -> String {
    value
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn content_type(resp: &reqwest::Response) -> String {
    media_type(
        resp.headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn start(resp: &reqwest::Response) -> HttpResponseBuilder {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for name in CLIENT_HEADERS {
        if let Some(v) = resp.headers().get(*name) {
            out.insert_header((*name, v.as_bytes()));
        }
    }
    out
}

/// The answer to a POST: an event stream relayed event by event, a JSON
/// answer read whole when the watch needs it (else streamed), anything
/// else (202, an error status) passed as it is, bounded.
pub async fn answer(
    st: &WebState,
    resp: reqwest::Response,
    watch: Option<Watch>,
    deadline: Instant,
) -> HttpResponse {
    let max = st.config.gateway.max_response_bytes;
    let mut out = start(&resp);
    let kind = content_type(&resp);
    let ok = resp.status().is_success();
    if ok && kind == "text/event-stream" {
        let bounds = Bounds {
            deadline: Some(deadline),
            idle: None,
            max_bytes: max,
        };
        return event_stream(out, relay::sse(resp, watch, bounds, None));
    }
    let mut watch = watch;
    if let Some(w) = watch.as_mut() {
        if !ok || kind != "application/json" {
            let detail = match resp.status().as_u16() {
                200..=299 => {
                    format!("the upstream answered with {kind:?}, not JSON or an event stream")
                }
                s => format!("the upstream answered HTTP {s}"),
            };
            w.failed(&detail);
            if ok {
                return failure(w.id(), &Failure::new(codes::UPSTREAM_FAILURE, detail));
            }
        } else {
            return match relay::read_all(resp, max, deadline).await {
                Err((code, message)) => {
                    w.failed(&message);
                    failure(w.id(), &Failure::new(code, message))
                }
                Ok(body) => match serde_json::from_slice::<Value>(&body) {
                    Ok(mut message) if w.is_answer(&message) => {
                        let body = if w.answer(&mut message) {
                            Bytes::from(message.to_string())
                        } else {
                            body
                        };
                        out.insert_header((header::CONTENT_TYPE, "application/json"))
                            .body(body)
                    }
                    _ => {
                        let detail = "the upstream's JSON is not the answer to the request";
                        w.failed(detail);
                        failure(w.id(), &Failure::new(codes::UPSTREAM_FAILURE, detail))
                    }
                },
            };
        }
    }
    let bounds = Bounds {
        deadline: Some(deadline),
        idle: None,
        max_bytes: if ok { max } else { MAX_ERROR_BODY },
    };
    as_it_is(out, resp, bounds)
}

/// An event stream's answer, unbuffered by the client's proxies too.
fn event_stream(
    mut out: HttpResponseBuilder,
    events: impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
) -> HttpResponse {
    out.insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events)
}

/// Any other upstream answer, passed with its content type, bounded.
fn as_it_is(mut out: HttpResponseBuilder, resp: reqwest::Response, bounds: Bounds) -> HttpResponse {
    if let Some(ct) = resp.headers().get(reqwest::header::CONTENT_TYPE) {
        out.insert_header((header::CONTENT_TYPE, ct.as_bytes()));
    }
    out.streaming(relay::bytes(resp, bounds))
}

/// The answer to a GET: the upstream's event stream, relayed until it
/// ends, idles out or `still` says the client may no longer listen;
/// anything else passes as it is (405 when the upstream offers no stream).
pub fn stream(st: &WebState, resp: reqwest::Response, still: relay::StillAdmitted) -> HttpResponse {
    let out = start(&resp);
    let bounds = Bounds {
        deadline: None,
        idle: Some(Duration::from_secs(u64::from(
            st.config.gateway.stream_idle_seconds,
        ))),
        max_bytes: st.config.gateway.max_response_bytes,
    };
    if resp.status().is_success() && content_type(&resp) == "text/event-stream" {
        return event_stream(out, relay::sse(resp, None, bounds, Some(still)));
    }
    let bounds = Bounds {
        max_bytes: MAX_ERROR_BODY,
        ..bounds
    };
    as_it_is(out, resp, bounds)
}

/// The client's answer when the upstream failed: for a request, a
/// JSON-RPC error for its id (HTTP 200: the failure is the call's, and
/// SDK clients hand it to the caller as the call's error); for anything
/// else, 502 or 504.
pub fn failure(id: Option<&Value>, f: &Failure) -> HttpResponse {
    let status = match (id.is_some(), f.code) {
        (true, _) => StatusCode::OK,
        (false, codes::UPSTREAM_TIMEOUT) => StatusCode::GATEWAY_TIMEOUT,
        (false, _) => StatusCode::BAD_GATEWAY,
    };
    jsonrpc::reply(status, id, f.code, &f.message, None)
}
