//! The gateway's figures for `/metrics`, per MCP server and tool: calls,
//! denials, errors and latency, counted in memory since start (the alert
//! series come from the audit log instead, and survive a restart).
//!
//! Tool names come from clients and upstreams, so the label pairs are
//! capped: past [`MAX_SERIES`] distinct (server, tool) pairs, new tools
//! are counted under `tool="_other"`.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use super::record::CallOutcome;

pub const MAX_SERIES: usize = 1000;
const OTHER: &str = "_other";

pub struct CallStats {
    pub calls: IntCounterVec,
    pub denied: IntCounterVec,
    pub errors: IntCounterVec,
    pub latency: HistogramVec,
    seen: Mutex<HashSet<(String, String)>>,
}

impl Default for CallStats {
    fn default() -> Self {
        let labels = &["server", "tool"];
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition")
        };
        CallStats {
            calls: counter(
                "agentry_mcp_tool_calls_total",
                "Tool calls the MCP gateway forwarded.",
            ),
            denied: counter(
                "agentry_mcp_denied_calls_total",
                "Tool calls the MCP gateway refused (denied, step-up, limited, header mismatch).",
            ),
            errors: counter(
                "agentry_mcp_tool_errors_total",
                "Forwarded tool calls that ended in a tool error, a JSON-RPC error or an upstream failure.",
            ),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "agentry_mcp_tool_latency_seconds",
                    "Latency of forwarded tool calls, from the decision to the end of the answer.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
                labels,
            )
            .expect("a valid metric definition"),
            seen: Mutex::default(),
        }
    }
}

impl CallStats {
    /// The labels to count `tool` of `server` under.
    fn labels<'a>(&self, server: &'a str, tool: &'a str) -> [&'a str; 2] {
        let mut seen = self.seen.lock().expect("stats labels");
        let key = (server.to_string(), tool.to_string());
        if seen.contains(&key) {
            return [server, tool];
        }
        if seen.len() < MAX_SERIES {
            seen.insert(key);
            return [server, tool];
        }
        [server, OTHER]
    }

    pub fn called(&self, server: &str, tool: &str) {
        self.calls
            .with_label_values(&self.labels(server, tool))
            .inc();
    }

    pub fn refused(&self, server: &str, tool: &str) {
        self.denied
            .with_label_values(&self.labels(server, tool))
            .inc();
    }

    pub fn ended(&self, server: &str, tool: &str, outcome: CallOutcome, seconds: f64) {
        let labels = self.labels(server, tool);
        if matches!(
            outcome,
            CallOutcome::ToolError | CallOutcome::RpcError | CallOutcome::UpstreamFailure
        ) {
            self.errors.with_label_values(&labels).inc();
        }
        // A call that never reached the upstream has no latency to show.
        if !matches!(outcome, CallOutcome::Cancelled | CallOutcome::NotApproved) {
            self.latency.with_label_values(&labels).observe(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_labels_are_capped() {
        let s = CallStats::default();
        for i in 0..MAX_SERIES + 5 {
            s.called("kb", &format!("t{i}"));
        }
        assert_eq!(s.calls.with_label_values(&["kb", OTHER]).get(), 5);
        assert_eq!(s.calls.with_label_values(&["kb", "t0"]).get(), 1);
        s.ended("kb", "t0", CallOutcome::ToolError, 0.2);
        s.ended("kb", "t0", CallOutcome::Ok, 0.1);
        assert_eq!(s.errors.with_label_values(&["kb", "t0"]).get(), 1);
        assert_eq!(
            s.latency
                .with_label_values(&["kb", "t0"])
                .get_sample_count(),
            2
        );
    }
}
