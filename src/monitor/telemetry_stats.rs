//! The OTLP receiver's and forwarder's figures for `/metrics`, counted in
//! memory since start: items stored and refused per signal, re-exports
//! sent, dropped and retried, gateway spans dropped under a full queue.

use prometheus::{IntCounter, IntCounterVec, Opts};

pub struct TelemetryStats {
    /// `signal` (traces, logs, metrics) × `result` (stored, rejected).
    pub items: IntCounterVec,
    /// `result`: sent, dropped (no room, or refused by the receiver).
    pub forwarded: IntCounterVec,
    pub forward_retries: IntCounter,
    pub gateway_spans_dropped: IntCounter,
}

impl Default for TelemetryStats {
    fn default() -> Self {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition")
        };
        let one = |name: &str, help: &str| {
            IntCounter::new(name, help).expect("a valid metric definition")
        };
        TelemetryStats {
            items: vec(
                "agentry_otlp_items_total",
                "Spans, log records and data points received over OTLP, by signal and whether they were stored or rejected.",
                &["signal", "result"],
            ),
            forwarded: vec(
                "agentry_otlp_forward_exports_total",
                "Exports re-sent to telemetry.forward_otlp_url: sent, or dropped (no room in the queue, or refused by the receiver).",
                &["result"],
            ),
            forward_retries: one(
                "agentry_otlp_forward_retries_total",
                "Re-export attempts that failed and were retried.",
            ),
            gateway_spans_dropped: one(
                "agentry_gateway_spans_dropped_total",
                "Gateway spans dropped because the telemetry writer's queue was full.",
            ),
        }
    }
}

impl TelemetryStats {
    /// Counts what one export came to.
    pub fn received(&self, signal: &str, stored: u64, rejected: u64) {
        self.items
            .with_label_values(&[signal, "stored"])
            .inc_by(stored);
        self.items
            .with_label_values(&[signal, "rejected"])
            .inc_by(rejected);
    }

    pub fn forward_dropped(&self) {
        self.forwarded.with_label_values(&["dropped"]).inc();
    }
}
