//! `/api/v1/mcp-servers`: MCP servers as registered resources, and the
//! RFC 9728 protected resource metadata of each (also served at
//! `/.well-known/oauth-protected-resource/mcp/{name}` for proxied ones).

use actix_web::http::header;
use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};

use crate::mcp::{McpServerSpec, McpServerView, ResourceMetadata};
use crate::rbac::Permission;
use crate::web::auth::{Guarded, McpManage};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// Every registered MCP server, by name.
#[utoipa::path(operation_id = "mcp_servers.list", tag = "mcp", params(PageParams),
    responses((status = 200, body = Page<McpServerView>), (status = 400, body = Problem)))]
#[get("/mcp-servers")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<McpManage>,
    q: Result<web::Query<PageParams>, actix_web::Error>,
) -> Result<web::Json<Page<McpServerView>>, ApiError> {
    let st = state::of(&req);
    let page = q?.resolve()?;
    let rows = st
        .mcp_servers
        .list(page.after.clone(), page.limit + 1)
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |r| r.name.clone(),
        |r| st.mcp_servers.view(r),
    )))
}

/// Register an MCP server: a direct one (`uri`) or one agentry proxies
/// (`upstream_url`).
#[utoipa::path(operation_id = "mcp_servers.create", tag = "mcp", request_body = McpServerSpec,
    responses((status = 201, body = McpServerView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/mcp-servers")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<McpManage>,
    body: Body<McpServerSpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let view = st
        .mcp_servers
        .create(&caller.ctx, body?.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(operation_id = "mcp_servers.get", tag = "mcp",
    responses((status = 200, body = McpServerView), (status = 404, body = Problem)))]
#[get("/mcp-servers/{id}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<McpManage>,
    id: web::Path<String>,
) -> Result<web::Json<McpServerView>, ApiError> {
    let st = state::of(&req);
    let row = st.mcp_servers.row(&id).await?;
    Ok(web::Json(st.mcp_servers.view(row)))
}

/// Replace a server's registration.
#[utoipa::path(operation_id = "mcp_servers.replace", tag = "mcp", request_body = McpServerSpec,
    responses((status = 200, body = McpServerView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[put("/mcp-servers/{id}")]
pub async fn replace(
    req: HttpRequest,
    caller: Guarded<McpManage>,
    id: web::Path<String>,
    body: Body<McpServerSpec>,
) -> Result<web::Json<McpServerView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(
        st.mcp_servers
            .update(&caller.ctx, &id, body?.into_inner())
            .await?,
    ))
}

#[utoipa::path(operation_id = "mcp_servers.remove", tag = "mcp",
    responses((status = 204), (status = 404, body = Problem)))]
#[delete("/mcp-servers/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<McpManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    st.mcp_servers.delete(&caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The server's RFC 9728 protected resource metadata, for an MCP server
/// that agentry does not proxy to serve verbatim at its own
/// `/.well-known/oauth-protected-resource`.
#[utoipa::path(operation_id = "mcp_servers.resource_metadata", tag = "mcp",
    responses((status = 200, body = ResourceMetadata), (status = 404, body = Problem)))]
#[get("/mcp-servers/{id}/resource-metadata")]
pub async fn resource_metadata(
    req: HttpRequest,
    _caller: Guarded<McpManage>,
    id: web::Path<String>,
) -> Result<web::Json<ResourceMetadata>, ApiError> {
    let st = state::of(&req);
    let row = st.mcp_servers.row(&id).await?;
    Ok(web::Json(st.mcp_servers.metadata(&row)))
}

/// RFC 9728 protected resource metadata of an enabled MCP server, by
/// name: a proxied one's, and a direct one's for the challenge that
/// forward auth gives behind a proxy (no credentials needed: clients read
/// it to find where to sign in).
#[utoipa::path(operation_id = "mcp_servers.well_known", tag = "mcp",
    responses((status = 200, body = ResourceMetadata), (status = 404, body = Problem)))]
#[get("/.well-known/oauth-protected-resource/mcp/{name}")]
pub async fn well_known(
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let row = st
        .mcp_servers
        .enabled_named(&name)
        .await?
        .ok_or_else(|| crate::error::Error::NotFound(format!("MCP server {name}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(st.mcp_servers.metadata(&row)))
}

/// Registers this module's routes (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::McpManage, list))
        .service(needs(Permission::McpManage, create))
        .service(needs(Permission::McpManage, get))
        .service(needs(Permission::McpManage, replace))
        .service(needs(Permission::McpManage, remove))
        .service(needs(Permission::McpManage, resource_metadata));
}

/// Registers the well-known route, outside `/api/v1`.
pub fn well_known_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(well_known);
}
