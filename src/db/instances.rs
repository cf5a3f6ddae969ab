//! The `instances` and `check_results` tables.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;

/// An instance's definition and its last known state.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub id: String,
    /// The agent that owns the instance; `None` for the instance of a
    /// proxied MCP server.
    pub agent_id: Option<String>,
    /// The proxied MCP server that owns the instance (its automatic `mcp`
    /// probe).
    pub mcp_server_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub interval_seconds: i64,
    pub timeout_ms: i64,
    pub expected_status: String,
    pub body_contains: Option<String>,
    pub failure_threshold: i64,
    pub success_threshold: i64,
    pub degraded_latency_ms: Option<i64>,
    pub enabled: bool,
    pub state: String,
    pub state_since: Option<i64>,
    pub fail_streak: i64,
    pub ok_streak: i64,
    pub slow_streak: i64,
    pub fast_streak: i64,
    pub last_check_at: Option<i64>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl InstanceRow {
    /// A new instance's row, never checked (state `unknown`, no streaks):
    /// the caller sets its owner and definition.
    pub fn unchecked(id: String, now: i64) -> InstanceRow {
        InstanceRow {
            id,
            agent_id: None,
            mcp_server_id: None,
            name: String::new(),
            kind: String::new(),
            url: None,
            interval_seconds: 30,
            timeout_ms: 5000,
            expected_status: "200-399".into(),
            body_contains: None,
            failure_threshold: 3,
            success_threshold: 2,
            degraded_latency_ms: None,
            enabled: true,
            state: "unknown".into(),
            state_since: None,
            fail_streak: 0,
            ok_streak: 0,
            slow_streak: 0,
            fast_streak: 0,
            last_check_at: None,
            last_latency_ms: None,
            last_error: None,
            last_heartbeat_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

const COLUMNS: &str = "id, agent_id, name, kind, url, interval_seconds, timeout_ms, expected_status, \
    body_contains, failure_threshold, success_threshold, degraded_latency_ms, enabled, state, state_since, \
    fail_streak, ok_streak, slow_streak, fast_streak, last_check_at, last_latency_ms, last_error, \
    last_heartbeat_at, created_at, updated_at, mcp_server_id";

fn row(r: &Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        url: r.get(4)?,
        interval_seconds: r.get(5)?,
        timeout_ms: r.get(6)?,
        expected_status: r.get(7)?,
        body_contains: r.get(8)?,
        failure_threshold: r.get(9)?,
        success_threshold: r.get(10)?,
        degraded_latency_ms: r.get(11)?,
        enabled: r.get(12)?,
        state: r.get(13)?,
        state_since: r.get(14)?,
        fail_streak: r.get(15)?,
        ok_streak: r.get(16)?,
        slow_streak: r.get(17)?,
        fast_streak: r.get(18)?,
        last_check_at: r.get(19)?,
        last_latency_ms: r.get(20)?,
        last_error: r.get(21)?,
        last_heartbeat_at: r.get(22)?,
        created_at: r.get(23)?,
        updated_at: r.get(24)?,
        mcp_server_id: r.get(25)?,
    })
}

pub fn insert(conn: &Connection, i: &InstanceRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO instances (id, agent_id, name, kind, url, interval_seconds, timeout_ms, expected_status,
            body_contains, failure_threshold, success_threshold, degraded_latency_ms, enabled, created_at, updated_at,
            mcp_server_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            i.id, i.agent_id, i.name, i.kind, i.url, i.interval_seconds, i.timeout_ms, i.expected_status,
            i.body_contains, i.failure_threshold, i.success_threshold, i.degraded_latency_ms, i.enabled,
            i.created_at, i.updated_at, i.mcp_server_id
        ],
    )?;
    Ok(())
}

/// Writes the definition columns (not the state the checker owns).
pub fn update_definition(conn: &Connection, i: &InstanceRow) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE instances SET name = ?2, url = ?3, interval_seconds = ?4, timeout_ms = ?5, expected_status = ?6,
            body_contains = ?7, failure_threshold = ?8, success_threshold = ?9, degraded_latency_ms = ?10,
            enabled = ?11, updated_at = ?12
         WHERE id = ?1",
        params![
            i.id, i.name, i.url, i.interval_seconds, i.timeout_ms, i.expected_status, i.body_contains,
            i.failure_threshold, i.success_threshold, i.degraded_latency_ms, i.enabled, i.updated_at
        ],
    )? == 1)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<InstanceRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// A page in id order, optionally of one agent.
pub fn list(
    conn: &Connection,
    agent_id: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<InstanceRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM instances
         WHERE (?1 IS NULL OR agent_id = ?1) AND (?2 IS NULL OR id > ?2)
         ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![agent_id, after, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The instance of the proxied MCP server `server_id`, if it has one.
pub fn of_mcp_server(conn: &Connection, server_id: &str) -> Result<Option<InstanceRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM instances WHERE mcp_server_id = ?1"),
            [server_id],
            row,
        )
        .optional()?)
}

/// Removes the probe of MCP server `server_id`, if any.
pub fn delete_of_mcp_server(conn: &Connection, server_id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM instances WHERE mcp_server_id = ?1",
        [server_id],
    )
}

pub fn all(conn: &Connection) -> Result<Vec<InstanceRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM instances ORDER BY id"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM instances WHERE id = ?1", [id])? == 1)
}

pub fn heartbeat(conn: &Connection, id: &str, at: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE instances SET last_heartbeat_at = ?2 WHERE id = ?1 AND kind = 'heartbeat'",
        params![id, at],
    )? == 1)
}

pub fn last_heartbeat(conn: &Connection, id: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT last_heartbeat_at FROM instances WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// One check's outcome and the instance state it led to.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub instance_id: String,
    pub at: i64,
    pub ok: bool,
    pub status_code: Option<i64>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
}

/// The state columns the checker owns.
#[derive(Debug, Clone)]
pub struct StateRow {
    pub state: String,
    pub state_since: Option<i64>,
    pub fail_streak: i64,
    pub ok_streak: i64,
    pub slow_streak: i64,
    pub fast_streak: i64,
}

pub fn record_check(conn: &Connection, c: &CheckRow, s: &StateRow) -> Result<()> {
    conn.prepare_cached(
        // An instance deleted while its check ran gets nothing written.
        "INSERT INTO check_results (instance_id, at, ok, status_code, latency_ms, error)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1)",
    )?
    .execute(params![
        c.instance_id,
        c.at,
        c.ok,
        c.status_code,
        c.latency_ms,
        c.error
    ])?;
    conn.prepare_cached(
        "UPDATE instances SET state = ?2, state_since = ?3, fail_streak = ?4, ok_streak = ?5, slow_streak = ?6,
            fast_streak = ?7, last_check_at = ?8, last_latency_ms = ?9, last_error = ?10
         WHERE id = ?1",
    )?
    .execute(params![
        c.instance_id, s.state, s.state_since, s.fail_streak, s.ok_streak, s.slow_streak, s.fast_streak,
        c.at, c.latency_ms, c.error
    ])?;
    Ok(())
}

pub fn checks(
    conn: &Connection,
    instance_id: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<CheckRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT instance_id, at, ok, status_code, latency_ms, error FROM check_results
         WHERE instance_id = ?1 AND (?2 IS NULL OR at < ?2) ORDER BY at DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![instance_id, before, limit], |r| {
        Ok(CheckRow {
            instance_id: r.get(0)?,
            at: r.get(1)?,
            ok: r.get(2)?,
            status_code: r.get(3)?,
            latency_ms: r.get(4)?,
            error: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
