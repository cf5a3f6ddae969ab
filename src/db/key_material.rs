//! The `key_material` table: the master key check value and the
//! appliance's own sealed keys.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

pub fn get(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT value FROM key_material WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

/// Inserts or replaces a row.
pub fn put(conn: &Connection, name: &str, value: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO key_material (name, value, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value, now],
    )?;
    Ok(())
}

/// Every row, as (name, value).
pub fn all(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT name, value FROM key_material ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
