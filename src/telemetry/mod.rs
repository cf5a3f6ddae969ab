//! Traces, logs and metrics received over OTLP/HTTP (SPEC §15): decoding
//! with the OpenTelemetry project's generated types, limits, the
//! group-committing store, and the series derived from spans.

pub mod attributes;
pub mod derived;
pub mod forward;
pub mod logs;
pub mod metrics;
pub mod store;
pub mod traces;

use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as Any, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// How far ahead of now an item's time may be (clock skew).
pub const FUTURE_NS: i64 = 3_600 * 1_000_000_000;

/// What a request's items may claim as their time: from the start of the
/// retention window to an hour ahead of now.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub now_ns: i64,
    pub oldest_ns: i64,
}

impl Window {
    /// The window at `now_ms` for a retention of `hours`.
    pub fn at(now_ms: i64, hours: u32) -> Window {
        let now_ns = now_ms.saturating_mul(1_000_000);
        Window {
            now_ns,
            oldest_ns: now_ns - i64::from(hours) * 3_600_000_000_000,
        }
    }

    pub fn admits(&self, t_ns: i64) -> bool {
        t_ns >= self.oldest_ns && t_ns <= self.now_ns.saturating_add(FUTURE_NS)
    }
}

/// Items refused from a request, and the first reason (OTLP's partial
/// success carries one message).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Refused {
    pub count: i64,
    pub message: String,
}

impl Refused {
    pub fn add(&mut self, why: &str) {
        self.count += 1;
        if self.message.is_empty() {
            self.message = why.to_string();
        }
    }
}

/// The resource's `service.name`, or ''.
pub fn service_of(resource_attrs: &[KeyValue]) -> String {
    resource_attrs
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Any::StringValue(s) => attributes::cut(s, 256).to_string(),
            _ => String::new(),
        })
        .unwrap_or_default()
}

/// A resource's service name (or '') and its attributes as JSON.
pub fn resource_of(r: Option<&Resource>, b: attributes::Bounds) -> (String, serde_json::Value) {
    let attrs = r.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
    (service_of(attrs), attributes::object(attrs, b).0)
}

/// An instrumentation scope's name (or '').
pub fn scope_name(s: Option<&InstrumentationScope>) -> String {
    s.map(|s| attributes::cut(&s.name, 256).to_string())
        .unwrap_or_default()
}

/// A trace or span id of the wrong length, or all zero.
#[derive(Debug, PartialEq)]
pub struct BadId;

/// A trace or span id as lowercase hex: `None` when absent (empty).
pub fn id_hex(bytes: &[u8], len: usize) -> Result<Option<String>, BadId> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() != len || bytes.iter().all(|b| *b == 0) {
        return Err(BadId);
    }
    Ok(Some(hex::encode(bytes)))
}
