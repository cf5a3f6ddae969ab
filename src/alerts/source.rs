//! What rules are evaluated against: the metric catalog (which names a
//! rule may use) and one snapshot of every series a cycle needs.
//!
//! Built-in metrics come from agentry's own state; every other name is a
//! metric some agent (or agentry's self sampler) has reported.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection};

use super::expr::{self, MetricKind, Value};
use super::labels::Labels;
use crate::db::audit as audit_db;
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
        let mut stmt = conn.prepare_cached("SELECT DISTINCT name FROM metric_series")?;
        let reported = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Catalog {
            reported,
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
        let agents = agent_names(conn)?;
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

/// agent id → (name, type), to label series reported by agents.
fn agent_names(conn: &Connection) -> Result<HashMap<String, (String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, agent_type FROM agents")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn current(
    conn: &Connection,
    metric: &str,
    now: i64,
    agents: &HashMap<String, (String, String)>,
) -> Result<Series> {
    match metric {
        "agent_health" | "instance_response_time_ms" => instances(conn, metric),
        "failed_auth_attempts" => Ok(vec![(
            Arc::new(Labels::new()),
            Value::Number(audit_db::count_failed_auth(conn, now - 60_000)? as f64),
        )]),
        _ => {
            let mut stmt = conn.prepare_cached(
                "SELECT s.labels, s.reporter,
                        (SELECT value FROM metric_samples m WHERE m.series_id = s.id AND m.at >= ?2 AND m.at <= ?3
                         ORDER BY m.at DESC LIMIT 1)
                 FROM metric_series s WHERE s.name = ?1",
            )?;
            let rows = stmt.query_map(params![metric, now - STALENESS_MS, now], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (labels, reporter, value) = row?;
                if let Some(v) = value {
                    out.push((
                        Arc::new(series_labels(&labels, &reporter, agents)),
                        Value::Number(v),
                    ));
                }
            }
            Ok(out)
        }
    }
}

fn sums_since(
    conn: &Connection,
    metric: &str,
    since: i64,
    now: i64,
    agents: &HashMap<String, (String, String)>,
) -> Result<Sums> {
    if metric == "failed_auth_attempts" {
        return Ok(vec![(
            Arc::new(Labels::new()),
            audit_db::count_failed_auth(conn, since)? as f64,
        )]);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT s.labels, s.reporter, SUM(m.value) FROM metric_series s
         JOIN metric_samples m ON m.series_id = s.id AND m.at > ?2 AND m.at <= ?3
         WHERE s.name = ?1 GROUP BY s.id",
    )?;
    let rows = stmt.query_map(params![metric, since, now], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (labels, reporter, sum) = row?;
        out.push((Arc::new(series_labels(&labels, &reporter, agents)), sum));
    }
    Ok(out)
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
    let mut stmt = conn.prepare_cached(
        "SELECT a.name, a.agent_type, i.name, i.state, i.last_latency_ms FROM instances i
         JOIN agents a ON a.id = i.agent_id WHERE i.enabled = 1",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (agent, agent_type, instance, state, latency) = row?;
        let labels = Arc::new(Labels::from([
            ("agent".to_string(), agent),
            ("agent_type".to_string(), agent_type),
            ("instance".to_string(), instance),
        ]));
        if metric == "agent_health" {
            out.push((labels, Value::Text(state)));
        } else if let Some(ms) = latency {
            out.push((labels, Value::Number(ms as f64)));
        }
    }
    Ok(out)
}
