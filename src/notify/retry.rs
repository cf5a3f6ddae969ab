//! How delivery attempts are spaced and bounded, from `[alerting]`.

use std::time::Duration;

use rand::Rng;

use crate::config::AlertingConfig;

/// How attempts are spaced and bounded.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub concurrency: usize,
    pub max_attempts: i64,
    pub initial_ms: u64,
    pub max_ms: u64,
    pub timeout: Duration,
}

impl From<&AlertingConfig> for RetryPolicy {
    fn from(c: &AlertingConfig) -> Self {
        RetryPolicy {
            concurrency: c.delivery_concurrency as usize,
            max_attempts: i64::from(c.delivery_max_attempts),
            initial_ms: c.retry_initial_ms,
            max_ms: c.retry_max_seconds * 1000,
            timeout: Duration::from_millis(c.delivery_timeout_ms),
        }
    }
}

impl RetryPolicy {
    /// Wait after `attempts` failed attempts: initial × 2^(attempts-1),
    /// capped, then jittered to between half and all of it, so receivers
    /// coming back are not hit by every retry at the same instant.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        let exp = attempts.clamp(1, 40) as u32 - 1;
        let base = self
            .initial_ms
            .saturating_mul(1u64 << exp.min(40))
            .min(self.max_ms.max(self.initial_ms));
        let jittered = base / 2 + rand::rng().random_range(0..=base / 2);
        jittered as i64
    }
}
