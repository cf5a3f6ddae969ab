//! `/api/v1/oauth-clients`: the clients that sign users in, however they
//! were registered (admin, metadata document, dynamic): how each came,
//! when it was last used, its grants; enable, disable, delete.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};

use crate::oauth::clients::{ClientChanges, ClientSpec, ClientView, NewClient};
use crate::rbac::Permission;
use crate::web::auth::{Guarded, OAuthClientManage};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// Every client, oldest first.
#[utoipa::path(operation_id = "oauth_clients.list", tag = "oauth", params(PageParams),
    responses((status = 200, body = Page<ClientView>), (status = 400, body = Problem)))]
#[get("/oauth-clients")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<OAuthClientManage>,
    q: Result<web::Query<PageParams>, actix_web::Error>,
) -> Result<web::Json<Page<ClientView>>, ApiError> {
    let st = state::of(&req);
    let page = q?.resolve()?;
    let rows = st
        .oauth_clients
        .list(page.after.clone(), page.limit + 1)
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |c| c.client_id.clone(),
        |c| c,
    )))
}

/// Register a client: public (PKCE only) or confidential (its secret is
/// in this answer, once).
#[utoipa::path(operation_id = "oauth_clients.create", tag = "oauth", request_body = ClientSpec,
    responses((status = 201, body = NewClient), (status = 422, body = Problem)))]
#[post("/oauth-clients")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<OAuthClientManage>,
    body: Body<ClientSpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let new = st
        .oauth_clients
        .create(&caller.ctx, body?.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(new))
}

#[utoipa::path(operation_id = "oauth_clients.get", tag = "oauth",
    responses((status = 200, body = ClientView), (status = 404, body = Problem)))]
#[get("/oauth-clients/{id}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<OAuthClientManage>,
    id: web::Path<String>,
) -> Result<web::Json<ClientView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(st.oauth_clients.get(&id).await?))
}

/// Rename, change redirect URIs, enable or disable (disabling revokes the
/// client's refresh tokens and voids its access tokens, for good).
#[utoipa::path(operation_id = "oauth_clients.update", tag = "oauth", request_body = ClientChanges,
    responses((status = 200, body = ClientView), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[patch("/oauth-clients/{id}")]
pub async fn update(
    req: HttpRequest,
    caller: Guarded<OAuthClientManage>,
    id: web::Path<String>,
    body: Body<ClientChanges>,
) -> Result<web::Json<ClientView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(
        st.oauth_clients
            .update(&caller.ctx, &id, body?.into_inner())
            .await?,
    ))
}

/// Delete a client with its grants and refresh tokens.
#[utoipa::path(operation_id = "oauth_clients.remove", tag = "oauth",
    responses((status = 204), (status = 404, body = Problem)))]
#[delete("/oauth-clients/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<OAuthClientManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    st.oauth_clients.delete(&caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::OAuthClientManage, list))
        .service(needs(Permission::OAuthClientManage, create))
        .service(needs(Permission::OAuthClientManage, get))
        .service(needs(Permission::OAuthClientManage, update))
        .service(needs(Permission::OAuthClientManage, remove));
}
