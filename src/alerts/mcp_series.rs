//! The gateway's alert series (SPEC §14), per MCP server and tool,
//! computed from the tool-call records of the audit log over a window:
//!
//! - `mcp_tool_calls`: allowed calls;
//! - `mcp_denied_calls`: refused calls (denied, step-up, limited);
//! - `mcp_tool_errors`: calls that ended in a tool error, a JSON-RPC error
//!   or an upstream failure;
//! - `mcp_tool_error_rate`: errors over ended calls (0..1);
//! - `mcp_tool_latency_p95_seconds`: the 95th percentile of ended calls'
//!   latency.
//!
//! Pure over the rows, so the arithmetic is tested without a database.

use std::collections::BTreeMap;

use crate::audit::store::ToolCallRow;

use super::labels::Labels;

/// The series names, for the catalog.
pub const NAMES: &[&str] = &[
    "mcp_tool_calls",
    "mcp_denied_calls",
    "mcp_tool_errors",
    "mcp_tool_error_rate",
    "mcp_tool_latency_p95_seconds",
];

/// Window of a rate or percentile read without `in D`.
pub const RATE_WINDOW_MS: i64 = 5 * 60_000;
/// Window of a count read without `in D` (counts are per minute).
pub const COUNT_WINDOW_MS: i64 = 60_000;

pub fn is_series(metric: &str) -> bool {
    NAMES.contains(&metric)
}

/// The window `metric` is read over when no `in D` says otherwise.
pub fn default_window_ms(metric: &str) -> i64 {
    match metric {
        "mcp_tool_error_rate" | "mcp_tool_latency_p95_seconds" => RATE_WINDOW_MS,
        _ => COUNT_WINDOW_MS,
    }
}

#[derive(Default)]
struct Tally {
    calls: u64,
    denied: u64,
    ended: u64,
    errors: u64,
    latencies: Vec<i64>,
}

fn is_error(result: &str) -> bool {
    matches!(result, "tool_error" | "rpc_error" | "upstream_failure")
}

impl Tally {
    /// Nearest-rank 95th percentile of the latencies, in ms.
    fn p95_ms(&mut self) -> Option<i64> {
        if self.latencies.is_empty() {
            return None;
        }
        self.latencies.sort_unstable();
        let rank = ((self.latencies.len() as f64) * 0.95).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }
}

/// The rows counted per (server, tool).
fn tallies(rows: &[ToolCallRow]) -> BTreeMap<(&str, &str), Tally> {
    let mut by: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    for r in rows {
        let t = by.entry((r.server.as_str(), r.tool.as_str())).or_default();
        match &r.result {
            None if r.outcome == "denied" => t.denied += 1,
            None => t.calls += 1,
            // A call the client gave up on ended without an answer.
            Some(res) if res == "cancelled" => {}
            Some(res) => {
                t.ended += 1;
                if is_error(res) {
                    t.errors += 1;
                }
                if let Some(ms) = r.latency_ms {
                    t.latencies.push(ms);
                }
            }
        }
    }
    by
}

/// `metric`'s value per (server, tool) over `rows`; series without data
/// for it (no ended call for a rate) are left out.
pub fn series(metric: &str, rows: &[ToolCallRow]) -> Vec<(Labels, f64)> {
    tallies(rows)
        .into_iter()
        .filter_map(|((server, tool), mut t)| {
            let v = match metric {
                "mcp_tool_calls" => t.calls as f64,
                "mcp_denied_calls" => t.denied as f64,
                "mcp_tool_errors" => t.errors as f64,
                "mcp_tool_error_rate" if t.ended > 0 => t.errors as f64 / t.ended as f64,
                "mcp_tool_latency_p95_seconds" => t.p95_ms()? as f64 / 1000.0,
                _ => return None,
            };
            let labels = Labels::from([
                ("server".to_string(), server.to_string()),
                ("tool".to_string(), tool.to_string()),
            ]);
            Some((labels, v))
        })
        .collect()
}

/// One tool's figures over a window, for the MCP server's page.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUsage {
    pub tool: String,
    pub calls: u64,
    pub denied: u64,
    pub errors: u64,
    /// The 95th percentile latency of ended calls (ms), if any ended.
    pub p95_ms: Option<i64>,
}

/// Per tool of `server`, busiest first.
pub fn usage(server: &str, rows: &[ToolCallRow]) -> Vec<ToolUsage> {
    let mut out: Vec<ToolUsage> = tallies(rows)
        .into_iter()
        .filter(|((s, _), _)| *s == server)
        .map(|((_, tool), mut t)| ToolUsage {
            tool: tool.to_string(),
            calls: t.calls,
            denied: t.denied,
            errors: t.errors,
            p95_ms: t.p95_ms(),
        })
        .collect();
    out.sort_by(|a, b| {
        (b.calls + b.denied)
            .cmp(&(a.calls + a.denied))
            .then_with(|| a.tool.cmp(&b.tool))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tool: &str, outcome: &str, result: Option<&str>, ms: Option<i64>) -> ToolCallRow {
        ToolCallRow {
            server: "kb".into(),
            tool: tool.into(),
            outcome: outcome.into(),
            result: result.map(str::to_string),
            latency_ms: ms,
        }
    }

    #[test]
    fn counts_rates_and_percentiles_per_tool() {
        let mut rows = vec![
            row("search", "success", None, None),
            row("search", "success", None, None),
            row("search", "denied", None, None),
            row("search", "success", Some("ok"), Some(100)),
            row("search", "error", Some("upstream_failure"), Some(2000)),
            row("search", "failure", Some("cancelled"), Some(5)),
            row("fail", "success", None, None),
            row("fail", "failure", Some("tool_error"), Some(10)),
        ];
        for i in 0..18 {
            rows.push(row("slow", "success", Some("ok"), Some(i * 100)));
        }
        let get = |metric: &str, tool: &str| {
            series(metric, &rows)
                .into_iter()
                .find(|(l, _)| l["tool"] == tool)
                .map(|(_, v)| v)
        };
        assert_eq!(get("mcp_tool_calls", "search"), Some(2.0));
        assert_eq!(get("mcp_denied_calls", "search"), Some(1.0));
        assert_eq!(get("mcp_tool_errors", "search"), Some(1.0));
        assert_eq!(get("mcp_tool_error_rate", "search"), Some(0.5));
        assert_eq!(get("mcp_tool_error_rate", "fail"), Some(1.0));
        assert_eq!(get("mcp_tool_latency_p95_seconds", "search"), Some(2.0));
        // 18 samples 0..1700 ms: the 18th (nearest rank of 17.1) is 1.7 s.
        assert_eq!(get("mcp_tool_latency_p95_seconds", "slow"), Some(1.7));
        // No ended call: no rate.
        let only_calls = vec![row("x", "success", None, None)];
        assert!(series("mcp_tool_error_rate", &only_calls).is_empty());
        assert_eq!(series("mcp_tool_calls", &only_calls).len(), 1);
        // The page's summary: busiest first.
        let u = usage("kb", &rows);
        assert_eq!(u[0].tool, "search");
        assert_eq!((u[0].calls, u[0].denied, u[0].errors), (2, 1, 1));
        assert_eq!(u[0].p95_ms, Some(2000));
        assert!(usage("other", &rows).is_empty());
    }
}
