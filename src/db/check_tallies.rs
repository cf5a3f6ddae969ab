//! The `check_tallies` table: checks and failures per instance and hour,
//! counted by a trigger as results are written (migration 0021).

use rusqlite::{params, Connection};

use super::check_rollups::{RollupRow, HOUR};
use crate::error::Result;

/// Every instance's hours from `since` on, as hour rows without latency
/// (ordered by instance, then hour).
pub fn since(conn: &Connection, since: i64) -> Result<Vec<RollupRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT instance_id, hour, checks, failures FROM check_tallies
         WHERE hour >= ?1 ORDER BY instance_id, hour",
    )?;
    let rows = stmt.query_map(params![since - since.rem_euclid(HOUR)], |r| {
        Ok(RollupRow {
            instance_id: r.get(0)?,
            bucket_ms: HOUR,
            start: r.get(1)?,
            checks: r.get(2)?,
            failures: r.get(3)?,
            p50_ms: None,
            p95_ms: None,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_before(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM check_tallies WHERE hour < ?1", params![before])?)
}
