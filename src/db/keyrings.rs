//! The `key_rings` and `data_keys` tables.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct RingRow {
    pub classification: String,
    pub min_decryption_version: i64,
    pub requires_specific: bool,
    /// `None`: the configured default; 0: never.
    pub rotation_days: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DataKeyRow {
    pub key_id: String,
    pub classification: String,
    pub version: i64,
    pub wrapped: String,
    pub created_at: i64,
    /// Encryptions reserved so far under this version.
    pub encryptions: i64,
}

pub fn rings(conn: &Connection) -> Result<Vec<RingRow>> {
    let mut stmt = conn.prepare("SELECT classification, min_decryption_version, requires_specific, rotation_days FROM key_rings ORDER BY classification")?;
    let rows = stmt.query_map([], |r| {
        Ok(RingRow {
            classification: r.get(0)?,
            min_decryption_version: r.get(1)?,
            requires_specific: r.get(2)?,
            rotation_days: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn keys(conn: &Connection) -> Result<Vec<DataKeyRow>> {
    let mut stmt = conn.prepare("SELECT key_id, classification, version, wrapped, created_at, encryptions FROM data_keys ORDER BY classification, version")?;
    let rows = stmt.query_map([], |r| {
        Ok(DataKeyRow {
            key_id: r.get(0)?,
            classification: r.get(1)?,
            version: r.get(2)?,
            wrapped: r.get(3)?,
            created_at: r.get(4)?,
            encryptions: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn insert_ring(
    conn: &Connection,
    classification: &str,
    requires_specific: bool,
    rotation_days: Option<i64>,
    now: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO key_rings (classification, requires_specific, rotation_days, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![classification, requires_specific, rotation_days, now],
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

pub fn set_rotation_days(
    conn: &Connection,
    classification: &str,
    days: Option<i64>,
) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE key_rings SET rotation_days = ?2 WHERE classification = ?1",
        params![classification, days],
    )? == 1)
}

/// Adds `n` to a key's reserved encryption count; returns the new total.
pub fn reserve(conn: &Connection, key_id: &str, n: i64) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "UPDATE data_keys SET encryptions = encryptions + ?2 WHERE key_id = ?1 RETURNING encryptions",
            params![key_id, n],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn set_wrapped(conn: &Connection, key_id: &str, wrapped: &str) -> Result<()> {
    conn.execute(
        "UPDATE data_keys SET wrapped = ?2 WHERE key_id = ?1",
        params![key_id, wrapped],
    )?;
    Ok(())
}
