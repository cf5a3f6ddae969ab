//! The `silences` table.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::json_column;
use crate::error::Result;
use crate::label_match::MatchOp;

/// A label matcher of a silence, as Alertmanager has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherRow {
    #[schema(pattern = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    pub name: String,
    #[serde(default = "equals")]
    pub op: MatchOp,
    #[schema(max_length = 256)]
    pub value: String,
}

fn equals() -> MatchOp {
    MatchOp::Eq
}

crate::closed_set! {
    /// Where a silence is in its window (Alertmanager's words): not started
    /// yet, muting now, or over (ended on schedule or by hand).
    pub enum SilenceStatus {
        Pending = "pending",
        Active = "active",
        Expired = "expired",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: String,
    pub matchers: Vec<MatcherRow>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub comment: String,
    pub created_at: i64,
    pub expired_at: Option<i64>,
}

impl SilenceRow {
    /// The silence's status at `now` (ms).
    pub fn status(&self, now: i64) -> SilenceStatus {
        if self.ends_at <= now {
            SilenceStatus::Expired
        } else if self.starts_at > now {
            SilenceStatus::Pending
        } else {
            SilenceStatus::Active
        }
    }
}

const COLUMNS: &str =
    "id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at";

fn row(r: &Row<'_>) -> rusqlite::Result<SilenceRow> {
    Ok(SilenceRow {
        id: r.get(0)?,
        matchers: json_column(r, 1)?,
        starts_at: r.get(2)?,
        ends_at: r.get(3)?,
        created_by: r.get(4)?,
        comment: r.get(5)?,
        created_at: r.get(6)?,
        expired_at: r.get(7)?,
    })
}

pub fn insert(conn: &Connection, s: &SilenceRow) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO silences ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            s.id,
            serde_json::to_string(&s.matchers).expect("matchers serialise"),
            s.starts_at,
            s.ends_at,
            s.created_by,
            s.comment,
            s.created_at,
            s.expired_at,
        ],
    )?;
    Ok(())
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<SilenceRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM silences WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// Ends a silence now (kept for history).
pub fn expire(conn: &Connection, id: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE silences SET ends_at = MIN(ends_at, ?2), expired_at = ?2 WHERE id = ?1 AND ends_at > ?2",
        params![id, now],
    )? > 0)
}

/// Silences whose window contains `now`.
pub fn active(conn: &Connection, now: i64) -> Result<Vec<SilenceRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM silences WHERE starts_at <= ?1 AND ends_at > ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([now], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Newest first; `current` keeps those not yet ended.
pub fn list(
    conn: &Connection,
    now: i64,
    current: bool,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<SilenceRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM silences WHERE (?1 = 0 OR ends_at > ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![current, now, before, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn prune(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM silences WHERE ends_at < ?1", [before])?)
}
