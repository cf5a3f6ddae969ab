//! The `spans` table (migration 0023).

use rusqlite::{params, Connection};

use crate::error::Result;
use serde_json::Value;

/// A span as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    pub kind: i32,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status: i32,
    pub status_message: String,
    pub attributes: Value,
    pub events: Value,
    pub resource: Value,
    pub scope: String,
    pub dropped_attributes: u32,
}

/// Stores `spans` sent by `sender` (a span already stored is kept once);
/// returns how many were new.
pub fn insert(conn: &Connection, spans: &[SpanRow], sender: &str, now: i64) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_span_id, service, name, kind,
            start_ns, end_ns, status, status_message, attributes, events, resource, scope,
            dropped_attributes, sender, received_at, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    let mut added = 0;
    for s in spans {
        let attributes = s.attributes.to_string();
        let events = s.events.to_string();
        let resource = s.resource.to_string();
        let bytes = 120
            + s.name.len()
            + s.service.len()
            + s.status_message.len()
            + attributes.len()
            + events.len()
            + resource.len();
        added += stmt.execute(params![
            s.trace_id,
            s.span_id,
            s.parent_span_id,
            s.service,
            s.name,
            s.kind,
            s.start_ns,
            s.end_ns,
            s.status,
            s.status_message,
            attributes,
            events,
            resource,
            s.scope,
            s.dropped_attributes,
            sender,
            now,
            bytes as i64
        ])?;
    }
    Ok(added)
}

/// Every span of a trace, by start time.
pub fn trace(conn: &Connection, trace_id: &str) -> Result<Vec<SpanRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT trace_id, span_id, parent_span_id, service, name, kind, start_ns, end_ns, status,
            status_message, attributes, events, resource, scope, dropped_attributes
         FROM spans WHERE trace_id = ?1 ORDER BY start_ns, span_id LIMIT 10000",
    )?;
    let rows = stmt.query_map(params![trace_id], |r| {
        let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
            let text: String = r.get(i)?;
            Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
        };
        Ok(SpanRow {
            trace_id: r.get(0)?,
            span_id: r.get(1)?,
            parent_span_id: r.get(2)?,
            service: r.get(3)?,
            name: r.get(4)?,
            kind: r.get(5)?,
            start_ns: r.get(6)?,
            end_ns: r.get(7)?,
            status: r.get(8)?,
            status_message: r.get(9)?,
            attributes: json(10)?,
            events: json(11)?,
            resource: json(12)?,
            scope: r.get(13)?,
            dropped_attributes: r.get(14)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops spans received before `before` (ms), then the oldest received
/// until the rest weigh at most `max_bytes`; returns how many went.
pub fn prune(conn: &Connection, before: i64, max_bytes: u64) -> Result<usize> {
    let mut gone = conn.execute("DELETE FROM spans WHERE received_at < ?1", params![before])?;
    let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    let total: i64 = conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM spans", [], |r| {
        r.get(0)
    })?;
    let mut excess = total - max;
    if excess <= 0 {
        return Ok(gone);
    }
    // The oldest received, just enough of them.
    let mut victims = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT trace_id, span_id, bytes FROM spans ORDER BY received_at")?;
        let mut rows = stmt.query([])?;
        while excess > 0 {
            let Some(r) = rows.next()? else { break };
            let (t, s, b): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            victims.push((t, s));
            excess -= b;
        }
    }
    let mut del = conn.prepare_cached("DELETE FROM spans WHERE trace_id = ?1 AND span_id = ?2")?;
    for (t, s) in &victims {
        gone += del.execute(params![t, s])?;
    }
    Ok(gone)
}
