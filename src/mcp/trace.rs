//! The gateway's span per proxied message (SPEC §15): it continues the
//! caller's W3C trace context (`traceparent` in the message's `_meta`
//! first, else the HTTP header), or starts a trace, and the upstream is
//! sent a `traceparent` naming the gateway's span as its parent, so the
//! caller's, the gateway's and the server's spans form one trace.

use serde_json::{Map, Value};

use crate::db::spans::SpanRow;

/// Span kind SERVER (OTLP): the gateway receives the call.
const KIND_SERVER: i32 = 2;
/// The gateway's spans are the appliance's own.
pub const SERVICE: &str = "agentry";

/// The caller's span, from a `traceparent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: u8,
}

fn hex_id(s: &str, len: usize) -> Option<String> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0'))
        .then(|| s.to_ascii_lowercase())
}

/// A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); any version but
/// `ff`, whose first four fields are read as version 00's.
pub fn parse(traceparent: &str) -> Option<Parent> {
    let mut parts = traceparent.trim().split('-');
    let version = parts.next()?;
    if version.len() != 2 || !version.bytes().all(|b| b.is_ascii_hexdigit()) || version == "ff" {
        return None;
    }
    let trace_id = hex_id(parts.next()?, 32)?;
    let span_id = hex_id(parts.next()?, 16)?;
    let flags = parts.next()?;
    if flags.len() != 2 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if version == "00" && parts.next().is_some() {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        flags,
    })
}

/// A gateway span under way.
#[derive(Debug, Clone)]
pub struct GatewaySpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    flags: u8,
    start_ns: i64,
}

fn now_ns() -> i64 {
    crate::db::now_ms().saturating_mul(1_000_000)
}

impl GatewaySpan {
    /// Starts a span under `parent`, or a new trace without one.
    pub fn begin(parent: Option<Parent>) -> GatewaySpan {
        let ids = crate::crypto::random::unpredictable::<24>();
        let span_id = hex::encode(&ids[16..]);
        match parent {
            Some(p) => GatewaySpan {
                trace_id: p.trace_id,
                span_id,
                parent_span_id: Some(p.span_id),
                flags: p.flags,
                start_ns: now_ns(),
            },
            None => GatewaySpan {
                trace_id: hex::encode(&ids[..16]),
                span_id,
                parent_span_id: None,
                flags: 1,
                start_ns: now_ns(),
            },
        }
    }

    /// The `traceparent` the upstream is sent: this span as the parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// The span as stored, ended now: `name` per the MCP semantic
    /// conventions (`tools/call get_weather`), `error` its failure.
    pub fn end(&self, name: &str, attributes: Map<String, Value>, error: Option<&str>) -> SpanRow {
        let end = now_ns().max(self.start_ns);
        SpanRow {
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            parent_span_id: self.parent_span_id.clone(),
            service: SERVICE.into(),
            name: name.into(),
            kind: KIND_SERVER,
            start_ns: self.start_ns,
            end_ns: end,
            status: if error.is_some() { 2 } else { 0 },
            status_message: error.unwrap_or_default().chars().take(1024).collect(),
            attributes: Value::Object(attributes),
            events: Value::Array(Vec::new()),
            resource: serde_json::json!({"service.name": SERVICE}),
            scope: "agentry.gateway".into(),
            dropped_attributes: 0,
            // The caller's span is another process's: the trace enters
            // the store here.
            entry: true,
        }
    }
}

/// Where finished gateway spans go (the telemetry store); never blocks a
/// call: a span that cannot be queued is dropped.
pub trait SpanSink: Send + Sync {
    fn emit(&self, span: SpanRow);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_read_strictly() {
        let p = parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(p.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!((p.span_id.as_str(), p.flags), ("00f067aa0ba902b7", 1));
        // A later version may add fields.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra").is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_span_continues_its_parent_and_names_itself_as_the_next_parent() {
        let p = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let s = GatewaySpan::begin(Some(p));
        assert_eq!(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        let next = parse(&s.traceparent()).unwrap();
        assert_eq!(next.trace_id, s.trace_id);
        assert_eq!(next.span_id, s.span_id);
        let row = s.end("tools/call search", Map::new(), Some("denied"));
        assert_eq!((row.status, row.entry), (2, true));
        assert!(row.end_ns >= row.start_ns);
        let fresh = GatewaySpan::begin(None);
        assert_eq!(fresh.trace_id.len(), 32);
        assert_eq!(fresh.parent_span_id, None);
    }
}
