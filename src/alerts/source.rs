//! What rules are evaluated against: the metric catalog (which names a
//! rule may use) and one snapshot of every series a cycle needs.
//!
//! Built-in metrics come from agentry's own state; every other name is a
//! metric some agent (or agentry's self sampler) has reported.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::expr::{self, MetricKind, Value};
use super::labels::Labels;
use crate::audit::store as audit_db;
use crate::db::metric_reads as reads;
use crate::error::Result;

/// A current value older than this is stale and not evaluated (the series
/// stopped reporting).
pub const STALENESS_MS: i64 = 5 * 60_000;

/// Metrics agentry provides itself, and the standard ones agents report.
pub const BUILTIN: &[(&str, MetricKind, &str)] = &[
    (
        "agent_health",
        MetricKind::State,
        "State of each monitored instance: 'healthy', 'degraded', 'unhealthy' or 'unknown'; labels agent, agent_type, instance",
    ),
    (
        "instance_response_time_ms",
        MetricKind::Numeric,
        "Latency of each instance's last successful check; labels agent, agent_type, instance",
    ),
    (
        "failed_auth_attempts",
        MetricKind::Numeric,
        "Failed logins and token requests, from the audit trail: per minute, or counted over `in D`",
    ),
    (
        "mcp_tool_calls",
        MetricKind::Numeric,
        "Allowed tool calls through the MCP gateway, per minute or counted over `in D`; labels server, tool",
    ),
    (
        "mcp_denied_calls",
        MetricKind::Numeric,
        "Refused tool calls through the MCP gateway (denied, step-up, limited), per minute or over `in D`; labels server, tool",
    ),
    (
        "mcp_tool_errors",
        MetricKind::Numeric,
        "Tool calls that ended in a tool error, a JSON-RPC error or an upstream failure, per minute or over `in D`; labels server, tool",
    ),
    (
        "mcp_tool_error_rate",
        MetricKind::Numeric,
        "Share of ended tool calls that failed (0..1), over the last 5 minutes or `in D`; labels server, tool",
    ),
    (
        "mcp_tool_latency_p95_seconds",
        MetricKind::Numeric,
        "95th percentile latency of ended tool calls, over the last 5 minutes or `in D`; labels server, tool",
    ),
    ("error_rate", MetricKind::Numeric, "Reported by agents (0..1)"),
    ("workflow_success_rate", MetricKind::Numeric, "Reported by agents (0..1)"),
    ("cpu_utilization", MetricKind::Numeric, "Reported by agents (0..1)"),
    ("memory_utilization", MetricKind::Numeric, "Reported by agents (0..1)"),
];

/// The names a rule may use.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    reported: HashSet<String>,
    /// Accept any name (as numeric) — for evaluating rules already stored,
    /// whose series may have been pruned since.
    lenient: bool,
}

impl Catalog {
    pub fn load(conn: &Connection) -> Result<Catalog> {
        Ok(Catalog {
            reported: reads::reported_names(conn)?,
            lenient: false,
        })
    }

    pub fn lenient() -> Catalog {
        Catalog {
            reported: HashSet::new(),
            lenient: true,
        }
    }

    pub fn kind(&self, name: &str) -> Option<MetricKind> {
        if let Some((_, k, _)) = BUILTIN.iter().find(|(n, _, _)| *n == name) {
            return Some(*k);
        }
        (self.lenient || self.reported.contains(name)).then_some(MetricKind::Numeric)
    }

    pub fn parse(&self, src: &str) -> Result<expr::Rule, expr::ParseError> {
        expr::parse(src, &|n| self.kind(n))
    }
}

type Series = Vec<(Arc<Labels>, Value)>;
type Sums = Vec<(Arc<Labels>, f64)>;

/// Every series the rules of one cycle refer to, read in one go.
#[derive(Debug, Default)]
pub struct Snapshot {
    current: HashMap<String, Series>,
    sums: HashMap<(String, Duration), Sums>,
}

impl expr::Source for Snapshot {
    fn current(&self, metric: &str) -> &[(Arc<Labels>, Value)] {
        self.current.get(metric).map(Vec::as_slice).unwrap_or(&[])
    }

