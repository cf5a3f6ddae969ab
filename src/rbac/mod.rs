//! Roles and permissions. This module holds the seeded system roles; the
//! compiled decision engine builds on the same tables.

pub mod assignments;
pub mod engine;
pub mod glob;
pub mod patterns;
pub mod roles;
pub mod system_roles;
pub mod view;

use crate::audit::Audit;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::identity::{Principal, PrincipalKind};
use engine::{Decision, Subject};
use view::PolicyView;

pub fn subject_of(p: &Principal) -> Subject {
    Subject {
        kind: match p.kind {
            PrincipalKind::User => "user",
            PrincipalKind::Agent => "agent",
        },
        id: p.id.clone(),
    }
}

/// May `principal` do `permission` (on `resource`)? From the compiled view.
pub async fn check(
    policy: &PolicyView,
    db: &Db,
    audit: &Audit,
    subject: &Subject,
    permission: &str,
    resource: Option<(&str, &str)>,
) -> Result<Decision> {
    Ok(policy
        .get(db, audit)
        .await?
        .check(subject, permission, resource))
}

/// The permission patterns a principal holds without a resource scope.
pub async fn patterns_of(
    policy: &PolicyView,
    db: &Db,
    audit: &Audit,
    principal: &Principal,
) -> Result<Vec<String>> {
    let p = policy.get(db, audit).await?;
    Ok(p.effective_permissions(&subject_of(principal))
        .into_iter()
        .map(|(pattern, _)| pattern)
        .collect())
}

/// `Ok` when the principal holds `permission`, otherwise `Forbidden`
/// naming the missing permission.
pub async fn require(
    policy: &PolicyView,
    db: &Db,
    audit: &Audit,
    principal: &Principal,
    permission: &str,
) -> Result<()> {
    let d = check(policy, db, audit, &subject_of(principal), permission, None).await?;
    if d.allowed {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "this requires the {permission} permission"
        )))
    }
}
