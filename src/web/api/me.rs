//! `GET /api/v1/me`: the caller, its roles and effective permissions.

use actix_web::{get, web, HttpRequest};
use serde::Serialize;
use utoipa::ToSchema;

use crate::identity::Principal;
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
    operation_id = "me.me",
    tag = "identity",
    responses((status = 200, body = Me), (status = 401, body = Problem)),
    security(("session" = []), ("bearer" = []))
)]
#[get("/me")]
pub async fn me(req: HttpRequest, caller: Caller) -> Result<web::Json<Me>, ApiError> {
    let st = state::of(&req);
    let principal = caller.principal;
    let state = st
        .principals
        .get(&st.db, &st.audit, principal.kind, &principal.id)
        .await?;
    let roles = state.map(|s| s.roles.clone()).unwrap_or_default();
    let mut permissions = rbac::patterns_of(&st.policy, &st.db, &st.audit, &principal).await?;
    if let Some(scope) = &caller.scope {
        // A token grants only what it carries of what the caller holds.
        permissions = scope
            .iter()
            .filter(|s| rbac::patterns::any_grants(&permissions, s))
            .cloned()
            .collect();
    }
    Ok(web::Json(Me {
        principal,
        roles,
        permissions,
    }))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(me);
}
