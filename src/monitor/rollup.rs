//! Downsampling of health check history, so the database stays bounded
//! with thousands of instances over months.
//!
//! - raw results older than `raw_hours` become one row per instance and
//!   minute (checks, failures, p50 and p95 latency);
//! - minute rows older than `minute_days` become one row per hour (checks
//!   and failures summed; p50 the check-weighted median of the minutes'
//!   p50s, p95 the check-weighted 95th percentile of their p95s, an
//!   upper-leaning estimate);
//! - hour rows older than `hour_days` are dropped.
//!
//! Every step is one transaction; checks are never lost or counted twice.

use crate::db::check_rollups::{self as repo, RawResult, RollupRow, HOUR, MINUTE};
use crate::db::Db;
use crate::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub raw_hours: i64,
    pub minute_days: i64,
    pub hour_days: i64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folded {
    pub raw: usize,
    pub minutes: usize,
    pub hours_dropped: usize,
}

/// The `q`-quantile (0..1) of sorted values (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Check-weighted quantile of (value, weight) pairs.
fn weighted(mut v: Vec<(i64, i64)>, q: f64) -> Option<i64> {
    v.sort_unstable();
    let total: i64 = v.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let target = (q * total as f64).ceil() as i64;
    let mut acc = 0;
    for (value, w) in &v {
        acc += w;
        if acc >= target.max(1) {
            return Some(*value);
        }
    }
    v.last().map(|(value, _)| *value)
}

fn fold_raw(rows: Vec<RawResult>) -> Vec<RollupRow> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let (id, at) = (&rows[i].0, rows[i].1);
        let start = at - at.rem_euclid(MINUTE);
        let mut j = i;
        let mut latencies = Vec::new();
        let mut failures = 0;
        while j < rows.len() && rows[j].0 == *id && rows[j].1 < start + MINUTE {
            failures += i64::from(!rows[j].2);
            latencies.extend(rows[j].3);
            j += 1;
        }
        latencies.sort_unstable();
        out.push(RollupRow {
            instance_id: id.clone(),
            bucket_ms: MINUTE,
            start,
            checks: (j - i) as i64,
            failures,
            p50_ms: quantile(&latencies, 0.5),
            p95_ms: quantile(&latencies, 0.95),
        });
        i = j;
    }
    out
}

fn fold_minutes(rows: &[RollupRow]) -> Vec<RollupRow> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let id = &rows[i].instance_id;
        let start = rows[i].start - rows[i].start.rem_euclid(HOUR);
        let mut j = i;
        while j < rows.len() && rows[j].instance_id == *id && rows[j].start < start + HOUR {
            j += 1;
        }
        out.push(merged(id, HOUR, start, &rows[i..j]));
        i = j;
    }
    out
}

/// Finer rows of one instance folded into one bucket of `bucket_ms` at
/// `start`: checks and failures summed, p50 the check-weighted median of
/// their p50s, p95 the check-weighted 95th percentile of their p95s.
pub(super) fn merged<'a>(
    instance_id: &str,
    bucket_ms: i64,
    start: i64,
    part: impl IntoIterator<Item = &'a RollupRow> + Clone,
) -> RollupRow {
    let pairs = |f: fn(&RollupRow) -> Option<i64>| {
        part.clone()
            .into_iter()
            .filter_map(|r| f(r).map(|v| (v, r.checks)))
            .collect::<Vec<_>>()
    };
    RollupRow {
        instance_id: instance_id.to_string(),
        bucket_ms,
        start,
        checks: part.clone().into_iter().map(|r| r.checks).sum(),
        failures: part.clone().into_iter().map(|r| r.failures).sum(),
        p50_ms: weighted(pairs(|r| r.p50_ms), 0.5),
        p95_ms: weighted(pairs(|r| r.p95_ms), 0.95),
    }
}

/// One instance's history since `since` in hours, newest first, from every
/// tier the store holds it in: hour rollups, minute rollups and raw results
/// (folded here as the downsampling job would fold them), so the history
/// has no gap where one tier ends and the next begins.
pub async fn hourly(db: &Db, instance_id: &str, since: i64) -> Result<Vec<RollupRow>> {
    let id = instance_id.to_string();
    let since = since - since.rem_euclid(HOUR);
    let (raw, mut minutes, hours) = db
        .read(move |c| {
            Ok((
                repo::raw_since(c, &id, since)?,
                repo::history(c, &id, MINUTE, since)?,
                repo::history(c, &id, HOUR, since)?,
            ))
        })
        .await?;
    minutes.extend(fold_raw(raw));
    minutes.sort_by_key(|m| m.start);
    Ok(merge_hours(hours, fold_minutes(&minutes)))
}

