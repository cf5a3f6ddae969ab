//! `GET /api/v1/me`: the caller, its roles and effective permissions.

use actix_web::{get, web, HttpRequest};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::roles;
use crate::identity::{Principal, PrincipalKind};
use crate::rbac;
use crate::web::auth::Caller;
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub principal: Principal,
    /// Roles bound to the caller without a resource scope.
    pub roles: Vec<String>,
    /// Permission patterns those roles grant, inheritance included (with a
    /// token: those of its scope the caller holds).
    pub permissions: Vec<String>,
}

#[utoipa::path(
    tag = "identity",
    responses((status = 200, body = Me), (status = 401, body = Problem)),
    security(("session" = []), ("bearer" = []))
)]
#[get("/me")]
pub async fn me(req: HttpRequest, caller: Caller) -> Result<web::Json<Me>, ApiError> {
    let st = state::of(&req);
    let principal = caller.principal;
    let mut permissions = rbac::patterns_of(&st.db, &principal).await?;
    if let Some(scope) = &caller.scope {
        // A token grants only what it carries of what the caller holds.
        permissions = scope
            .iter()
            .filter(|s| rbac::patterns::any_grants(&permissions, s))
            .cloned()
            .collect();
    }
    let (id, kind) = (principal.id.clone(), principal.kind);
    let roles = st
        .db
        .read(move |c| match kind {
            PrincipalKind::User => roles::unscoped_roles_of_user(c, &id),
            PrincipalKind::Agent => roles::unscoped_roles_of_agent(c, &id),
        })
        .await?;
    Ok(web::Json(Me {
        principal,
        roles,
        permissions,
    }))
}
