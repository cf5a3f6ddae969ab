//! An instance's check history over a range (1 h, 24 h, 7 d, 30 d), as the
//! monitor pages and `GET /api/v1/instances/{id}/history` show it: evenly
//! spaced buckets with no gaps (a bucket without checks says so), the
//! checks, failures and latency of each, and the uptime of the range.
//!
//! Read from every tier the store keeps (raw results, minute and hour
//! rollups; see `rollup`), folded here to the range's bucket size.

use crate::db::check_rollups::{RollupRow, HOUR, MINUTE};
use crate::db::Db;
use crate::error::Result;

const DAY: i64 = 24 * HOUR;

crate::closed_set! {
    /// How far back a history reaches.
    pub enum Range {
        /// The last hour, by the minute.
        Hour = "1h",
        /// The last 24 hours, by the hour.
        Day = "24h",
        /// The last 7 days, by the hour.
        Week = "7d",
        /// The last 30 days, by the day.
        Month = "30d",
    }
}

impl Range {
    pub fn span_ms(self) -> i64 {
        match self {
            Range::Hour => HOUR,
            Range::Day => DAY,
            Range::Week => 7 * DAY,
            Range::Month => 30 * DAY,
        }
    }

    pub fn bucket_ms(self) -> i64 {
        match self {
            Range::Hour => MINUTE,
            Range::Day | Range::Week => HOUR,
            Range::Month => DAY,
        }
    }
}

/// A range's history.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub range: Range,
    /// The first bucket's start (ms).
    pub from: i64,
    /// The end of the last bucket (ms): now, rounded up to a bucket.
    pub to: i64,
    /// Oldest first, one per bucket, `checks` 0 where none ran.
    pub buckets: Vec<RollupRow>,
}

impl History {
    pub fn checks(&self) -> i64 {
        self.buckets.iter().map(|b| b.checks).sum()
    }

    pub fn failures(&self) -> i64 {
        self.buckets.iter().map(|b| b.failures).sum()
    }

    /// The share of checks that passed (0..1); `None` without checks.
    pub fn uptime(&self) -> Option<f64> {
        uptime(self.checks(), self.failures())
    }
}

fn uptime(checks: i64, failures: i64) -> Option<f64> {
    (checks > 0).then(|| (checks - failures) as f64 / checks as f64)
}

/// `rows` (finer buckets, any order) folded into buckets of `bucket_ms`
/// covering `[from, to)`, oldest first, empty ones included. Latency
/// quantiles are check-weighted over the finer rows, as the rollup does.
pub fn buckets(
    rows: &[RollupRow],
    instance_id: &str,
    bucket_ms: i64,
    from: i64,
    to: i64,
) -> Vec<RollupRow> {
    let n = ((to - from) / bucket_ms).max(0) as usize;
    let mut parts: Vec<Vec<&RollupRow>> = vec![Vec::new(); n];
    for r in rows {
        if r.start < from || r.start >= to {
            continue;
        }
        parts[((r.start - from) / bucket_ms) as usize].push(r);
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let start = from + i as i64 * bucket_ms;
            super::rollup::merged(instance_id, bucket_ms, start, part.iter().copied())
        })
        .collect()
}

/// Where a range's buckets start and end, as of `now`: the bucket holding
/// `now` is the last.
fn window(range: Range, now: i64) -> (i64, i64) {
    let b = range.bucket_ms();
    let to = now - now.rem_euclid(b) + b;
    (to - range.span_ms(), to)
}

/// Instance `id`'s history over `range` as of `now`.
pub async fn load(db: &Db, id: &str, range: Range, now: i64) -> Result<History> {
    let (from, to) = window(range, now);
    let rows = match range {
        Range::Hour => super::rollup::minutely(db, id, from).await?,
        _ => super::rollup::hourly(db, id, from).await?,
    };
    Ok(History {
        range,
        from,
        to,
        buckets: buckets(&rows, id, range.bucket_ms(), from, to),
    })
}

