//! The `channels` table: notification targets. The secret part of the
//! settings arrives here already encrypted (see `notify::store`).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// JSON object: the settings that are not secret.
    pub settings: String,
    /// JSON envelope package of the secret settings.
    pub secrets: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, type, settings, secrets, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        settings: r.get(3)?,
        secrets: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub fn insert(conn: &Connection, c: &ChannelRow) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO channels ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            c.id,
            c.name,
            c.kind,
            c.settings,
            c.secrets,
            c.created_at,
            c.updated_at
        ],
    )?;
    Ok(())
}

pub fn update(conn: &Connection, c: &ChannelRow) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE channels SET name = ?2, type = ?3, settings = ?4, secrets = ?5, updated_at = ?6 WHERE id = ?1",
        params![c.id, c.name, c.kind, c.settings, c.secrets, c.updated_at],
    )? > 0)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<ChannelRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM channels WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<ChannelRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM channels WHERE name = ?1"),
            [name],
            row,
        )
        .optional()?)
}

pub fn list(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<ChannelRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM channels WHERE (?1 IS NULL OR name > ?1) ORDER BY name LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (name, id) of every channel, for routing notifications by name.
pub fn ids_by_name(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT name, id FROM channels")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM channels WHERE id = ?1", [id])? > 0)
}
