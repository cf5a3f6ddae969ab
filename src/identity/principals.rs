//! An in-memory view of principals for the request path: enabled flag,
//! quarantine cut-off, roles and permission patterns, loaded from the
//! database on a miss.
//!
//! Entries are stale when the audit writer's change generation moved
//! (every change goes through an audited transaction) or after a short TTL
//! (changes made by another process, such as the CLI). So a role edit, a
//! disable or a quarantine is visible to the very next request.

use std::sync::Arc;
use std::time::Duration;

use super::PrincipalKind;
use crate::audit::Audit;
use crate::cache::GenerationCache;
use crate::db::{agents, roles, users, Db};
use crate::error::Result;

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct PrincipalState {
    pub kind: PrincipalKind,
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// Tokens issued before this time (ms) are void (quarantine).
    pub tokens_not_before: Option<i64>,
    /// Roles bound without a scope (for display; decisions come from the
    /// compiled policy).
    pub roles: Vec<String>,
}

/// Principal states by `type:id`.
#[derive(Clone)]
pub struct PrincipalCache {
    states: GenerationCache<PrincipalState>,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        PrincipalCache {
            states: GenerationCache::new(TTL, MAX_ENTRIES),
        }
    }
}

impl PrincipalCache {
    /// The principal's current state; `None` when it does not exist.
    pub async fn get(
        &self,
        db: &Db,
        audit: &Audit,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Option<Arc<PrincipalState>>> {
        let generation = audit.generation();
        let key = format!("{kind:?}:{id}");
        if let Some(state) = self.states.fresh(generation, &key) {
            return Ok(state);
        }
        let id = id.to_string();
        let state = db.read(move |c| load(c, kind, &id)).await?.map(Arc::new);
        self.states.put(generation, key, state.clone());
        Ok(state)
    }
}

fn load(c: &rusqlite::Connection, kind: PrincipalKind, id: &str) -> Result<Option<PrincipalState>> {
    Ok(match kind {
        PrincipalKind::Agent => match agents::by_id(c, id)? {
            None => None,
            Some(a) => Some(PrincipalState {
                kind,
                roles: roles::unscoped_roles_of_agent(c, id)?,
                tokens_not_before: crate::db::tokens::agent_token_state(c, id)?
                    .and_then(|(_, t)| t),
                id: a.id,
                name: a.name,
                enabled: a.enabled,
            }),
        },
        PrincipalKind::User => match users::by_id(c, id)? {
            None => None,
            Some(u) => Some(PrincipalState {
                kind,
                roles: roles::unscoped_roles_of_user(c, id)?,
                tokens_not_before: None,
                id: u.id,
                name: u.username,
                enabled: u.enabled,
            }),
        },
    })
}
