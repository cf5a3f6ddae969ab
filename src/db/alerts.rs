//! The `alerts` and `alert_events` tables.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::json_column;
use crate::error::Result;

crate::closed_set! {
    /// Where an alert is in its life: pending (the condition holds, not yet
    /// for long enough), firing, then resolved; a pending alert whose
    /// condition stops holding becomes inactive.
    pub enum AlertState {
        Pending = "pending",
        Firing = "firing",
        Resolved = "resolved",
        Inactive = "inactive",
    }
}

impl AlertState {
    /// Pending or firing: the condition holds.
    pub fn is_active(self) -> bool {
        matches!(self, AlertState::Pending | AlertState::Firing)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: String,
    pub rule: String,
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub severity: String,
    pub state: AlertState,
    pub value: Option<String>,
    pub active_since: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_eval_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub escalation_step: i64,
    pub next_notify_at: Option<i64>,
    pub suppressed_by: Option<String>,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, rule, fingerprint, labels, annotations, severity, state, value, \
    active_since, fired_at, resolved_at, last_eval_at, acknowledged_at, acknowledged_by, \
    escalation_step, next_notify_at, suppressed_by, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        rule: r.get(1)?,
        fingerprint: r.get(2)?,
        labels: json_column(r, 3)?,
        annotations: json_column(r, 4)?,
        severity: r.get(5)?,
        state: r.get(6)?,
        value: r.get(7)?,
        active_since: r.get(8)?,
        fired_at: r.get(9)?,
        resolved_at: r.get(10)?,
        last_eval_at: r.get(11)?,
        acknowledged_at: r.get(12)?,
        acknowledged_by: r.get(13)?,
        escalation_step: r.get(14)?,
        next_notify_at: r.get(15)?,
        suppressed_by: r.get(16)?,
        updated_at: r.get(17)?,
    })
}

pub fn insert(conn: &Connection, a: &AlertRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO alerts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    ))?
    .execute(params![
        a.id,
        a.rule,
        a.fingerprint,
        serde_json::to_string(&a.labels).expect("strings serialise"),
        serde_json::to_string(&a.annotations).expect("strings serialise"),
        a.severity,
        a.state,
        a.value,
        a.active_since,
        a.fired_at,
        a.resolved_at,
        a.last_eval_at,
        a.acknowledged_at,
        a.acknowledged_by,
        a.escalation_step,
        a.next_notify_at,
        a.suppressed_by,
        a.updated_at,
    ])?;
    Ok(())
}

/// Writes every mutable column of an existing alert.
pub fn update(conn: &Connection, a: &AlertRow) -> Result<()> {
    conn.prepare_cached(
        "UPDATE alerts SET annotations = ?2, state = ?3, value = ?4, fired_at = ?5, resolved_at = ?6,
             last_eval_at = ?7, acknowledged_at = ?8, acknowledged_by = ?9, escalation_step = ?10,
             next_notify_at = ?11, suppressed_by = ?12, updated_at = ?13
         WHERE id = ?1",
    )?
    .execute(params![
        a.id,
        serde_json::to_string(&a.annotations).expect("strings serialise"),
        a.state,
        a.value,
        a.fired_at,
        a.resolved_at,
        a.last_eval_at,
        a.acknowledged_at,
        a.acknowledged_by,
        a.escalation_step,
        a.next_notify_at,
        a.suppressed_by,
        a.updated_at,
    ])?;
    Ok(())
}

/// Every pending or firing alert.
pub fn open(conn: &Connection) -> Result<Vec<AlertRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE state IN ('pending', 'firing') ORDER BY id"
    ))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<AlertRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// Alerts newest first (ids are time-ordered), optionally in one state or
/// of one rule, before the cursor id.
pub fn list(
    conn: &Connection,
    state: Option<AlertState>,
    rule: Option<&str>,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<AlertRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR rule = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![state, rule, before, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many alerts each rule has in each state.
pub fn counts_by_rule(conn: &Connection) -> Result<Vec<(String, AlertState, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rule, state, COUNT(*) FROM alerts GROUP BY rule, state ORDER BY rule",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn add_event(
    conn: &Connection,
    alert_id: &str,
    at: i64,
    kind: &str,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO alert_events (alert_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![alert_id, at, kind, detail])?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub at: i64,
    pub kind: String,
    pub detail: String,
}

pub fn events(conn: &Connection, alert_id: &str) -> Result<Vec<EventRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, kind, detail FROM alert_events WHERE alert_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([alert_id], |r| {
        Ok(EventRow {
            at: r.get(0)?,
            kind: r.get(1)?,
            detail: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (state, count) over all alerts.
pub fn counts(conn: &Connection) -> Result<Vec<(AlertState, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM alerts GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops resolved and inactive alerts (and, by cascade, their events) last
/// changed before `before`.
pub fn prune(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM alerts WHERE state IN ('resolved', 'inactive') AND updated_at < ?1",
        [before],
    )?)
}
