//! The health probe of an MCP endpoint (instance kind `mcp`): the
//! Streamable HTTP handshake a client makes — `initialize`, then
//! `notifications/initialized` and a `ping` in the session it opened —
//! and the session ended with DELETE. The endpoint is healthy when both
//! requests are answered (as JSON or on an event stream) with a result.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::net::Outbound;

/// The protocol version the probe offers (widely served; the probe uses
/// nothing newer).
const PROTOCOL_VERSION: &str = "2025-06-18";
/// How much of an answer the probe reads.
const MAX_ANSWER: usize = 256 * 1024;

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

fn fail(m: impl Into<String>) -> ProbeError {
    ProbeError(m.into())
}

/// One JSON-RPC exchange: the answer's `result`, the session id it gave,
/// the HTTP status.
async fn exchange(
    client: &Outbound,
    url: &str,
    headers: &HeaderMap,
    session: Option<&str>,
    version: Option<&str>,
    body: &Value,
) -> Result<(Option<Value>, Option<String>, u16), ProbeError> {
    let mut req = client
        .request(reqwest::Method::POST, url)
        .map_err(|r| fail(r.to_string()))?
        .headers(headers.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream");
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    if let Some(v) = version {
        req = req.header("mcp-protocol-version", v);
    }
    let resp = req
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| fail(crate::net::request_failure(e)))?;
    let status = resp.status().as_u16();
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {status}")));
    }
    let Some(id) = body.get("id") else {
        return Ok((None, session, status));
    };
    let is_sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let answer = if is_sse {
        first_answer(resp, id).await?
    } else {
        let bytes = read_bounded(resp).await?;
        serde_json::from_slice::<Value>(&bytes).map_err(|_| fail("the answer is not JSON"))?
    };
    if let Some(e) = answer.get("error") {
        return Err(fail(format!(
            "JSON-RPC error {}",
            e.get("code").and_then(Value::as_i64).unwrap_or(0)
        )));
    }
    match answer.get("result") {
        Some(r) => Ok((Some(r.clone()), session, status)),
        None => Err(fail("the answer has no result")),
    }
}

async fn read_bounded(resp: reqwest::Response) -> Result<Vec<u8>, ProbeError> {
    let mut body = Vec::new();
    let mut chunks = resp.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            fail(format!(
                "the answer broke off: {}",
                crate::net::root_cause(&e.without_url())
            ))
        })?;
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return Err(fail("the answer is too large"));
        }
    }
    Ok(body)
}

/// The first event-stream message answering `id`.
async fn first_answer(resp: reqwest::Response, id: &Value) -> Result<Value, ProbeError> {
    let mut events = Box::pin(sse_stream::SseStream::from_bytes_stream(
        resp.bytes_stream()
            .map(|c| c.map_err(std::io::Error::other)),
    ));
    let mut seen = 0usize;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| fail(format!("the event stream broke: {e}")))?;
        let data = event.data.unwrap_or_default();
        seen += data.len();
        if seen > MAX_ANSWER {
            return Err(fail("the event stream is too large"));
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data) {
            if v.get("id") == Some(id) {
                return Ok(v);
            }
        }
    }
    Err(fail("the event stream ended without an answer"))
}

/// Probes `url` with `headers` added to every request, within `timeout`.
pub async fn probe(
    client: &Outbound,
    url: &str,
    headers: &HeaderMap,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let run = async {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "agentry-health", "version": env!("CARGO_PKG_VERSION")}}});
        let (result, session, _) = exchange(client, url, headers, None, None, &init).await?;
        let version = result
            .as_ref()
            .and_then(|r| r.get("protocolVersion"))
            .and_then(Value::as_str)
            .ok_or_else(|| fail("initialize answered without a protocolVersion"))?
            .to_string();
        let s = session.as_deref();
        let v = Some(version.as_str());
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        exchange(client, url, headers, s, v, &initialized).await?;
        let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
        let outcome = exchange(client, url, headers, s, v, &ping)
            .await
            .map(|_| ());
        if let Some(sid) = s {
            // Best effort: the session is the probe's, not worth a failure.
            if let (Ok(req), Ok(value)) = (
                client.request(reqwest::Method::DELETE, url),
                HeaderValue::from_str(sid),
            ) {
                let _ = req
                    .headers(headers.clone())
                    .header("mcp-session-id", value)
                    .send()
                    .await;
            }
        }
        outcome
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(fail(format!("timed out after {} ms", timeout.as_millis()))),
    }
}
