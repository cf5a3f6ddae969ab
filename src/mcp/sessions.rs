//! Which principal an upstream session belongs to. The upstream sees only
//! the gateway, so it cannot tell callers apart: without this, anyone who
//! learned another caller's `Mcp-Session-Id` could use that session (its
//! event stream carries the server's messages to its owner). A session is
//! bound to the principal whose message opened it (the answer that named
//! it); one not seen before (after a restart) is bound to the first
//! principal that uses it. Kept in memory, bounded: the oldest bindings go
//! first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Sessions remembered at most.
pub const MAX_SESSIONS: usize = 100_000;

#[derive(Default)]
pub struct SessionOwners {
    inner: Mutex<Owners>,
}

#[derive(Default)]
struct Owners {
    by_session: HashMap<(String, String), String>,
    order: VecDeque<(String, String)>,
}

impl Owners {
    fn bind(&mut self, key: (String, String), principal: &str) {
        if self
            .by_session
            .insert(key.clone(), principal.to_string())
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_SESSIONS {
            if let Some(old) = self.order.pop_front() {
                self.by_session.remove(&old);
            }
        }
    }
}

fn key(server: &str, session: &str) -> (String, String) {
    (server.to_string(), session.to_string())
}

impl SessionOwners {
    /// Whether `principal` may use `session` of `server`: it is theirs, or
    /// nobody's yet (then it becomes theirs).
    pub fn claim(&self, server: &str, session: &str, principal: &str) -> bool {
        let mut o = self.inner.lock().expect("session owners");
        match o.by_session.get(&key(server, session)) {
            Some(owner) => owner == principal,
            None => {
                o.bind(key(server, session), principal);
                true
            }
        }
    }

    /// `session` of `server` was opened by `principal`.
    pub fn bind(&self, server: &str, session: &str, principal: &str) {
        self.inner
            .lock()
            .expect("session owners")
            .bind(key(server, session), principal);
    }

    /// The session ended.
    pub fn forget(&self, server: &str, session: &str) {
        let mut o = self.inner.lock().expect("session owners");
        let k = key(server, session);
        if o.by_session.remove(&k).is_some() {
            o.order.retain(|x| *x != k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_its_openers_alone() {
        let s = SessionOwners::default();
        s.bind("kb", "s1", "agent:a");
        assert!(s.claim("kb", "s1", "agent:a"));
        assert!(!s.claim("kb", "s1", "agent:b"));
        // The same id on another server is another session.
        assert!(s.claim("other", "s1", "agent:b"));
        // Unknown (after a restart): the first to use it has it.
        assert!(s.claim("kb", "s2", "agent:b"));
        assert!(!s.claim("kb", "s2", "agent:a"));
        s.forget("kb", "s1");
        assert!(s.claim("kb", "s1", "agent:b"));
    }
}
