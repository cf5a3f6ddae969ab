//! The `spans` table (migration 0023).

use rusqlite::{params, Connection};

use super::clauses::Clauses;
use super::telemetry_resources::Resources;
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
    /// Where the trace enters the store: no parent, or a remote one.
    pub entry: bool,
}

/// What a span row costs, roughly (the byte budget's unit); its resource
/// is stored once for all the spans that share it.
fn weight(s: &SpanRow, attributes: &str, events: &str) -> i64 {
    (120 + s.name.len()
        + s.service.len()
        + s.status_message.len()
        + attributes.len()
        + events.len()) as i64
}

/// What an insert stored.
#[derive(Debug, Default)]
pub struct Stored {
    /// Per span given: whether it was new (a span sent again is kept once).
    pub fresh: Vec<bool>,
    /// What the new ones weigh.
    pub bytes: i64,
}

impl Stored {
    pub fn added(&self) -> usize {
        self.fresh.iter().filter(|f| **f).count()
    }
}

/// The columns [`row`] reads, the resource from its shared row.
const COLUMNS: &str = "trace_id, span_id, parent_span_id, service, name, kind, start_ns, end_ns, \
    status, status_message, attributes, events, \
    COALESCE((SELECT attributes FROM telemetry_resources r WHERE r.id = resource_id), resource), \
    scope, dropped_attributes, entry";

/// Stores `spans` sent by `sender`.
pub fn insert(conn: &Connection, spans: &[SpanRow], sender: &str, now: i64) -> Result<Stored> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO spans (trace_id, span_id, parent_span_id, service, name, kind,
            start_ns, end_ns, status, status_message, attributes, events, resource, resource_id,
            scope, dropped_attributes, sender, received_at, bytes, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, '', ?13, ?14, ?15, ?16, ?17,
            ?18, ?19)",
    )?;
    let mut out = Stored {
        fresh: Vec::with_capacity(spans.len()),
        bytes: 0,
    };
    let mut resources = Resources::default();
    for s in spans {
        let attributes = s.attributes.to_string();
        let events = s.events.to_string();
        let resource_id = resources.of(conn, &s.resource, now)?;
        let bytes = weight(s, &attributes, &events);
        let n = stmt.execute(params![
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
            resource_id,
            s.scope,
            s.dropped_attributes,
            sender,
            now,
            bytes,
            s.entry
        ])?;
        out.fresh.push(n > 0);
        if n > 0 {
            out.bytes += bytes;
        }
    }
    Ok(out)
}

/// Every span of a trace, by start time.
pub fn trace(conn: &Connection, trace_id: &str) -> Result<Vec<SpanRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM spans WHERE trace_id = ?1 ORDER BY start_ns, span_id LIMIT 10000"
    ))?;
    let rows = stmt.query_map(params![trace_id], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<SpanRow> {
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
        entry: r.get(15)?,
    })
}

/// Filters of the trace list; every one optional.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub service: Option<String>,
    pub name: Option<String>,
    /// 0 unset, 1 ok, 2 error.
    pub status: Option<i32>,
    pub min_duration_ns: Option<i64>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Continue after this (start_ns, trace_id, span_id), newest first.
    pub after: Option<(i64, String, String)>,
}

/// A trace as listed: the span where it enters the store, with how many
/// spans and errors the trace holds.
#[derive(Debug, Clone)]
pub struct TraceEntry {
    pub span: SpanRow,
    pub spans: i64,
    pub errors: i64,
}

/// Spans where traces enter the store, newest first, at most `limit`.
pub fn entries(conn: &Connection, f: &EntryFilter, limit: u32) -> Result<Vec<TraceEntry>> {
    let mut w = Clauses::default();
    w.add("entry = 1", []);
    if let Some(v) = &f.service {
        w.add("service = ?", [v.clone().into()]);
    }
    if let Some(v) = &f.name {
        w.add("name = ?", [v.clone().into()]);
    }
    if let Some(v) = f.status {
        // A literal (0-2, never text from a request), so the partial index
        // of failed entries (migration 0026) can serve `status = 2`.
        w.add(&format!("status = {}", v.clamp(0, 2)), []);
    }
    if let Some(v) = f.min_duration_ns {
        w.add("end_ns - start_ns >= ?", [v.into()]);
    }
    if let Some(v) = f.since_ns {
        w.add("start_ns >= ?", [v.into()]);
    }
    if let Some(v) = f.until_ns {
        w.add("start_ns < ?", [v.into()]);
    }
    if let Some((start, trace, span)) = &f.after {
        // The plain bound lets the index seek; the row value breaks ties.
        w.add("start_ns <= ?", [(*start).into()]);
        w.add(
            "(start_ns, trace_id, span_id) < (?, ?, ?)",
            [(*start).into(), trace.clone().into(), span.clone().into()],
        );
    }
    let limit = w.bind(i64::from(limit).into());
    let sql = format!(
        "SELECT {COLUMNS},
            (SELECT COUNT(*) FROM spans t WHERE t.trace_id = s.trace_id),
            (SELECT COUNT(*) FROM spans t WHERE t.trace_id = s.trace_id AND t.status = 2)
         FROM spans s {} ORDER BY start_ns DESC, trace_id DESC, span_id DESC LIMIT {limit}",
        w.where_sql()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(w.into_args()), |r| {
        Ok(TraceEntry {
            span: row(r)?,
            spans: r.get(16)?,
            errors: r.get(17)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Spans received at or after `since` (ms), for rebuilding the derived
/// series' window at start; at most `limit`.
pub fn received_since(conn: &Connection, since: i64, limit: u32) -> Result<Vec<SpanRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM spans WHERE received_at >= ?1 ORDER BY received_at LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![since, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