/// One instance's history since `since` in minutes, oldest first: minute
/// rollups and raw results folded as the downsampling job would (a minute
/// may be split across the two while the job runs; its parts are added
/// up by whoever buckets them).
pub async fn minutely(db: &Db, instance_id: &str, since: i64) -> Result<Vec<RollupRow>> {
    let id = instance_id.to_string();
    let since = since - since.rem_euclid(MINUTE);
    let (raw, mut minutes) = db
        .read(move |c| {
            Ok((
                repo::raw_since(c, &id, since)?,
                repo::history(c, &id, MINUTE, since)?,
            ))
        })
        .await?;
    minutes.extend(fold_raw(raw));
    minutes.sort_by_key(|m| m.start);
    Ok(minutes)
}

/// Joins hour rows of the same instance, as [`repo::merge`] does in the
/// database (a bucket can be split across tiers); newest first.
fn merge_hours(stored: Vec<RollupRow>, folded: Vec<RollupRow>) -> Vec<RollupRow> {
    let mut by_start: std::collections::BTreeMap<i64, RollupRow> =
        std::collections::BTreeMap::new();
    for r in stored.into_iter().chain(folded) {
        match by_start.get_mut(&r.start) {
            None => {
                by_start.insert(r.start, r);
            }
            Some(h) => {
                h.checks += r.checks;
                h.failures += r.failures;
                h.p50_ms = h.p50_ms.max(r.p50_ms);
                h.p95_ms = h.p95_ms.max(r.p95_ms);
            }
        }
    }
    by_start.into_values().rev().collect()
}

/// One pass, as of `now` (ms).
pub async fn run(db: &Db, now: i64, w: Windows) -> Result<Folded> {
    let raw_cut = now - w.raw_hours * HOUR;
    // Whole minutes only: a minute still receiving results is not folded.
    let raw_cut = raw_cut - raw_cut.rem_euclid(MINUTE);
    let minute_cut = now - w.minute_days * 24 * HOUR;
    let minute_cut = minute_cut - minute_cut.rem_euclid(HOUR);
    let hour_cut = now - w.hour_days * 24 * HOUR;
    let raw = db
        .write(move |c| {
            let rows = repo::raw_before(c, raw_cut)?;
            for r in fold_raw(rows) {
                repo::merge(c, &r)?;
            }
            repo::delete_raw_before(c, raw_cut)
        })
        .await?;
    let minutes = db
        .write(move |c| {
            let rows = repo::rollups_before(c, MINUTE, minute_cut)?;
            for r in fold_minutes(&rows) {
                repo::merge(c, &r)?;
            }
            repo::delete_rollups_before(c, MINUTE, minute_cut)
        })
        .await?;
    let hours_dropped = db
        .write(move |c| {
            // The hourly tallies live as long as the hour rollups.
            crate::db::check_tallies::delete_before(c, hour_cut)?;
            repo::delete_rollups_before(c, HOUR, hour_cut)
        })
        .await?;
    Ok(Folded {
        raw,
        minutes,
        hours_dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_and_hours_keep_every_check() {
        let raw: Vec<_> = (0..180)
            .map(|i| ("a".to_string(), i * 20_000, i % 10 != 0, Some(i)))
            .collect();
        let minutes = fold_raw(raw);
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes.iter().map(|m| m.checks).sum::<i64>(), 180);
        assert_eq!(minutes.iter().map(|m| m.failures).sum::<i64>(), 18);
        assert_eq!(minutes[0].p50_ms, Some(1));
        assert_eq!(minutes[0].p95_ms, Some(2));
        let hours = fold_minutes(&minutes);
        assert_eq!(hours.len(), 1);
        assert_eq!((hours[0].checks, hours[0].failures), (180, 18));
        assert!(hours[0].p50_ms.unwrap() <= hours[0].p95_ms.unwrap());
    }

    #[test]
    fn hours_split_across_tiers_are_joined() {
        let row = |start, checks, failures, p95| RollupRow {
            instance_id: "a".into(),
            bucket_ms: HOUR,
            start,
            checks,
            failures,
            p50_ms: Some(1),
            p95_ms: Some(p95),
        };
        let merged = merge_hours(
            vec![row(0, 10, 1, 5), row(HOUR, 3, 0, 7)],
            vec![row(HOUR, 2, 2, 9), row(2 * HOUR, 4, 0, 3)],
        );
        let got: Vec<_> = merged
            .iter()
            .map(|r| (r.start, r.checks, r.failures, r.p95_ms))
            .collect();
        assert_eq!(
            got,
            [
                (2 * HOUR, 4, 0, Some(3)),
                (HOUR, 5, 2, Some(9)),
                (0, 10, 1, Some(5))
            ]
        );
    }

    #[test]
    fn quantiles() {
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.95), Some(4));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(weighted(vec![(10, 1), (20, 3)], 0.5), Some(20));
    }
}
