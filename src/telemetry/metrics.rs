//! An OTLP metric export as samples for the metric store (SPEC §7): names
//! and attribute keys made Prometheus-safe (`http.server.duration` →
//! `http_server_duration`), the resource's `service.name` as a `service`
//! label, gauges and sums as their value, histograms and summaries as
//! `_count` and `_sum` (summaries also each quantile, labelled `quantile`).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value as Num};

use super::attributes;
use crate::monitor::metrics::{valid_label_name, Sample, MAX_LABELS, MAX_LABEL_VALUE, MAX_NAME};

/// `s` with every character outside `[a-zA-Z0-9_:]` as `_`, and `_` in
/// front of a leading digit.
fn metric_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// An attribute key as a label name, or `None` when it cannot be one.
fn label_name(s: &str) -> Option<String> {
    let n = metric_name(s).replace(':', "_");
    valid_label_name(&n).then_some(n)
}

fn label_value(v: Option<&Any>) -> String {
    let text = match v {
        None => String::new(),
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(_) => "[complex]".into(),
    };
    let cut: String = text.chars().take(MAX_LABEL_VALUE).collect();
    cut
}

/// The labels of a point: `service` first, then its attributes, at most
/// the store's label limit (the rest dropped).
fn labels(service: &str, attrs: &[KeyValue]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !service.is_empty() {
        out.insert("service".to_string(), service.to_string());
    }
    for kv in attrs {
        if out.len() >= MAX_LABELS {
            break;
        }
        if let Some(k) = label_name(&kv.key) {
            out.entry(k)
                .or_insert_with(|| label_value(kv.value.as_ref().and_then(|v| v.value.as_ref())));
        }
    }
    out
}

fn at(time_unix_nano: u64) -> Option<i64> {
    (time_unix_nano > 0).then(|| i64::try_from(time_unix_nano / 1_000_000).unwrap_or(i64::MAX))
}

/// The samples of `req`, and how many data points it held.
pub fn samples(req: &ExportMetricsServiceRequest) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut points = 0;
    for rm in &req.resource_metrics {
        let res_attrs = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let service = super::service_of(res_attrs);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let name = metric_name(attributes::cut(&m.name, MAX_NAME));
                let mut push = |suffix: &str, value: f64, l: BTreeMap<String, String>, t: u64| {
                    out.push(Sample {
                        name: format!("{name}{suffix}"),
                        value,
                        labels: l,
                        at: at(t),
                    })
                };
                match &m.data {
                    None => {}
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            points += 1;
                            push(
                                "",
                                num(p.value),
                                labels(&service, &p.attributes),
                                p.time_unix_nano,
                            );
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for p in &s.data_points {
                            points += 1;
                            push(
                                "",
                                num(p.value),
                                labels(&service, &p.attributes),
                                p.time_unix_nano,
                            );
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            points += 1;
                            count_and_sum(
                                &mut push,
                                labels(&service, &p.attributes),
                                p.count,
                                p.sum,
                                p.time_unix_nano,
                            );
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for p in &h.data_points {
                            points += 1;
                            count_and_sum(
                                &mut push,
                                labels(&service, &p.attributes),
                                p.count,
                                p.sum,
                                p.time_unix_nano,
                            );
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for p in &s.data_points {
                            points += 1;
                            let l = labels(&service, &p.attributes);
                            push("_count", p.count as f64, l.clone(), p.time_unix_nano);
                            push("_sum", p.sum, l.clone(), p.time_unix_nano);
                            for q in &p.quantile_values {
                                let mut ql = l.clone();
                                if ql.len() < MAX_LABELS {
                                    ql.insert("quantile".into(), q.quantile.to_string());
                                    push("", q.value, ql, p.time_unix_nano);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (out, points)
}

/// A histogram point as `_count` and (when known) `_sum`.
fn count_and_sum(
    push: &mut impl FnMut(&str, f64, BTreeMap<String, String>, u64),
    l: BTreeMap<String, String>,
    count: u64,
    sum: Option<f64>,
    t: u64,
) {
    push("_count", count as f64, l.clone(), t);
    if let Some(sum) = sum {
        push("_sum", sum, l, t);
    }
}

fn num(v: Option<Num>) -> f64 {
    match v {
        Some(Num::AsDouble(d)) => d,
        Some(Num::AsInt(i)) => i as f64,
        None => f64::NAN,
    }
}

/// How many data points `req` holds (checked against the item limit first).
pub fn count(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            None => 0,
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_become_prometheus_safe() {
        assert_eq!(metric_name("http.server.duration"), "http_server_duration");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(label_name("http.route").as_deref(), Some("http_route"));
        assert_eq!(label_name("__reserved"), None);
    }

    #[test]
    fn every_kind_of_point_becomes_samples() {
        let req: ExportMetricsServiceRequest = serde_json::from_str(
            r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"planner"}}]},
              "scopeMetrics":[{"metrics":[
                {"name":"queue.depth","gauge":{"dataPoints":[{"asInt":"7","timeUnixNano":"1764691805000000000","attributes":[{"key":"queue","value":{"stringValue":"a"}}]}]}},
                {"name":"calls","sum":{"isMonotonic":true,"aggregationTemporality":2,"dataPoints":[{"asDouble":3.5}]}},
                {"name":"latency","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"4","sum":2.0,"bucketCounts":["4"],"explicitBounds":[]}]}},
                {"name":"size","summary":{"dataPoints":[{"count":"2","sum":10.0,"quantileValues":[{"quantile":0.5,"value":4.0}]}]}}
              ]}]}]}"#,
        )
        .unwrap();
        let (s, points) = samples(&req);
        assert_eq!(points, 4);
        assert_eq!(count(&req), 4);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "queue_depth",
                "calls",
                "latency_count",
                "latency_sum",
                "size_count",
                "size_sum",
                "size"
            ]
        );
        assert_eq!(s[0].value, 7.0);
        assert_eq!(s[0].at, Some(1_764_691_805_000));
        assert_eq!(s[0].labels["service"], "planner");
        assert_eq!(s[0].labels["queue"], "a");
        assert_eq!(s[6].labels["quantile"], "0.5");
    }
}
