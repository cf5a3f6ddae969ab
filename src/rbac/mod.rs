//! Roles and permissions. This module holds the seeded system roles; the
//! compiled decision engine builds on the same tables.

pub mod patterns;
pub mod system_roles;

use crate::db::{roles, Db};
use crate::error::{Error, Result};
use crate::identity::{Principal, PrincipalKind};

/// The permission patterns a principal holds through unscoped role
/// assignments, inheritance included.
pub async fn patterns_of(db: &Db, principal: &Principal) -> Result<Vec<String>> {
    let (id, kind) = (principal.id.clone(), principal.kind);
    db.read(move |c| match kind {
        PrincipalKind::User => roles::effective_patterns_of_user(c, &id),
        PrincipalKind::Agent => roles::effective_patterns_of_agent(c, &id),
    })
    .await
}

/// `Ok` when the principal holds `permission`, otherwise `Forbidden`
/// naming the missing permission.
pub async fn require(db: &Db, principal: &Principal, permission: &str) -> Result<()> {
    let patterns = patterns_of(db, principal).await?;
    if patterns::any_grants(&patterns, permission) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "this requires the {permission} permission"
        )))
    }
}
