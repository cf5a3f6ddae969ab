//! The `notifications` table: the outbox the delivery worker drains and
//! the notification log the UI shows.

use rusqlite::{params, Connection, Row};

use crate::error::Result;

crate::closed_set! {
    /// Where a notification is: waiting for its next attempt, delivered, or
    /// failed for good.
    pub enum DeliveryStatus {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    pub id: String,
    pub alert_id: Option<String>,
    /// The approval request it tells of (kind `approval`).
    pub approval_id: Option<String>,
    pub channel_id: Option<String>,
    pub channel: String,
    pub kind: String,
    /// JSON `notify::Message`.
    pub message: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "id, alert_id, channel_id, channel, kind, message, status, attempts, \
    next_attempt_at, last_error, created_at, delivered_at, approval_id";

fn row(r: &Row<'_>) -> rusqlite::Result<NotificationRow> {
    Ok(NotificationRow {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        channel_id: r.get(2)?,
        channel: r.get(3)?,
        kind: r.get(4)?,
        message: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        next_attempt_at: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        delivered_at: r.get(11)?,
        approval_id: r.get(12)?,
    })
}

/// Drops the notifications of approval request `approval_id` still to
/// come (escalation steps not yet due): it is decided or expired, and
/// nobody needs telling any more.
pub fn cancel_for_approval(conn: &Connection, approval_id: &str, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM notifications
         WHERE approval_id = ?1 AND status = 'pending' AND attempts = 0 AND next_attempt_at > ?2",
        params![approval_id, now],
    )?)
}

pub fn insert(conn: &Connection, n: &NotificationRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO notifications ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        n.id,
        n.alert_id,
        n.channel_id,
        n.channel,
        n.kind,
        n.message,
        n.status,
        n.attempts,
        n.next_attempt_at,
        n.last_error,
        n.created_at,
        n.delivered_at,
        n.approval_id,
    ])?;
    Ok(())
}

/// Pending rows due at `now`, oldest first.
pub fn due(conn: &Connection, now: i64, limit: u32) -> Result<Vec<NotificationRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the next pending row not yet due at `now` falls due, if any.
pub fn next_due_after(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending' AND next_attempt_at > ?1",
        [now],
        |r| r.get(0),
    )?)
}

/// Records an attempt: delivered, failed for good, or to be retried at
/// `next_attempt_at`.
pub fn record_attempt(
    conn: &Connection,
    id: &str,
    status: DeliveryStatus,
    next_attempt_at: i64,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notifications SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3,
             last_error = COALESCE(?4, last_error),
             delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, status, next_attempt_at, error, now])?;
    Ok(())
}

/// Newest first, optionally filtered.
pub fn list(
    conn: &Connection,
    status: Option<DeliveryStatus>,
    alert_id: Option<&str>,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<NotificationRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR alert_id = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![status, alert_id, before, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Names of the channels an alert's firing was sent (or is being sent) to,
/// with their ids.
pub fn told_firing(conn: &Connection, alert_id: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT channel, channel_id FROM notifications
         WHERE alert_id = ?1 AND kind = 'firing' AND status IN ('pending', 'delivered') ORDER BY channel",
    )?;
    let rows = stmt.query_map([alert_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The channels told of approval request `approval_id` (sent, or still to
/// send): those its decision or expiry is told to.
pub fn told_approval(
    conn: &Connection,
    approval_id: &str,
) -> Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT channel, channel_id FROM notifications
         WHERE approval_id = ?1 AND kind = 'approval' AND status IN ('pending', 'delivered')
         ORDER BY channel",
    )?;
    let rows = stmt.query_map([approval_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (status, count) over all notifications.
pub fn counts(conn: &Connection) -> Result<Vec<(DeliveryStatus, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT status, COUNT(*) FROM notifications GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops delivered and failed rows created before `before`.
pub fn prune(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM notifications WHERE status != 'pending' AND created_at < ?1",
        [before],
    )?)
}
