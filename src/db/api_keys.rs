//! The `api_keys` table.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub name: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "id, agent_id, user_id, name, secret_hash, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        user_id: r.get(2)?,
        name: r.get(3)?,
        secret_hash: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        last_used_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

pub fn insert(conn: &Connection, k: &ApiKeyRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            k.id,
            k.agent_id,
            k.user_id,
            k.name,
            k.secret_hash,
            k.created_at,
            k.expires_at,
            k.last_used_at,
            k.revoked_at
        ],
    )?;
    Ok(())
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<ApiKeyRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// Keys of one agent (or user), newest first.
pub fn of_owner(
    conn: &Connection,
    agent_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Vec<ApiKeyRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE agent_id IS ?1 AND user_id IS ?2 ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt.query_map(params![agent_id, user_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn revoke(conn: &Connection, id: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )? == 1)
}

/// Revokes every live key of an agent; returns how many.
pub fn revoke_all_of_agent(conn: &Connection, agent_id: &str, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE agent_id = ?1 AND revoked_at IS NULL",
        params![agent_id, now],
    )?)
}

pub fn touch(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// Creation time of the oldest key that still works (not revoked, not
/// expired), if any.
pub fn oldest_active_created(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MIN(created_at) FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
        [now],
        |r| r.get(0),
    )?)
}
