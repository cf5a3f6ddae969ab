//! What the approvals keep in memory, one per process: the signal that
//! wakes held calls when a request is decided or expires, the rules as of
//! the last audited change (a gateway call reads no table for them), and
//! the lock that makes ask-or-join one step.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::db::approvals::RuleRow;

/// Shared by every [`super::requests::Approvals`] of the process.
pub struct Live {
    /// Bumped at every decision and expiry: held calls re-read their
    /// request then.
    changed: watch::Sender<u64>,
    /// Rules by name, as of an audit generation.
    rules: Mutex<(u64, Arc<Vec<RuleRow>>)>,
    /// Held while a covered call is matched against the stored requests
    /// and a new one written: two identical calls make one request.
    pub(super) asking: tokio::sync::Mutex<()>,
    /// Set when the appliance stops: held calls end at once (their
    /// requests stay, for the clients' retries after the restart) rather
    /// than hold the shutdown.
    closing: std::sync::atomic::AtomicBool,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            changed: watch::Sender::new(0),
            rules: Mutex::new((u64::MAX, Arc::new(Vec::new()))),
            asking: tokio::sync::Mutex::new(()),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Live {
    /// Wakes every held call (they look at their own request).
    pub fn wake(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Ends every held call's wait (the appliance is stopping).
    pub fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A receiver that sees the next [`Self::wake`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The rules cached at `generation`, if still current.
    pub(super) fn rules_at(&self, generation: u64) -> Option<Arc<Vec<RuleRow>>> {
        let cached = self.rules.lock().expect("approval rules");
        (cached.0 == generation).then(|| cached.1.clone())
    }

    pub(super) fn keep_rules(&self, generation: u64, rules: Vec<RuleRow>) -> Arc<Vec<RuleRow>> {
        let rules = Arc::new(rules);
        *self.rules.lock().expect("approval rules") = (generation, rules.clone());
        rules
    }
}
