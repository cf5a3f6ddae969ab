//! An OTLP trace export as rows to store: each span checked (ids, times),
//! its attributes and events bounded; what cannot be kept is counted as
//! rejected with a reason, as OTLP's partial success reports it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{json, Value};

use super::attributes::{self, Bounds};
use super::{id_hex, resource_of, scope_name, Refused, Window};

/// Events kept per span.
const MAX_EVENTS: usize = 128;
/// Span flags: the parent's remoteness is known, and it is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

pub use crate::db::spans::SpanRow;

/// What a request comes to: the spans to keep and what was refused.
#[derive(Debug, Default)]
pub struct Decoded {
    pub spans: Vec<SpanRow>,
    pub refused: Refused,
}

/// The spans in `req`; spans starting outside `window` are refused.
pub fn decode(req: &ExportTraceServiceRequest, b: Bounds, window: Window) -> Decoded {
    let mut out = Decoded::default();
    for rs in &req.resource_spans {
        let (service, resource) = resource_of(rs.resource.as_ref(), b);
        for ss in &rs.scope_spans {
            let scope = scope_name(ss.scope.as_ref());
            for s in &ss.spans {
                let Ok(Some(trace_id)) = id_hex(&s.trace_id, 16) else {
                    out.refused
                        .add("a span's trace_id is not 16 bytes, or is all zero");
                    continue;
                };
                let Ok(Some(span_id)) = id_hex(&s.span_id, 8) else {
                    out.refused
                        .add("a span's span_id is not 8 bytes, or is all zero");
                    continue;
                };
                let Ok(parent) = id_hex(&s.parent_span_id, 8) else {
                    out.refused.add("a span's parent_span_id is not 8 bytes");
                    continue;
                };
                let (Ok(start), Ok(end)) = (
                    i64::try_from(s.start_time_unix_nano),
                    i64::try_from(s.end_time_unix_nano),
                ) else {
                    out.refused.add("a span's time is out of range");
                    continue;
                };
                if start == 0 || end < start {
                    out.refused
                        .add("a span has no start time, or ends before it starts");
                    continue;
                }
                if !window.admits(start) {
                    out.refused
                        .add("a span starts before the retention window or over an hour from now");
                    continue;
                }
                let remote_parent =
                    s.flags & (HAS_IS_REMOTE | IS_REMOTE) == HAS_IS_REMOTE | IS_REMOTE;
                let (attrs, dropped) = attributes::object(&s.attributes, b);
                let events: Vec<Value> = s
                    .events
                    .iter()
                    .take(MAX_EVENTS)
                    .map(|e| {
                        let (a, d) = attributes::object(&e.attributes, b);
                        json!({
                            "time_unix_nano": e.time_unix_nano,
                            "name": attributes::cut(&e.name, 256),
                            "attributes": a,
                            "dropped_attributes_count": d + e.dropped_attributes_count,
                        })
                    })
                    .collect();
                let status = s.status.as_ref();
                out.spans.push(SpanRow {
                    trace_id,
                    span_id,
                    entry: parent.is_none() || remote_parent,
                    parent_span_id: parent,
                    service: service.clone(),
                    name: attributes::cut(&s.name, 1024).to_string(),
                    kind: s.kind,
                    start_ns: start,
                    end_ns: end,
                    status: status.map(|x| x.code).unwrap_or(0).clamp(0, 2),
                    status_message: status
                        .map(|x| attributes::cut(&x.message, b.max_value_bytes).to_string())
                        .unwrap_or_default(),
                    attributes: attrs,
                    events: Value::Array(events),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    dropped_attributes: dropped.saturating_add(s.dropped_attributes_count),
                });
            }
        }
    }
    out
}

/// How many spans `req` holds (checked against the item limit first).
pub fn count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::FUTURE_NS;

    const NOW: i64 = 1_764_691_805_000_000_000;

    fn req(json: &str) -> ExportTraceServiceRequest {
        serde_json::from_str(json).unwrap()
    }

    fn window() -> Window {
        Window {
            now_ns: NOW,
            oldest_ns: NOW - 1_000_000_000_000,
        }
    }

    fn b() -> Bounds {
        Bounds {
            max_attributes: 128,
            max_value_bytes: 16_384,
        }
    }

    fn span(trace: &str, id: &str, start: i64, end: i64) -> String {
        format!(
            r#"{{"traceId":"{trace}","spanId":"{id}","name":"op","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{{"key":"n","value":{{"intValue":"3"}}}}],"status":{{"code":2,"message":"bad"}},"events":[{{"timeUnixNano":"{start}","name":"retry"}}]}}"#
        )
    }

    fn export(spans: &[String]) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"planner"}}}}]}},"scopeSpans":[{{"scope":{{"name":"lib"}},"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        )
    }

    #[test]
    fn spans_become_rows_with_their_service_and_status() {
        let t = "5b8efff798038103d269b633813fc60c";
        let r = req(&export(&[span(t, "eee19b7ec3c1b174", NOW - 1000, NOW)]));
        let d = decode(&r, b(), window());
        assert_eq!((d.refused.count, d.spans.len()), (0, 1));
        assert!(d.spans[0].entry);
        let s = &d.spans[0];
        assert_eq!(
            (s.trace_id.as_str(), s.service.as_str(), s.status),
            (t, "planner", 2)
        );
        assert_eq!(s.attributes, json!({"n": 3}));
        assert_eq!(s.events[0]["name"], "retry");
        assert_eq!(count(&r), 1);
    }

    #[test]
    fn bad_spans_are_rejected_and_counted_the_rest_kept() {
        let t = "5b8efff798038103d269b633813fc60c";
        let r = req(&export(&[
            span(
                "00000000000000000000000000000000",
                "eee19b7ec3c1b174",
                NOW - 1,
                NOW,
            ),
            span(t, "0000000000000000", NOW - 1, NOW),
            span(t, "eee19b7ec3c1b175", NOW, NOW - 5),
            span(t, "eee19b7ec3c1b176", 1, 2),
            span(
                t,
                "eee19b7ec3c1b177",
                NOW + 2 * FUTURE_NS,
                NOW + 2 * FUTURE_NS,
            ),
            span(t, "eee19b7ec3c1b178", NOW - 1, NOW),
        ]));
        let d = decode(&r, b(), window());
        assert_eq!(d.refused.count, 5);
        assert_eq!(d.spans.len(), 1);
        assert!(
            d.refused.message.contains("trace_id"),
            "{}",
            d.refused.message
        );
    }
}
