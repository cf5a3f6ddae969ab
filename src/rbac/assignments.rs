//! Role assignments: a role bound to a user or an agent, optionally scoped
//! to resources of one type whose id matches a glob.

use crate::audit::{Audit, Context, Outcome};
use crate::db::{self, agents, roles as repo, users, Db};
use crate::error::{Error, FieldErrors, Result};
use crate::identity::PrincipalKind;

pub use repo::AssignmentRow;

#[derive(Debug, Clone)]
pub struct NewAssignment {
    /// `user` or `agent`.
    pub subject_type: String,
    pub subject_id: String,
    pub role: String,
    pub scope: Option<(String, String)>,
}

pub(crate) fn valid_glob(p: &str) -> bool {
    (1..=128).contains(&p.len())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:*?/".contains(c))
}

pub async fn create(audit: &Audit, ctx: &Context, new: NewAssignment) -> Result<AssignmentRow> {
    let id = db::new_id();
    let mut event = ctx
        .event("role_assignment.create", Outcome::Success)
        .target(&new.subject_type, &new.subject_id)
        .detail("role", &new.role)
        .detail("assignment_id", &id);
    if let Some((t, p)) = &new.scope {
        event = event.detail(
            "scope",
            serde_json::json!({"resource_type": t, "resource_pattern": p}),
        );
    }
    let mut errors = FieldErrors::new();
    let kind = PrincipalKind::parse(&new.subject_type);
    if kind.is_none() {
        errors.insert(
            "subject.type".into(),
            format!("must be {}", PrincipalKind::choices()),
        );
    }
    if let Some((t, p)) = &new.scope {
        if !crate::names::is_lower_snake(t) {
            errors.insert(
                "scope.resource_type".into(),
                "must be lower_snake, at most 64 characters".into(),
            );
        }
        if !valid_glob(p) {
            errors.insert(
                "scope.resource_pattern".into(),
                "must be 1-128 characters of letters, digits, - _ . : / and the wildcards * ?"
                    .into(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    audit
        .apply(event, move |c| {
            let is_user = kind == Some(PrincipalKind::User);
            let exists = if is_user {
                users::by_id(c, &new.subject_id)?.is_some()
            } else {
                agents::by_id(c, &new.subject_id)?.is_some()
            };
            if !exists {
                return Err(Error::field(
                    "subject.id",
                    format!("no {} {}", new.subject_type, new.subject_id),
                ));
            }
            if repo::get_role(c, &new.role)?.is_none() {
                return Err(Error::field("role", format!("no role {}", new.role)));
            }
            let (user_id, agent_id) = if is_user {
                (Some(new.subject_id.clone()), None)
            } else {
                (None, Some(new.subject_id.clone()))
            };
            let (scope_type, scope_pattern) = new.scope.clone().unzip();
            let row = AssignmentRow {
                id,
                role: new.role.clone(),
                user_id,
                agent_id,
                scope_type,
                scope_pattern,
                created_at: db::now_ms(),
            };
            repo::insert_assignment(c, &row).map_err(|e| {
                if db::is_unique_violation(&e) {
                    Error::Conflict(format!(
                        "{} {} already holds {} with this scope",
                        new.subject_type, new.subject_id, new.role
                    ))
                } else {
                    e.into()
                }
            })?;
            Ok(row)
        })
        .await
}

pub async fn list(
    db: &Db,
    role: Option<String>,
    subject: Option<(PrincipalKind, String)>,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<AssignmentRow>> {
    db.read(move |c| {
        let ids = match &subject {
            Some((PrincipalKind::User, id)) => (Some(id.as_str()), None),
            Some((PrincipalKind::Agent, id)) => (None, Some(id.as_str())),
            None => (None, None),
        };
        repo::list_assignments(c, role.as_deref(), ids, after.as_deref(), limit)
    })
    .await
}

pub async fn delete(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("role_assignment.delete", Outcome::Success)
        .detail("assignment_id", id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            if repo::delete_assignment(c, &id)? {
                Ok(())
            } else {
                Err(Error::NotFound(format!("role assignment {id}")))
            }
        })
        .await
}
