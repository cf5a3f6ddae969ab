//! An OTLP log export as rows to store: each record's time, ids and
//! severity checked, its body and attributes bounded; what cannot be kept
//! is refused with a reason, as OTLP's partial success reports it.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;

use super::attributes::{self, Bounds};
use super::{id_hex, resource_of, scope_name, Refused, Window};

pub use crate::db::logs::{severity_name, LogRow, SEVERITIES};

/// What a request comes to: the records to keep and what was refused.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<LogRow>,
    pub refused: Refused,
}

/// The records in `req`; records whose time falls outside `window` are
/// refused. A record without a time takes the time it was observed, and
/// without either, `window.now_ns`.
pub fn decode(req: &ExportLogsServiceRequest, b: Bounds, window: Window) -> Decoded {
    let mut out = Decoded::default();
    for rl in &req.resource_logs {
        let (service, resource) = resource_of(rl.resource.as_ref(), b);
        for sl in &rl.scope_logs {
            let scope = scope_name(sl.scope.as_ref());
            for r in &sl.log_records {
                let t = match (r.time_unix_nano, r.observed_time_unix_nano) {
                    (0, 0) => Ok(window.now_ns),
                    (0, t) | (t, _) => i64::try_from(t),
                };
                let Ok(time_ns) = t else {
                    out.refused.add("a log record's time is out of range");
                    continue;
                };
                if !window.admits(time_ns) {
                    out.refused.add(
                        "a log record's time is before the retention window or over an hour from now",
                    );
                    continue;
                }
                let Ok(trace_id) = id_hex(&r.trace_id, 16) else {
                    out.refused
                        .add("a log record's trace_id is not 16 bytes, or is all zero");
                    continue;
                };
                let Ok(span_id) = id_hex(&r.span_id, 8) else {
                    out.refused
                        .add("a log record's span_id is not 8 bytes, or is all zero");
                    continue;
                };
                let body = match r.body.as_ref().and_then(|v| v.value.as_ref()) {
                    None => String::new(),
                    Some(Any::StringValue(s)) => attributes::cut(s, b.max_value_bytes).to_string(),
                    Some(_) => {
                        let v = attributes::value(r.body.as_ref(), b, 0).to_string();
                        attributes::cut(&v, b.max_value_bytes).to_string()
                    }
                };
                let (attrs, dropped) = attributes::object(&r.attributes, b);
                out.records.push(LogRow {
                    id: 0,
                    time_ns,
                    severity: r.severity_number.clamp(0, 24),
                    severity_text: attributes::cut(&r.severity_text, 32).to_string(),
                    body,
                    attributes: attrs,
                    resource: resource.clone(),
                    service: service.clone(),
                    scope: scope.clone(),
                    trace_id,
                    span_id,
                    dropped_attributes: dropped.saturating_add(r.dropped_attributes_count),
                });
            }
        }
    }
    out
}

/// How many records `req` holds (checked against the item limit first).
pub fn count(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_691_805_000_000_000;

    fn window() -> Window {
        Window {
            now_ns: NOW,
            oldest_ns: NOW - 1_000_000_000_000,
        }
    }

    fn b() -> Bounds {
        Bounds {
            max_attributes: 128,
            max_value_bytes: 32,
        }
    }

    fn export(records: &str) -> ExportLogsServiceRequest {
        serde_json::from_str(&format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"planner"}}}}]}},"scopeLogs":[{{"scope":{{"name":"app"}},"logRecords":[{records}]}}]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn records_keep_service_severity_trace_and_a_bounded_body() {
        let r = export(&format!(
            r#"{{"timeUnixNano":"{NOW}","severityNumber":17,"severityText":"ERROR","body":{{"stringValue":"connection refused by the upstream at 10.0.0.1"}},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}},
               {{"observedTimeUnixNano":"{NOW}","body":{{"kvlistValue":{{"values":[{{"key":"k","value":{{"intValue":"1"}}}}]}}}}}},
               {{"body":{{"stringValue":"no time at all"}}}}"#
        ));
        let d = decode(&r, b(), window());
        assert_eq!(d.refused.count, 0, "{}", d.refused.message);
        assert_eq!(d.records.len(), 3);
        let first = &d.records[0];
        assert_eq!((first.service.as_str(), first.severity), ("planner", 17));
        assert_eq!(first.body.len(), 32, "cut to the value bound");
        assert_eq!(
            first.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(d.records[1].body, r#"{"k":1}"#);
        assert_eq!(d.records[2].time_ns, NOW);
        assert_eq!(count(&r), 3);
    }

    #[test]
    fn bad_records_are_refused_the_rest_kept() {
        let r = export(&format!(
            r#"{{"timeUnixNano":"1","body":{{"stringValue":"ancient"}}}},
               {{"timeUnixNano":"{NOW}","traceId":"00000000000000000000000000000000"}},
               {{"timeUnixNano":"{NOW}","spanId":"abcd"}},
               {{"timeUnixNano":"{NOW}","body":{{"stringValue":"fine"}}}}"#
        ));
        let d = decode(&r, b(), window());
        assert_eq!(d.refused.count, 3);
        assert_eq!(d.records.len(), 1);
        assert!(
            d.refused.message.contains("retention"),
            "{}",
            d.refused.message
        );
    }

    #[test]
    fn severity_names_cover_their_ranges() {
        assert_eq!(severity_name(0), "unspecified");
        assert_eq!(severity_name(9), "info");
        assert_eq!(severity_name(12), "info");
        assert_eq!(severity_name(24), "fatal");
    }
}
