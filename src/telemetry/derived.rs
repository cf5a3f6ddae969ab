//! Series derived from spans (SPEC §15), over the last five minutes:
//! `span_calls`, `span_error_rate` and `span_duration_p95_seconds` by
//! `service` and `span` (and `tool`, for spans carrying
//! `gen_ai.tool.name`), and `workflow_success_rate` by `workflow`, from
//! root spans carrying a `workflow` attribute.
//!
//! Kept in memory as ten-second buckets fed by the store's writer as spans
//! are committed, so nothing reads the span table to compute them; written
//! to the metric store every few seconds (see the scheduler), where rules
//! and the metrics page read them like any reported series.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::db::spans::SpanRow;
use crate::monitor::metrics::{Sample, MAX_LABEL_VALUE};

pub const WINDOW_MS: i64 = 5 * 60_000;
const BUCKET_MS: i64 = 10_000;
/// Distinct (service, span, tool) kept per window; spans beyond share
/// the span name `(other)` so a high-cardinality name cannot exhaust
/// memory or the metric store.
pub const MAX_KEYS: usize = 5_000;
pub const OTHER: &str = "(other)";
/// Durations are counted in buckets of 2^(1/8) (±4.5 %).
const STEPS_PER_DOUBLING: f64 = 8.0;
const UNKNOWN_SERVICE: &str = "unknown_service";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    service: String,
    span: String,
    tool: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    calls: u64,
    errors: u64,
    durations: HashMap<u16, u32>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    runs: u64,
    ok: u64,
}

#[derive(Debug, Default)]
struct Bucket {
    spans: HashMap<Key, Stats>,
    workflows: HashMap<String, Flow>,
}

/// The window of buckets by their start (ms).
#[derive(Debug, Default)]
pub struct Derived {
    buckets: Mutex<BTreeMap<i64, Bucket>>,
}

fn label(s: &str) -> String {
    s.chars().take(MAX_LABEL_VALUE).collect()
}

fn duration_step(ns: i64) -> u16 {
    let ns = ns.max(1) as f64;
    (ns.log2() * STEPS_PER_DOUBLING).floor().clamp(0.0, 1023.0) as u16
}

fn step_seconds(step: u16) -> f64 {
    2f64.powf((f64::from(step) + 0.5) / STEPS_PER_DOUBLING) / 1e9
}

impl Derived {
    /// Counts `spans` as of `now_ms`: a span counts in the bucket of its
    /// end (no later than now); one that ended before the window does not.
    pub fn observe<'a>(&self, spans: impl IntoIterator<Item = &'a SpanRow>, now_ms: i64) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let oldest = now_ms - WINDOW_MS;
        while let Some((&start, _)) = buckets.first_key_value() {
            if start + BUCKET_MS > oldest {
                break;
            }
            buckets.pop_first();
        }
        let mut keys: usize = buckets.values().map(|b| b.spans.len()).sum();
        for s in spans {
            let end_ms = (s.end_ns / 1_000_000).min(now_ms);
            if end_ms < oldest {
                continue;
            }
            let bucket = buckets
                .entry(end_ms - end_ms.rem_euclid(BUCKET_MS))
                .or_default();
            let service = if s.service.is_empty() {
                UNKNOWN_SERVICE.to_string()
            } else {
                label(&s.service)
            };
            let tool = s
                .attributes
                .get("gen_ai.tool.name")
                .and_then(|v| v.as_str())
                .map(label);
            let mut key = Key {
                service,
                span: label(&s.name),
                tool,
            };
            if !bucket.spans.contains_key(&key) {
                if keys >= MAX_KEYS {
                    key.span = OTHER.to_string();
                    key.tool = None;
                }
                if !bucket.spans.contains_key(&key) {
                    keys += 1;
                }
            }
            let failed = s.status == 2;
            let st = bucket.spans.entry(key).or_default();
            st.calls += 1;
            st.errors += u64::from(failed);
            *st.durations
                .entry(duration_step(s.end_ns - s.start_ns))
                .or_default() += 1;
            if s.parent_span_id.is_none() {
                if let Some(w) = s.attributes.get("workflow").and_then(|v| v.as_str()) {
                    if bucket.workflows.len() < MAX_KEYS || bucket.workflows.contains_key(w) {
                        let f = bucket.workflows.entry(label(w)).or_default();
                        f.runs += 1;
                        f.ok += u64::from(!failed);
                    }
                }
            }
        }
    }

    /// The series over the window ending at `now_ms`, as samples at that
    /// time.
    pub fn samples(&self, now_ms: i64) -> Vec<Sample> {
        let Ok(buckets) = self.buckets.lock() else {
            return Vec::new();
        };
        let oldest = now_ms - WINDOW_MS;
        let mut spans: BTreeMap<Key, Stats> = BTreeMap::new();
        let mut flows: BTreeMap<String, Flow> = BTreeMap::new();
        for (_, b) in buckets.range(oldest - BUCKET_MS + 1..) {
            for (k, s) in &b.spans {
                let t = spans.entry(k.clone()).or_default();
                t.calls += s.calls;
                t.errors += s.errors;
                for (step, n) in &s.durations {
                    *t.durations.entry(*step).or_default() += n;
                }
            }
            for (w, f) in &b.workflows {
                let t = flows.entry(w.clone()).or_default();
                t.runs += f.runs;
                t.ok += f.ok;
            }
        }
        drop(buckets);
        let mut out = Vec::with_capacity(spans.len() * 3 + flows.len());
        let sample = |name: &str, value: f64, labels: BTreeMap<String, String>| Sample {
            name: name.to_string(),
            value,
            labels,
            at: Some(now_ms),
        };
        for (k, s) in spans {
            let mut labels = BTreeMap::from([
                ("service".to_string(), k.service),
                ("span".to_string(), k.span),
            ]);
            if let Some(t) = k.tool {
                labels.insert("tool".into(), t);
            }
            out.push(sample("span_calls", s.calls as f64, labels.clone()));
            out.push(sample(
                "span_error_rate",
                s.errors as f64 / s.calls as f64,
                labels.clone(),
            ));
            out.push(sample(
                "span_duration_p95_seconds",
                p95(&s.durations, s.calls),
                labels,
            ));
        }
        for (w, f) in flows {
            out.push(sample(
                "workflow_success_rate",
                f.ok as f64 / f.runs as f64,
                BTreeMap::from([("workflow".to_string(), w)]),
            ));
        }
        out
    }
}

