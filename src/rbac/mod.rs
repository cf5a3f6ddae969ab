//! Roles and permissions: the seeded system roles, the compiled decision
//! engine built from the same tables, and the one decision path
//! ([`decide`]) every caller goes through.

pub mod assignments;
pub mod decide;
pub mod engine;
pub mod glob;
pub mod patterns;
pub mod permissions;
pub mod roles;
pub mod system_roles;
pub mod view;

use crate::audit::Audit;
use crate::db::Db;
use crate::error::Result;
use crate::identity::Principal;
use engine::Subject;
use view::PolicyView;

pub use permissions::Permission;

pub fn subject_of(p: &Principal) -> Subject {
    Subject {
        kind: p.kind,
        id: p.id.clone(),
    }
}

/// The permission patterns a token for `principal` may carry: those it
/// holds anywhere, on a scoped assignment too (see
/// `Policy::permissions_held_anywhere`).
pub async fn token_patterns_of(
    policy: &PolicyView,
    db: &Db,
    audit: &Audit,
    principal: &Principal,
) -> Result<Vec<String>> {
    let p = policy.get(db, audit).await?;
    Ok(p.permissions_held_anywhere(&subject_of(principal)))
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
