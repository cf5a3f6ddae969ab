//! The gateway's call limits (SPEC §14): calls per minute per principal
//! per server, and per principal per tool, as token buckets in memory.
//!
//! A bucket holds up to `per_minute` calls and refills at `per_minute / 60`
//! a second, so a quiet principal may burst up to its minute's worth and a
//! busy one is held to the rate. Buckets are not governor's: each server
//! and tool has its own quota, which an admin changes at run time, and a
//! call must be taken from both of its buckets or from neither.
//!
//! Limits live in memory: a restart starts every bucket full (documented).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle ones (full again) are dropped.
const PRUNE_AT: usize = 100_000;

/// Whose calls a bucket counts: a principal (`type:id`), a server, and a
/// tool when the bucket is the tool's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketKey {
    pub principal: String,
    pub server: String,
    pub tool: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    per_minute: u32,
}

impl Bucket {
    fn refilled(self, per_minute: u32, now: Instant) -> Bucket {
        let rate = f64::from(per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        Bucket {
            tokens: (self.tokens + elapsed * rate).min(f64::from(per_minute)),
            at: now,
            per_minute,
        }
    }

    fn full(self) -> bool {
        self.tokens >= f64::from(self.per_minute)
    }
}

/// The refusal: a limit is reached; retry in this many seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_seconds: u64,
    /// Which limit: `calls_per_minute` or `tools.<T>.calls_per_minute`.
    pub limit: String,
}

#[derive(Default)]
pub struct CallLimits {
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

impl CallLimits {
    /// Takes one call from each of `limits` (bucket, calls per minute), or
    /// from none of them when any is empty.
    pub fn take(&self, limits: &[(BucketKey, u32)], now: Instant) -> Result<(), Limited> {
        if limits.is_empty() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("limit buckets");
        let mut refused: Option<Limited> = None;
        let mut refilled = Vec::with_capacity(limits.len());
        for (key, per_minute) in limits {
            let b = buckets
                .get(key)
                .copied()
                .unwrap_or(Bucket {
                    tokens: f64::from(*per_minute),
                    at: now,
                    per_minute: *per_minute,
                })
                .refilled(*per_minute, now);
            if b.tokens < 1.0 {
                let rate = f64::from(*per_minute) / 60.0;
                let wait = ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64;
                if refused
                    .as_ref()
                    .is_none_or(|r| wait > r.retry_after_seconds)
                {
                    refused = Some(Limited {
                        retry_after_seconds: wait,
                        limit: match &key.tool {
                            Some(t) => format!("tools.{t}.calls_per_minute"),
                            None => "calls_per_minute".into(),
                        },
                    });
                }
            }
            refilled.push((key.clone(), b));
        }
        let taken = refused.is_none();
        for (key, mut b) in refilled {
            if taken {
                b.tokens -= 1.0;
            }
            buckets.insert(key, b);
        }
        if buckets.len() > PRUNE_AT {
            buckets.retain(|_, b| !b.refilled(b.per_minute, now).full());
        }
        match refused {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(tool: Option<&str>) -> BucketKey {
        BucketKey {
            principal: "agent:a1".into(),
            server: "kb".into(),
            tool: tool.map(str::to_string),
        }
    }

    #[test]
    fn a_bucket_allows_its_minute_then_refuses_until_it_refills() {
        let limits = CallLimits::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            limits.take(&[(key(None), 3)], t0).unwrap();
        }
        let refused = limits.take(&[(key(None), 3)], t0).unwrap_err();
        assert_eq!(refused.retry_after_seconds, 20);
        assert_eq!(refused.limit, "calls_per_minute");
        // A third of a minute later one call is back.
        let t1 = t0 + Duration::from_secs(20);
        limits.take(&[(key(None), 3)], t1).unwrap();
        assert!(limits.take(&[(key(None), 3)], t1).is_err());
    }

    #[test]
    fn a_call_is_taken_from_every_bucket_or_from_none() {
        let limits = CallLimits::default();
        let t0 = Instant::now();
        let both = [(key(None), 10), (key(Some("search")), 1)];
        limits.take(&both, t0).unwrap();
        let refused = limits.take(&both, t0).unwrap_err();
        assert_eq!(refused.limit, "tools.search.calls_per_minute");
        assert_eq!(refused.retry_after_seconds, 60);
        // The refused call did not use the server's budget: nine are left.
        for _ in 0..9 {
            limits.take(&[(key(None), 10)], t0).unwrap();
        }
        assert!(limits.take(&[(key(None), 10)], t0).is_err());
    }

    #[test]
    fn principals_and_tools_have_their_own_buckets() {
        let limits = CallLimits::default();
        let t0 = Instant::now();
        limits.take(&[(key(Some("a")), 1)], t0).unwrap();
        limits.take(&[(key(Some("b")), 1)], t0).unwrap();
        let mut other = key(Some("a"));
        other.principal = "user:u1".into();
        limits.take(&[(other, 1)], t0).unwrap();
        assert!(limits.take(&[(key(Some("a")), 1)], t0).is_err());
    }

    #[test]
    fn a_lowered_limit_applies_at_once() {
        let limits = CallLimits::default();
        let t0 = Instant::now();
        limits.take(&[(key(None), 100)], t0).unwrap();
        // 99 tokens left, capped to the new capacity of 2.
        limits.take(&[(key(None), 2)], t0).unwrap();
        limits.take(&[(key(None), 2)], t0).unwrap();
        assert!(limits.take(&[(key(None), 2)], t0).is_err());
    }
}