/// The 95th percentile of `calls` durations counted by step.
fn p95(steps: &HashMap<u16, u32>, calls: u64) -> f64 {
    let mut sorted: Vec<(&u16, &u32)> = steps.iter().collect();
    sorted.sort();
    let rank = ((calls as f64) * 0.95).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (step, n) in sorted {
        seen += u64::from(*n);
        if seen >= rank {
            return step_seconds(*step);
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_764_691_805_000;

    fn span(name: &str, ms: i64, failed: bool, attrs: serde_json::Value, root: bool) -> SpanRow {
        SpanRow {
            trace_id: "5b8efff798038103d269b633813fc60c".into(),
            span_id: "eee19b7ec3c1b174".into(),
            parent_span_id: (!root).then(|| "eee19b7ec3c1b175".into()),
            service: "planner".into(),
            name: name.into(),
            kind: 2,
            start_ns: (NOW - 1_000) * 1_000_000,
            end_ns: (NOW - 1_000 + ms) * 1_000_000,
            status: if failed { 2 } else { 0 },
            status_message: String::new(),
            attributes: attrs,
            events: json!([]),
            resource: json!({}),
            scope: String::new(),
            dropped_attributes: 0,
            entry: root,
        }
    }

    fn value(samples: &[Sample], name: &str, label: (&str, &str)) -> f64 {
        samples
            .iter()
            .find(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("no {name} with {label:?} in {samples:?}"))
    }

    #[test]
    fn calls_errors_and_p95_per_span() {
        let d = Derived::default();
        let mut spans: Vec<SpanRow> = (0..99)
            .map(|i| span("search", 10 + i % 10, false, json!({}), false))
            .collect();
        spans.push(span("search", 900, true, json!({}), false));
        spans.push(span(
            "tools/call",
            5,
            false,
            json!({"gen_ai.tool.name": "delete_workflow"}),
            false,
        ));
        d.observe(&spans, NOW);
        let s = d.samples(NOW);
        assert_eq!(value(&s, "span_calls", ("span", "search")), 100.0);
        assert!((value(&s, "span_error_rate", ("span", "search")) - 0.01).abs() < 1e-9);
        let p95 = value(&s, "span_duration_p95_seconds", ("span", "search"));
        assert!((0.0180..0.0205).contains(&p95), "{p95}");
        assert_eq!(value(&s, "span_calls", ("tool", "delete_workflow")), 1.0);
    }

    #[test]
    fn workflow_success_rate_comes_from_root_spans() {
        let d = Derived::default();
        let mut spans = vec![span("run", 5, false, json!({"workflow": "nightly"}), true); 9];
        spans.push(span("run", 5, true, json!({"workflow": "nightly"}), true));
        // A child span with the attribute is not a run.
        spans.push(span("step", 5, true, json!({"workflow": "nightly"}), false));
        d.observe(&spans, NOW);
        let s = d.samples(NOW);
        assert!((value(&s, "workflow_success_rate", ("workflow", "nightly")) - 0.9).abs() < 1e-9);
    }

    #[test]
    fn the_window_forgets_and_names_are_bounded() {
        let d = Derived::default();
        d.observe(&[span("old", 5, false, json!({}), false)], NOW);
        assert!(d.samples(NOW + WINDOW_MS + 2 * BUCKET_MS).is_empty());
        let d = Derived::default();
        let many: Vec<SpanRow> = (0..MAX_KEYS + 10)
            .map(|i| span(&format!("GET /users/{i}"), 1, false, json!({}), false))
            .collect();
        d.observe(&many, NOW);
        let s = d.samples(NOW);
        assert_eq!(value(&s, "span_calls", ("span", OTHER)), 10.0);
        assert_eq!(
            s.iter().filter(|x| x.name == "span_calls").count(),
            MAX_KEYS + 1
        );
    }
}
