//! Secrets a page shows exactly once, across a redirect.
//!
//! A form that creates a secret (an agent's API key) answers with a redirect
//! (POST → 303 → GET), so reloading the page never submits the form again
//! and never creates a second live key. The secret waits here, in memory,
//! for the GET that follows: bound to the session that created it, taken
//! (and zeroised) by the first read, and forgotten after a few minutes if
//! that read never comes. A restart forgets it too: the key still exists
//! and can be revoked, it just cannot be shown again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// How long a secret waits for its page.
const TTL: Duration = Duration::from_secs(300);
/// At most this many secrets wait at once (oldest dropped first).
const MAX_WAITING: usize = 1024;

/// A waiting secret: the secret, when it was put, and its place in line.
type Waiting = (Zeroizing<String>, Instant, u64);

#[derive(Clone, Default)]
pub struct ShowOnce {
    waiting: Arc<Mutex<(HashMap<String, Waiting>, u64)>>,
}

fn slot(session: &str, what: &str) -> String {
    format!("{session}\u{0}{what}")
}

impl ShowOnce {
    /// Keeps `secret` for the next [`Self::take`] by the same session of
    /// the same thing (`what`, e.g. the key id).
    pub fn put(&self, session: &str, what: &str, secret: String) {
        let mut guard = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let (w, next) = &mut *guard;
        let now = Instant::now();
        w.retain(|_, (_, at, _)| now.duration_since(*at) < TTL);
        if w.len() >= MAX_WAITING {
            let oldest = w
                .iter()
                .min_by_key(|(_, (_, _, n))| *n)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                w.remove(&k);
            }
        }
        *next += 1;
        w.insert(slot(session, what), (Zeroizing::new(secret), now, *next));
    }

    /// The secret, once: a second call (a reload) gets `None`.
    pub fn take(&self, session: &str, what: &str) -> Option<Zeroizing<String>> {
        let mut guard = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let (secret, at, _) = guard.0.remove(&slot(session, what))?;
        (at.elapsed() < TTL).then_some(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_shown_once_to_its_session() {
        let s = ShowOnce::default();
        s.put("sess-a", "key-1", "agk_1_secret".into());
        assert!(s.take("sess-b", "key-1").is_none(), "another session");
        assert!(s.take("sess-a", "key-2").is_none(), "another key");
        assert_eq!(s.take("sess-a", "key-1").unwrap().as_str(), "agk_1_secret");
        assert!(s.take("sess-a", "key-1").is_none(), "a reload");
    }

    #[test]
    fn the_store_stays_bounded() {
        let s = ShowOnce::default();
        for i in 0..MAX_WAITING + 10 {
            s.put("sess", &i.to_string(), "x".into());
        }
        assert_eq!(s.waiting.lock().unwrap().0.len(), MAX_WAITING);
        assert!(s.take("sess", "0").is_none(), "the oldest went first");
        assert!(s.take("sess", &(MAX_WAITING + 9).to_string()).is_some());
    }
}
