//! The `key_rings` and `data_keys` tables.

use rusqlite::{params, Connection};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct RingRow {
    pub classification: String,
    pub min_decryption_version: i64,
    pub requires_specific: bool,
}

#[derive(Debug, Clone)]
pub struct DataKeyRow {
    pub key_id: String,
    pub classification: String,
    pub version: i64,
    pub wrapped: String,
    pub created_at: i64,
}

pub fn rings(conn: &Connection) -> Result<Vec<RingRow>> {
    let mut stmt = conn.prepare("SELECT classification, min_decryption_version, requires_specific FROM key_rings ORDER BY classification")?;
    let rows = stmt.query_map([], |r| {
        Ok(RingRow {
            classification: r.get(0)?,
            min_decryption_version: r.get(1)?,
            requires_specific: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn keys(conn: &Connection) -> Result<Vec<DataKeyRow>> {
    let mut stmt = conn.prepare("SELECT key_id, classification, version, wrapped, created_at FROM data_keys ORDER BY classification, version")?;
    let rows = stmt.query_map([], |r| {
        Ok(DataKeyRow {
            key_id: r.get(0)?,
            classification: r.get(1)?,
            version: r.get(2)?,
            wrapped: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn insert_ring(
    conn: &Connection,
    classification: &str,
    requires_specific: bool,
    now: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO key_rings (classification, requires_specific, created_at) VALUES (?1, ?2, ?3)",
        params![classification, requires_specific, now],
    )? == 1)
}

pub fn newest_version(conn: &Connection, classification: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM data_keys WHERE classification = ?1",
        [classification],
        |r| r.get(0),
    )?)
}

pub fn insert_key(conn: &Connection, k: &DataKeyRow) -> Result<()> {
    conn.execute(
        "INSERT INTO data_keys (key_id, classification, version, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![k.key_id, k.classification, k.version, k.wrapped, k.created_at],
    )?;
    Ok(())
}

pub fn set_min_version(conn: &Connection, classification: &str, min: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE key_rings SET min_decryption_version = ?2 WHERE classification = ?1",
        params![classification, min],
    )? == 1)
}