    fn sum_over(&self, metric: &str, window: Duration) -> &[(Arc<Labels>, f64)] {
        self.sums
            .get(&(metric.to_string(), window))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

impl Snapshot {
    /// Reads what `needs` (metric, optional window) lists, as of `now`.
    pub fn load(
        conn: &Connection,
        needs: &[(String, Option<Duration>)],
        now: i64,
    ) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        let agents = reads::agent_names(conn)?;
        let mut done: HashSet<&str> = HashSet::new();
        for (metric, window) in needs {
            match window {
                Some(w) => {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        snap.sums.entry((metric.clone(), *w))
                    {
                        let since = now - w.as_millis() as i64;
                        slot.insert(sums_since(conn, metric, since, now, &agents)?);
                    }
                }
                None => {
                    if done.insert(metric.as_str()) {
                        let series = current(conn, metric, now, &agents)?;
                        snap.current.insert(metric.clone(), series);
                    }
                }
            }
        }
        Ok(snap)
    }
}

fn current(
    conn: &Connection,
    metric: &str,
    now: i64,
    agents: &HashMap<String, (String, String)>,
) -> Result<Series> {
    match metric {
        m if super::mcp_series::is_series(m) => {
            mcp(conn, m, now - super::mcp_series::default_window_ms(m))
        }
        "agent_health" | "instance_response_time_ms" => instances(conn, metric),
        "failed_auth_attempts" => Ok(vec![(
            Arc::new(Labels::new()),
            Value::Number(audit_db::count_failed_auth(conn, now - 60_000)? as f64),
        )]),
        _ => Ok(reads::latest(conn, metric, now - STALENESS_MS, now)?
            .into_iter()
            .map(|(labels, reporter, v)| {
                (
                    Arc::new(series_labels(&labels, &reporter, agents)),
                    Value::Number(v),
                )
            })
            .collect()),
    }
}

fn sums_since(
    conn: &Connection,
    metric: &str,
    since: i64,
    now: i64,
    agents: &HashMap<String, (String, String)>,
) -> Result<Sums> {
    if super::mcp_series::is_series(metric) {
        let rows = audit_db::tool_calls_since(conn, since, None)?;
        return Ok(super::mcp_series::series(metric, &rows)
            .into_iter()
            .map(|(labels, v)| (Arc::new(labels), v))
            .collect());
    }
    if metric == "failed_auth_attempts" {
        return Ok(vec![(
            Arc::new(Labels::new()),
            audit_db::count_failed_auth(conn, since)? as f64,
        )]);
    }
    Ok(reads::sums(conn, metric, since, now)?
        .into_iter()
        .map(|(labels, reporter, sum)| (Arc::new(series_labels(&labels, &reporter, agents)), sum))
        .collect())
}

fn mcp(conn: &Connection, metric: &str, since: i64) -> Result<Series> {
    let rows = audit_db::tool_calls_since(conn, since, None)?;
    Ok(super::mcp_series::series(metric, &rows)
        .into_iter()
        .map(|(labels, v)| (Arc::new(labels), Value::Number(v)))
        .collect())
}

/// A stored series' labels, plus `agent`/`agent_type` of the reporting
/// agent where the series does not name them itself.
fn series_labels(json: &str, reporter: &str, agents: &HashMap<String, (String, String)>) -> Labels {
    let mut labels: Labels = serde_json::from_str(json).unwrap_or_default();
    if let Some((name, kind)) = agents.get(reporter) {
        labels.entry("agent".into()).or_insert_with(|| name.clone());
        labels
            .entry("agent_type".into())
            .or_insert_with(|| kind.clone());
    }
    labels
}

fn instances(conn: &Connection, metric: &str) -> Result<Series> {
    let mut out = Vec::new();
    for i in reads::enabled_instances(conn)? {
        let labels = Arc::new(Labels::from([
            ("agent".to_string(), i.agent),
            ("agent_type".to_string(), i.agent_type),
            ("instance".to_string(), i.instance),
        ]));
        if metric == "agent_health" {
            out.push((labels, Value::Text(i.state)));
        } else if let Some(ms) = i.latency_ms {
            out.push((labels, Value::Number(ms as f64)));
        }
    }
    Ok(out)
}
