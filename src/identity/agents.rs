//! Agents: service accounts that call the API with keys and tokens.

use crate::audit::{Audit, Context, Outcome};
use crate::db::{self, agents, api_keys, Db};
use crate::error::{Error, FieldErrors, Result};

pub use agents::AgentRow;

/// The agent types of the seed design; any other lower_snake name is
/// accepted too.
pub const KNOWN_TYPES: &[&str] = &[
    "orchestrator",
    "planner",
    "validator",
    "programmer",
    "documentation",
    "knowledge_base",
];
pub const MAX_DESCRIPTION: usize = 1024;

/// lower_snake: a lower-case letter, then lower-case letters, digits and
/// `_`, at most 64 characters.
pub fn validate_agent_type(t: &str) -> Result<(), String> {
    if crate::names::is_lower_snake(t) {
        Ok(())
    } else {
        Err(format!(
            "must be lower_snake (a-z, 0-9, _; starting with a letter; at most 64), e.g. {}",
            KNOWN_TYPES.join(", ")
        ))
    }
}

fn check(name: Option<&str>, agent_type: Option<&str>, description: Option<&str>) -> FieldErrors {
    let mut errors = FieldErrors::new();
    if let Some(n) = name {
        if let Err(m) = super::validate_username(n) {
            errors.insert("name".into(), m);
        }
    }
    if let Some(t) = agent_type {
        if let Err(m) = validate_agent_type(t) {
            errors.insert("agent_type".into(), m);
        }
    }
    if let Some(d) = description {
        if d.chars().count() > MAX_DESCRIPTION {
            errors.insert(
                "description".into(),
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        }
    }
    errors
}

fn conflict(name: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| {
        if db::is_unique_violation(&e) {
            Error::Conflict(format!("an agent named {name} already exists"))
        } else {
            e.into()
        }
    }
}

#[derive(Debug)]
pub struct NewAgent {
    pub name: String,
    pub agent_type: String,
    pub description: String,
    pub enabled: bool,
}

pub async fn create(audit: &Audit, ctx: &Context, new: NewAgent) -> Result<AgentRow> {
    let now = db::now_ms();
    let row = AgentRow {
        id: db::new_id(),
        name: new.name,
        agent_type: new.agent_type,
        description: new.description,
        enabled: new.enabled,
        created_at: now,
        updated_at: now,
        quarantined_at: None,
    };
    let event = ctx
        .event("agent.create", Outcome::Success)
        .target(crate::identity::PrincipalKind::Agent.as_str(), &row.id)
        .detail("name", &row.name)
        .detail("agent_type", &row.agent_type);
    let errors = check(
        Some(&row.name),
        Some(&row.agent_type),
        Some(&row.description),
    );
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    audit
        .apply(event, move |c| {
            agents::insert(c, &row).map_err(conflict(&row.name))?;
            Ok(row)
        })
        .await
}

pub async fn get(db: &Db, id: &str) -> Result<AgentRow> {
    let id = id.to_string();
    db.read(move |c| agents::by_id(c, &id)?.ok_or_else(|| Error::NotFound(format!("agent {id}"))))
        .await
}

/// A page of those matching `q` (case-insensitive, part of a name or
/// type, description, e-mail), and how many match in all.
pub async fn search(
    db: &Db,
    q: &str,
    after: Option<String>,
    limit: u32,
) -> Result<(Vec<AgentRow>, i64)> {
    let needle = q.trim().to_lowercase();
    db.read(move |c| agents::matching(c, &needle, after.as_deref(), limit))
        .await
}

pub async fn list(db: &Db, after: Option<String>, limit: u32) -> Result<Vec<AgentRow>> {
    db.read(move |c| agents::list(c, after.as_deref(), limit))
        .await
}

#[derive(Debug, Default)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub agent_type: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

pub async fn update(
    audit: &Audit,
    ctx: &Context,
    id: &str,
    changes: AgentChanges,
) -> Result<AgentRow> {
    let mut event = ctx
        .event("agent.update", Outcome::Success)
        .target(crate::identity::PrincipalKind::Agent.as_str(), id);
    for (k, v) in [
        ("name", &changes.name),
        ("agent_type", &changes.agent_type),
        ("description", &changes.description),
    ] {
        if let Some(v) = v {
            event = event.detail(k, v);
        }
    }
    if let Some(e) = changes.enabled {
        event = event.detail("enabled", e);
    }
    let errors = check(
        changes.name.as_deref(),
        changes.agent_type.as_deref(),
        changes.description.as_deref(),
    );
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            let mut a =
                agents::by_id(c, &id)?.ok_or_else(|| Error::NotFound(format!("agent {id}")))?;
            if let Some(n) = changes.name {
                a.name = n;
            }
            if let Some(t) = changes.agent_type {
                a.agent_type = t;
            }
            if let Some(d) = changes.description {
                a.description = d;
            }
            let now = db::now_ms();
            if let Some(e) = changes.enabled {
                set_enabled(c, &mut a, e, now)?;
            }
            a.updated_at = now;
            agents::update(c, &a).map_err(conflict(&a.name))?;
            Ok(a)
        })
        .await
}

pub async fn delete(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("agent.delete", Outcome::Success)
        .target(crate::identity::PrincipalKind::Agent.as_str(), id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            if agents::delete(c, &id)? {
                Ok(())
            } else {
                Err(Error::NotFound(format!("agent {id}")))
            }
        })
        .await
}

/// Containment: disables the agent, revokes every one of its keys and voids
/// every token issued to it so far, in one audited change. Reversible: re-enable the agent and issue new keys.
pub async fn quarantine(
    audit: &Audit,
    ctx: &Context,
    id: &str,
    reason: Option<String>,
) -> Result<usize> {
    let mut event = ctx
        .event("agent.quarantine", Outcome::Success)
        .target(crate::identity::PrincipalKind::Agent.as_str(), id);
    if let Some(r) = &reason {
        event = event.reason(r.clone());
    }
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            let mut a =
                agents::by_id(c, &id)?.ok_or_else(|| Error::NotFound(format!("agent {id}")))?;
            let now = db::now_ms();
            set_enabled(c, &mut a, false, now)?;
            a.quarantined_at = Some(now);
            a.updated_at = now;
            agents::update(c, &a)?;
            api_keys::revoke_all_of_agent(c, &id, now)
        })
        .await
}

/// Disabling voids every token issued so far (the "tokens valid after"
/// instant), so enabling the agent again does not bring old tokens back;
/// enabling ends a quarantine (its keys stay revoked).
fn set_enabled(c: &rusqlite::Connection, a: &mut AgentRow, enabled: bool, now: i64) -> Result<()> {
    if a.enabled && !enabled {
        crate::db::tokens::void_agent_tokens(c, &a.id, now)?;
    }
    if enabled {
        a.quarantined_at = None;
    }
    a.enabled = enabled;
    Ok(())
}
