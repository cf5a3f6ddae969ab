//! The `logs` table and its word index `logs_text` (migration 0025).

use rusqlite::{params, Connection};
use serde_json::Value;

use super::clauses::Clauses;
use super::telemetry_resources::Resources;
use crate::error::Result;

/// OTLP severity numbers by name (the first of each range of four).
pub const SEVERITIES: [(&str, i32); 6] = [
    ("trace", 1),
    ("debug", 5),
    ("info", 9),
    ("warn", 13),
    ("error", 17),
    ("fatal", 21),
];

/// A severity's range name (`info` for 9-12), or `unspecified`.
pub fn severity_name(n: i32) -> &'static str {
    SEVERITIES
        .iter()
        .rev()
        .find(|(_, from)| n >= *from)
        .map(|(name, _)| *name)
        .unwrap_or("unspecified")
}

/// A log record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// Order of receipt (0 before it is stored).
    pub id: i64,
    pub time_ns: i64,
    /// OTLP SeverityNumber, 0-24.
    pub severity: i32,
    pub severity_text: String,
    pub body: String,
    pub attributes: Value,
    pub resource: Value,
    pub service: String,
    pub scope: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub dropped_attributes: u32,
}

/// Stores `records` sent by `sender`; returns how many and the bytes they
/// weigh.
pub fn insert(
    conn: &Connection,
    records: &[LogRow],
    sender: &str,
    now: i64,
) -> Result<(usize, i64)> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO logs (time_ns, severity, severity_text, body, attributes, resource,
            resource_id, service, scope, trace_id, span_id, dropped_attributes, sender,
            received_at, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let mut weighed = 0;
    let mut resources = Resources::default();
    for l in records {
        let attributes = l.attributes.to_string();
        let resource_id = resources.of(conn, &l.resource, now)?;
        // The body twice: the row and its words in the index; the resource
        // is stored once for all the records that share it.
        let bytes =
            (100 + 2 * l.body.len() + l.severity_text.len() + l.service.len() + attributes.len())
                as i64;
        stmt.execute(params![
            l.time_ns,
            l.severity,
            l.severity_text,
            l.body,
            attributes,
            resource_id,
            l.service,
            l.scope,
            l.trace_id,
            l.span_id,
            l.dropped_attributes,
            sender,
            now,
            bytes
        ])?;
        weighed += bytes;
    }
    Ok((records.len(), weighed))
}

/// Filters of the log search; every one optional.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// An FTS5 query over the bodies (built by the caller from words).
    pub text: Option<String>,
    pub service: Option<String>,
    pub min_severity: Option<i32>,
    pub trace_id: Option<String>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Continue after this (time_ns, id), newest first.
    pub after: Option<(i64, i64)>,
}

/// Matching records, newest first, at most `limit`.
pub fn search(conn: &Connection, f: &LogFilter, limit: u32) -> Result<Vec<LogRow>> {
    let mut w = Clauses::default();
    if let Some(v) = &f.text {
        w.add(
            "id IN (SELECT rowid FROM logs_text WHERE logs_text MATCH ?)",
            [v.clone().into()],
        );
    }
    if let Some(v) = &f.service {
        w.add("service = ?", [v.clone().into()]);
    }
    if let Some(v) = f.min_severity {
        w.add("severity >= ?", [i64::from(v).into()]);
    }
    if let Some(v) = &f.trace_id {
        w.add("trace_id = ?", [v.clone().into()]);
    }
    if let Some(v) = f.since_ns {
        w.add("time_ns >= ?", [v.into()]);
    }
    if let Some(v) = f.until_ns {
        w.add("time_ns < ?", [v.into()]);
    }
    if let Some((time, id)) = f.after {
        // The plain bound lets the index seek; the row value breaks ties.
        w.add("time_ns <= ?", [time.into()]);
        w.add("(time_ns, id) < (?, ?)", [time.into(), id.into()]);
    }
    let limit = w.bind(i64::from(limit).into());
    let sql = format!(
        "SELECT id, time_ns, severity, severity_text, body, attributes,
            COALESCE((SELECT attributes FROM telemetry_resources r WHERE r.id = resource_id), resource),
            service, scope, trace_id, span_id, dropped_attributes
         FROM logs {} ORDER BY time_ns DESC, id DESC
         LIMIT {limit}",
        w.where_sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(w.into_args()), |r| {
        let json = |i: usize| -> rusqlite::Result<Value> {
            let text: String = r.get(i)?;
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        };
        Ok(LogRow {
            id: r.get(0)?,
            time_ns: r.get(1)?,
            severity: r.get(2)?,
            severity_text: r.get(3)?,
            body: r.get(4)?,
            attributes: json(5)?,
            resource: json(6)?,
            service: r.get(7)?,
            scope: r.get(8)?,
            trace_id: r.get(9)?,
            span_id: r.get(10)?,
            dropped_attributes: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
