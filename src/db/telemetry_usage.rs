//! What the telemetry store (spans and log records) weighs, per minute of
//! receipt (`telemetry_usage`, migration 0025), and the pruning that keeps
//! it within retention and the byte budget, oldest received first.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// Counts `bytes` received at `now` (ms).
pub fn add(conn: &Connection, now: i64, bytes: i64) -> Result<()> {
    if bytes > 0 {
        conn.prepare_cached(
            "INSERT INTO telemetry_usage (minute, bytes) VALUES (?1, ?2)
             ON CONFLICT (minute) DO UPDATE SET bytes = bytes + excluded.bytes",
        )?
        .execute(params![now.div_euclid(60_000), bytes])?;
    }
    Ok(())
}

/// Bytes stored in all.
pub fn total(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(bytes), 0) FROM telemetry_usage",
        [],
        |r| r.get(0),
    )?)
}

/// What a prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Pruned {
    pub spans: usize,
    pub logs: usize,
}

/// Drops what was received before `before` (ms), then whole minutes of the
/// oldest received until the rest weigh at most `max_bytes`.
pub fn prune(conn: &Connection, before: i64, max_bytes: u64) -> Result<Pruned> {
    let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    let mut cutoff = before.div_euclid(60_000) * 60_000;
    let excess = total(conn)? - max;
    if excess > 0 {
        // The first minute by which the oldest minutes weigh the excess.
        let minute: Option<i64> = conn
            .query_row(
                "SELECT minute FROM (SELECT minute, SUM(bytes) OVER (ORDER BY minute) AS upto
                     FROM telemetry_usage) WHERE upto >= ?1 ORDER BY minute LIMIT 1",
                params![excess],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(m) = minute {
            cutoff = cutoff.max((m + 1) * 60_000);
        }
    }
    let spans = conn.execute("DELETE FROM spans WHERE received_at < ?1", params![cutoff])?;
    let logs = conn.execute("DELETE FROM logs WHERE received_at < ?1", params![cutoff])?;
    conn.execute(
        "DELETE FROM telemetry_usage WHERE minute < ?1",
        params![cutoff.div_euclid(60_000)],
    )?;
    // A resource last seen before the cutoff has no row left.
    super::telemetry_resources::prune(conn, cutoff)?;
    Ok(Pruned { spans, logs })
}
