//! The `check_rollups` table, and reading what gets folded into it.

use rusqlite::{params, Connection};

use crate::error::Result;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub instance_id: String,
    pub bucket_ms: i64,
    pub start: i64,
    pub checks: i64,
    pub failures: i64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// A raw result: (instance, at, ok, latency).
pub type RawResult = (String, i64, bool, Option<i64>);

/// Raw results before `before`, ordered by instance and time.
pub fn raw_before(conn: &Connection, before: i64) -> Result<Vec<RawResult>> {
    let mut stmt = conn.prepare(
        "SELECT instance_id, at, ok, latency_ms FROM check_results WHERE at < ?1 ORDER BY instance_id, at",
    )?;
    let rows = stmt.query_map([before], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One instance's raw results since `since`, oldest first.
pub fn raw_since(conn: &Connection, instance_id: &str, since: i64) -> Result<Vec<RawResult>> {
    let mut stmt = conn.prepare_cached(
        "SELECT instance_id, at, ok, latency_ms FROM check_results
         WHERE instance_id = ?1 AND at >= ?2 ORDER BY at",
    )?;
    let rows = stmt.query_map(params![instance_id, since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn rollups_before(conn: &Connection, bucket_ms: i64, before: i64) -> Result<Vec<RollupRow>> {
    let mut stmt = conn.prepare(
        "SELECT instance_id, bucket_ms, start, checks, failures, p50_ms, p95_ms FROM check_rollups
         WHERE bucket_ms = ?1 AND start < ?2 ORDER BY instance_id, start",
    )?;
    let rows = stmt.query_map(params![bucket_ms, before], |r| {
        Ok(RollupRow {
            instance_id: r.get(0)?,
            bucket_ms: r.get(1)?,
            start: r.get(2)?,
            checks: r.get(3)?,
            failures: r.get(4)?,
            p50_ms: r.get(5)?,
            p95_ms: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Adds a bucket, merging with one already there (a bucket can be folded
/// in two runs when it straddles a cut-off).
pub fn merge(conn: &Connection, r: &RollupRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO check_rollups (instance_id, bucket_ms, start, checks, failures, p50_ms, p95_ms)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1)
         ON CONFLICT (instance_id, bucket_ms, start) DO UPDATE SET
           checks = checks + excluded.checks, failures = failures + excluded.failures,
           p50_ms = COALESCE(MAX(p50_ms, excluded.p50_ms), p50_ms, excluded.p50_ms),
           p95_ms = COALESCE(MAX(p95_ms, excluded.p95_ms), p95_ms, excluded.p95_ms)",
    )?
    .execute(params![r.instance_id, r.bucket_ms, r.start, r.checks, r.failures, r.p50_ms, r.p95_ms])?;
    Ok(())
}

pub fn delete_raw_before(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM check_results WHERE at < ?1", [before])?)
}

pub fn delete_rollups_before(conn: &Connection, bucket_ms: i64, before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM check_rollups WHERE bucket_ms = ?1 AND start < ?2",
        params![bucket_ms, before],
    )?)
}

pub fn history(
    conn: &Connection,
    instance_id: &str,
    bucket_ms: i64,
    since: i64,
) -> Result<Vec<RollupRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT instance_id, bucket_ms, start, checks, failures, p50_ms, p95_ms FROM check_rollups
         WHERE instance_id = ?1 AND bucket_ms = ?2 AND start >= ?3 ORDER BY start",
    )?;
    let rows = stmt.query_map(params![instance_id, bucket_ms, since], |r| {
        Ok(RollupRow {
            instance_id: r.get(0)?,
            bucket_ms: r.get(1)?,
            start: r.get(2)?,
            checks: r.get(3)?,
            failures: r.get(4)?,
            p50_ms: r.get(5)?,
            p95_ms: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
