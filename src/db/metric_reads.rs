//! What the alert rules read: reported series with their latest value or
//! their sum over a window, the enabled instances' health, and who the
//! reporters are. The `alerts::source` snapshot is built from these.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection};

use crate::error::Result;

/// A series as read: its labels (JSON), its reporter, and a number.
pub type SeriesRow = (String, String, f64);

/// Every metric name agents have reported.
pub fn reported_names(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT name FROM metric_series")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// agent id → (name, type).
pub fn agent_names(conn: &Connection) -> Result<HashMap<String, (String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, agent_type FROM agents")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Each series of `metric` with its latest sample in `from..=to`; series
/// without one are left out.
pub fn latest(conn: &Connection, metric: &str, from: i64, to: i64) -> Result<Vec<SeriesRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.labels, s.reporter,
                (SELECT value FROM metric_samples m WHERE m.series_id = s.id AND m.at >= ?2 AND m.at <= ?3
                 ORDER BY m.at DESC LIMIT 1)
         FROM metric_series s WHERE s.name = ?1",
    )?;
    let rows = stmt.query_map(params![metric, from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<f64>>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        if let (labels, reporter, Some(v)) = row? {
            out.push((labels, reporter, v));
        }
    }
    Ok(out)
}

/// Each series of `metric` with the sum of its samples in `(since, to]`.
pub fn sums(conn: &Connection, metric: &str, since: i64, to: i64) -> Result<Vec<SeriesRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.labels, s.reporter, SUM(m.value) FROM metric_series s
         JOIN metric_samples m ON m.series_id = s.id AND m.at > ?2 AND m.at <= ?3
         WHERE s.name = ?1 GROUP BY s.id",
    )?;
    let rows = stmt.query_map(params![metric, since, to], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An enabled instance as the rules see it.
pub struct InstanceHealth {
    pub agent: String,
    pub agent_type: String,
    pub instance: String,
    pub state: String,
    pub latency_ms: Option<i64>,
}

pub fn enabled_instances(conn: &Connection) -> Result<Vec<InstanceHealth>> {
    let mut stmt = conn.prepare_cached(
        // A proxied MCP server's probe has no agent: it is reported under
        // the server's name, with the type `mcp_server`.
        "SELECT COALESCE(a.name, m.name), COALESCE(a.agent_type, 'mcp_server'), i.name, i.state,
                i.last_latency_ms
         FROM instances i
         LEFT JOIN agents a ON a.id = i.agent_id
         LEFT JOIN mcp_servers m ON m.id = i.mcp_server_id
         WHERE i.enabled = 1 AND (a.id IS NOT NULL OR m.id IS NOT NULL)",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(InstanceHealth {
            agent: r.get(0)?,
            agent_type: r.get(1)?,
            instance: r.get(2)?,
            state: r.get(3)?,
            latency_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
