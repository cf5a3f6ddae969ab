//! `/api/v1/users/{id}/grants`: the clients a user allowed ("Connected
//! apps"), and revoking one (its refresh tokens die, the consent is
//! forgotten). The user themself, or a holder of `user:manage`.

use actix_web::{delete, get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::oauth::grants::GrantView;
use crate::rbac::Permission;
use crate::web::api::users::require_self_or_manage;
use crate::web::auth::Caller;
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub items: Vec<GrantView>,
}

/// A user's grants, most recently used first.
#[utoipa::path(operation_id = "grants.list", tag = "oauth",
    responses((status = 200, body = GrantList), (status = 404, body = Problem)))]
#[get("/users/{id}/grants")]
pub async fn list(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<GrantList>, ApiError> {
    let st = state::of(&req);
    require_self_or_manage(&st, &caller, &id).await?;
    crate::identity::users::get(&st.db, &id).await?;
    let grants = st.grants();
    Ok(web::Json(GrantList {
        items: grants.of_user(&id).await?,
    }))
}

/// Revoke a grant: its refresh tokens stop working and the next
/// authorization asks for consent again.
#[utoipa::path(operation_id = "grants.revoke", tag = "oauth",
    responses((status = 204), (status = 404, body = Problem)))]
#[delete("/users/{id}/grants/{grant_id}")]
pub async fn revoke(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let (id, grant_id) = path.into_inner();
    require_self_or_manage(&st, &caller, &id).await?;
    let grants = st.grants();
    grants.revoke(&caller.ctx, &id, &grant_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::UserManage, list))
        .service(needs(Permission::UserManage, revoke));
}