/// Uptime over the last 24 hours, 7 days and 30 days, from one read of
/// the hourly history.
pub async fn uptimes(db: &Db, id: &str, now: i64) -> Result<[Option<f64>; 3]> {
    let hours = super::rollup::hourly(db, id, now - Range::Month.span_ms()).await?;
    Ok([Range::Day, Range::Week, Range::Month].map(|r| {
        let since = now - r.span_ms();
        let part = hours.iter().filter(|h| h.start + HOUR > since);
        let (c, f) = part.fold((0, 0), |(c, f), h| (c + h.checks, f + h.failures));
        uptime(c, f)
    }))
}

/// A monitor's last 24 hours at a glance, as each row of a list of
/// monitors shows it: a bucket per hour (checks and failures only) and the
/// uptime over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Glance {
    pub hours: Vec<RollupRow>,
    pub uptime: Option<f64>,
}

/// 24 hourly buckets without checks, for an instance without tallies.
pub fn empty_day(instance_id: &str, now: i64) -> Vec<RollupRow> {
    let (from, to) = window(Range::Day, now);
    (from..to)
        .step_by(HOUR as usize)
        .map(|start| RollupRow {
            instance_id: instance_id.to_string(),
            bucket_ms: HOUR,
            start,
            checks: 0,
            failures: 0,
            p50_ms: None,
            p95_ms: None,
        })
        .collect()
}

/// The [`Glance`] of every instance with checks in the last 24 hours, from
/// one read of the hourly tallies (an instance without any has none).
pub async fn glances(db: &Db, now: i64) -> Result<std::collections::HashMap<String, Glance>> {
    let (from, _) = window(Range::Day, now);
    let rows = db
        .read(move |c| crate::db::check_tallies::since(c, from))
        .await?;
    let mut out = std::collections::HashMap::new();
    for part in rows.chunk_by(|a, b| a.instance_id == b.instance_id) {
        let id = &part[0].instance_id;
        // Tallies are hourly already: each lands in its slot as it is.
        let mut hours = empty_day(id, now);
        for t in part {
            if let Some(slot) = usize::try_from((t.start - from) / HOUR)
                .ok()
                .and_then(|k| hours.get_mut(k))
            {
                slot.checks += t.checks;
                slot.failures += t.failures;
            }
        }
        let (c, f) = hours
            .iter()
            .fold((0, 0), |(c, f), h| (c + h.checks, f + h.failures));
        out.insert(
            id.clone(),
            Glance {
                hours,
                uptime: uptime(c, f),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start: i64, checks: i64, failures: i64, p95: i64) -> RollupRow {
        RollupRow {
            instance_id: "i".into(),
            bucket_ms: MINUTE,
            start,
            checks,
            failures,
            p50_ms: Some(p95 / 2),
            p95_ms: Some(p95),
        }
    }

    #[test]
    fn buckets_cover_the_range_without_gaps() {
        let from = 10 * HOUR;
        let rows = [
            row(from, 2, 0, 100),
            row(from + MINUTE, 2, 1, 300),
            row(from + 2 * HOUR + 5 * MINUTE, 4, 4, 900),
            // Outside: before and after.
            row(from - MINUTE, 9, 9, 1),
            row(from + 3 * HOUR, 9, 9, 1),
        ];
        let b = buckets(&rows, "i", HOUR, from, from + 3 * HOUR);
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].start, b[0].checks, b[0].failures), (from, 4, 1));
        assert_eq!(b[0].p95_ms, Some(300));
        assert_eq!((b[1].checks, b[1].p95_ms), (0, None));
        assert_eq!((b[2].checks, b[2].failures), (4, 4));
    }

    #[test]
    fn a_window_ends_with_the_bucket_of_now() {
        let now = 5 * DAY + 3 * HOUR + 17 * MINUTE + 5;
        let (from, to) = window(Range::Day, now);
        assert_eq!(to, 5 * DAY + 4 * HOUR);
        assert_eq!(to - from, DAY);
        let (from, to) = window(Range::Hour, now);
        assert_eq!((to - from) / MINUTE, 60);
        assert_eq!(to, 5 * DAY + 3 * HOUR + 18 * MINUTE);
    }

    #[test]
    fn uptime_is_the_share_of_passed_checks() {
        let h = History {
            range: Range::Hour,
            from: 0,
            to: 2 * MINUTE,
            buckets: vec![row(0, 3, 1, 1), row(MINUTE, 1, 0, 1)],
        };
        assert_eq!(h.uptime(), Some(0.75));
        assert_eq!(uptime(0, 0), None);
    }
}
