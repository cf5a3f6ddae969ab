//! Caches that keep token verification off the database and off the CPU on
//! the request path: tokens already verified (keyed by the SHA-256 of the
//! expected audience and the token), and the set of revoked token ids,
//! reloaded only when the audit writer's change generation moves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use super::jwt::Claims;
use crate::audit::Audit;
use crate::db::Db;
use crate::error::Result;

const MAX_VERIFIED: usize = 100_000;

#[derive(Clone, Default)]
pub struct TokenCache {
    verified: Arc<RwLock<HashMap<[u8; 32], Arc<Claims>>>>,
    /// When each token's use was last recorded in the audit log.
    audited: Arc<RwLock<HashMap<String, i64>>>,
    revoked: Arc<RwLock<Revoked>>,
}

/// What is refused, as of an audit generation: revoked token ids, and the
/// cut-off instants (ms) of disabled OAuth clients.
#[derive(Default)]
struct Revoked {
    generation: u64,
    ids: HashSet<String>,
    client_cutoffs: HashMap<String, i64>,
}

impl Revoked {
    fn refuses(&self, claims: &Claims) -> bool {
        self.ids.contains(&claims.jti)
            || self
                .client_cutoffs
                .get(&claims.client_id)
                // `iat` has whole seconds: a token of the cut-off's second
                // may predate it.
                .is_some_and(|cut| claims.iat * 1000 <= *cut)
    }
}

pub fn cache_key(audience: &str, token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(audience.as_bytes());
    h.update([0]);
    h.update(token.as_bytes());
    h.finalize().into()
}

impl TokenCache {
    pub fn verified(&self, key: &[u8; 32]) -> Option<Arc<Claims>> {
        self.verified.read().ok()?.get(key).cloned()
    }

    pub fn remember(&self, key: [u8; 32], claims: Arc<Claims>) {
        if let Ok(mut map) = self.verified.write() {
            if map.len() >= MAX_VERIFIED {
                let now = super::jwt::now_secs();
                map.retain(|_, c| c.exp > now);
                if map.len() >= MAX_VERIFIED {
                    map.clear();
                }
            }
            map.insert(key, claims);
        }
    }

    /// True at a token's first use in each minute (the use is then
    /// recorded in the audit log).
    pub fn due_for_audit(&self, jti: &str, now_ms: i64) -> bool {
        let Ok(mut m) = self.audited.write() else {
            return false;
        };
        if m.len() >= MAX_VERIFIED {
            m.clear();
        }
        match m.get(jti) {
            Some(t) if now_ms - t < 60_000 => false,
            _ => {
                m.insert(jti.to_string(), now_ms);
                true
            }
        }
    }

    /// Whether the token was revoked, or issued to an OAuth client before
    /// it was disabled; re-read after any change.
    pub async fn is_revoked(&self, db: &Db, audit: &Audit, claims: &Claims) -> Result<bool> {
        let generation = audit.generation();
        if let Ok(r) = self.revoked.read() {
            if r.generation == generation {
                return Ok(r.refuses(claims));
            }
        }
        let (ids, cutoffs) = db
            .read(|c| {
                Ok((
                    crate::db::tokens::revoked_ids(c, crate::db::now_ms())?,
                    crate::db::oauth_clients::cutoffs(c)?,
                ))
            })
            .await?;
        let fresh = Revoked {
            generation,
            ids,
            client_cutoffs: cutoffs.into_iter().collect(),
        };
        let hit = fresh.refuses(claims);
        if let Ok(mut r) = self.revoked.write() {
            *r = fresh;
        }
        Ok(hit)
    }
}
