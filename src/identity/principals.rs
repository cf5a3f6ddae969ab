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
    /// Tokens issued before this time (ms) are void (set by a disable or a
    /// quarantine, kept when the principal is enabled again).
    pub tokens_not_before: Option<i64>,
    /// When an agent was quarantined (it is then disabled too).
    pub quarantined_at: Option<i64>,
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

impl PrincipalState {
    /// Why no decision may allow this principal anything, if it is
    /// contained: the reason every refusal about it gives.
    pub fn contained(&self) -> Option<&'static str> {
        match (self.enabled, self.quarantined_at) {
            (true, _) => None,
            (false, Some(_)) => Some("subject is disabled (quarantined)"),
            (false, None) => Some("subject is disabled"),
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

/// The principal of this kind whose id or name (ignoring case) is `key`,
/// as `(id, name)`: pages let people type a name where an id is expected.
pub async fn find(db: &Db, kind: PrincipalKind, key: &str) -> Result<Option<(String, String)>> {
    let key = key.to_string();
    db.read(move |c| {
        Ok(match kind {
            PrincipalKind::Agent => match agents::by_id(c, &key)? {
                Some(a) => Some(a),
                None => agents::by_name(c, &key)?,
            }
            .map(|a| (a.id, a.name)),
            PrincipalKind::User => match users::by_id(c, &key)? {
                Some(u) => Some(u),
                None => users::by_username(c, &key)?,
            }
            .map(|u| (u.id, u.username)),
        })
    })
    .await
}

/// Every agent's and user's name by id, read once per page: pages show
/// and take names, not ids.
#[derive(Default)]
pub struct Names {
    agents: Vec<(String, String)>,
    users: Vec<(String, String)>,
    by_id: std::collections::HashMap<String, usize>,
}

impl Names {
    pub async fn load(db: &Db) -> Result<Names> {
        let (agents, users) = db
            .read(|c| Ok((agents::all_names(c)?, users::all_names(c)?)))
            .await?;
        let mut by_id = std::collections::HashMap::new();
        for (k, (id, _)) in agents.iter().enumerate() {
            by_id.insert(format!("agent:{id}"), k);
        }
        for (k, (id, _)) in users.iter().enumerate() {
            by_id.insert(format!("user:{id}"), k);
        }
        Ok(Names {
            agents,
            users,
            by_id,
        })
    }

    /// The name of the principal `kind` `id`, if it (still) exists.
    pub fn of(&self, kind: PrincipalKind, id: &str) -> Option<&str> {
        let list = match kind {
            PrincipalKind::Agent => &self.agents,
            PrincipalKind::User => &self.users,
        };
        let k = *self.by_id.get(&format!("{kind}:{id}"))?;
        list.get(k).map(|(_, n)| n.as_str())
    }

    /// The name of the agent or user `id` (ids are unique across both).
    pub fn of_either(&self, id: &str) -> Option<&str> {
        self.of(PrincipalKind::Agent, id)
            .or_else(|| self.of(PrincipalKind::User, id))
    }

    /// Names of every agent, in order (for a picker).
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.agents.iter().map(|(_, n)| n.as_str())
    }

    /// Names of every user, in order (for a picker).
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(_, n)| n.as_str())
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
                quarantined_at: a.quarantined_at,
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
                tokens_not_before: crate::db::tokens::user_tokens_not_before(c, id)?,
                quarantined_at: None,
                id: u.id,
                name: u.username,
                enabled: u.enabled,
            }),
        },
    })
}
