//! Audit activity: how many records per hour and outcome over the last
//! 24 hours, for the audit page's chart. Hours that are over do not change
//! (the log is append-only), so they are counted once and kept; only the
//! current hour is counted on every look.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::record::Outcome;
use crate::db::Db;
use crate::error::Result;

const HOUR: i64 = 3_600_000;
/// An hour is settled (counted for good) this long after it ends, so a
/// record committed a moment late is still in it.
const SETTLE_MS: i64 = 60_000;

/// One hour's records by outcome, in `Outcome::ALL` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Hour {
    pub start: i64,
    pub counts: Vec<(Outcome, i64)>,
}

/// Settled hours, per server (shared by the clones of its state).
#[derive(Default, Clone)]
pub struct HourCache(Arc<Mutex<BTreeMap<i64, BTreeMap<Outcome, i64>>>>);

/// The 24 hours ending with the current one, oldest first.
pub async fn last_day(db: &Db, cache: &HourCache, now: i64) -> Result<Vec<Hour>> {
    let current = now - now.rem_euclid(HOUR);
    let first = current - 23 * HOUR;
    let settled_before = {
        let settled_end = now - SETTLE_MS;
        settled_end - settled_end.rem_euclid(HOUR)
    };
    let known: BTreeMap<i64, BTreeMap<Outcome, i64>> = {
        let mut c = cache.0.lock().unwrap_or_else(|e| e.into_inner());
        c.retain(|h, _| *h >= first);
        c.clone()
    };
    // Count what is not settled yet and what the cache lacks, in one read.
    let missing_from = (first..settled_before)
        .step_by(HOUR as usize)
        .find(|h| !known.contains_key(h))
        .unwrap_or(settled_before);
    let counted = db
        .read(move |c| super::store::counts_by_hour(c, missing_from, current + HOUR))
        .await?;
    let mut fresh: BTreeMap<i64, BTreeMap<Outcome, i64>> = BTreeMap::new();
    for h in (missing_from..=current).step_by(HOUR as usize) {
        fresh.insert(h, BTreeMap::new());
    }
    for (h, outcome, n) in counted {
        if let Some(o) = Outcome::parse(&outcome) {
            *fresh.entry(h).or_default().entry(o).or_default() += n;
        }
    }
    {
        let mut c = cache.0.lock().unwrap_or_else(|e| e.into_inner());
        for (h, counts) in &fresh {
            if *h < settled_before {
                c.insert(*h, counts.clone());
            }
        }
    }
    Ok((first..=current)
        .step_by(HOUR as usize)
        .map(|h| {
            let counts = fresh.get(&h).or_else(|| known.get(&h));
            Hour {
                start: h,
                counts: Outcome::ALL
                    .iter()
                    .map(|o| (*o, counts.and_then(|c| c.get(o)).copied().unwrap_or(0)))
                    .collect(),
            }
        })
        .collect())
}
