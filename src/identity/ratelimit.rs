//! Per-client-IP rate limiting for the unauthenticated endpoints that cost
//! the most: login, the OAuth endpoints, and refused bearer credentials on
//! the API.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone)]
pub struct ClientLimiter {
    inner: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl ClientLimiter {
    /// `per_minute` requests a minute per IP, as a burst of the same size
    /// that refills evenly.
    pub fn per_minute(per_minute: u32) -> ClientLimiter {
        let n = NonZeroU32::new(per_minute.max(1)).expect("max(1) is non-zero");
        ClientLimiter {
            inner: Arc::new(RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// `Ok` when `ip` may go on; otherwise the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.inner.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose buckets are full again (bounded memory).
    pub fn prune(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}
