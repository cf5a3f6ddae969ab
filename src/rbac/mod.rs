//! Roles and permissions. This module holds the seeded system roles; the
//! compiled decision engine builds on the same tables.

pub mod engine;
pub mod glob;
pub mod patterns;
pub mod system_roles;

use crate::audit::Audit;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::identity::principals::PrincipalCache;
use crate::identity::Principal;

/// The permission patterns a principal holds through unscoped role
/// assignments, inheritance included (from the principal cache).
pub async fn patterns_of(
    principals: &PrincipalCache,
    db: &Db,
    audit: &Audit,
    principal: &Principal,
) -> Result<Vec<String>> {
    Ok(principals
        .get(db, audit, principal.kind, &principal.id)
        .await?
        .map(|s| s.patterns.clone())
        .unwrap_or_default())
}

/// `Ok` when the principal holds `permission`, otherwise `Forbidden`
/// naming the missing permission.
pub async fn require(
    principals: &PrincipalCache,
    db: &Db,
    audit: &Audit,
    principal: &Principal,
    permission: &str,
) -> Result<()> {
    let patterns = patterns_of(principals, db, audit, principal).await?;
    if patterns::any_grants(&patterns, permission) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "this requires the {permission} permission"
        )))
    }
}
