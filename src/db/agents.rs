//! The `agents` table (service accounts).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub agent_type: String,
    pub description: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// When it was quarantined; cleared when it is enabled again.
    pub quarantined_at: Option<i64>,
}

const COLUMNS: &str =
    "id, name, agent_type, description, enabled, created_at, updated_at, quarantined_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AgentRow> {
    Ok(AgentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        agent_type: r.get(2)?,
        description: r.get(3)?,
        enabled: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        quarantined_at: r.get(7)?,
    })
}

pub fn insert(conn: &Connection, a: &AgentRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO agents ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            a.id,
            a.name,
            a.agent_type,
            a.description,
            a.enabled,
            a.created_at,
            a.updated_at,
            a.quarantined_at
        ],
    )?;
    Ok(())
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<AgentRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// Rows whose name, agent_type, description contain `needle` (lowercase; empty:
/// all), by id after the cursor; and how many match in all.
pub fn matching(
    conn: &Connection,
    needle: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<AgentRow>, i64)> {
    let filter = "(?3 = '' OR instr(lower(coalesce(name, '')), ?3) > 0 OR instr(lower(coalesce(agent_type, '')), ?3) > 0 OR instr(lower(coalesce(description, '')), ?3) > 0)";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agents WHERE id > ?1 AND {filter} ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![after.unwrap_or(""), limit, needle], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let total = conn.query_row(
        "SELECT COUNT(*) FROM agents WHERE ?1 = '' OR instr(lower(coalesce(name, '')), ?1) > 0 OR instr(lower(coalesce(agent_type, '')), ?1) > 0 OR instr(lower(coalesce(description, '')), ?1) > 0",
        params![needle],
        |r| r.get(0),
    )?;
    Ok((rows, total))
}

pub fn list(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<AgentRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM agents WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after.unwrap_or(""), limit], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The agent with this name, ignoring case (names are unique that way).
pub fn by_name(conn: &Connection, name: &str) -> Result<Option<AgentRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM agents WHERE name = ?1 COLLATE NOCASE"),
            [name],
            from_row,
        )
        .optional()?)
}

/// Writes every editable field; returns false when the agent is gone.
pub fn update(conn: &Connection, a: &AgentRow) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE agents SET name = ?2, agent_type = ?3, description = ?4, enabled = ?5, updated_at = ?6,
                quarantined_at = ?7 WHERE id = ?1",
        params![
            a.id,
            a.name,
            a.agent_type,
            a.description,
            a.enabled,
            a.updated_at,
            a.quarantined_at
        ],
    )? == 1)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM agents WHERE id = ?1", [id])? == 1)
}

/// Every agent's (id, agent_type).
/// Every agent as (id, name).
pub fn all_names(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM agents ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn all_types(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, agent_type FROM agents")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
