//! `/api/v1/agents`: service accounts, their API keys, quarantine.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::{CreateKey, CreatedKey, KeyList};
use crate::identity::agents::{self, AgentChanges, AgentRow, NewAgent};
use crate::identity::api_keys::{self, Owner};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AgentManage, Caller, Guarded, Required};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub agent_type: String,
    pub description: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<AgentRow> for AgentView {
    fn from(a: AgentRow) -> Self {
        AgentView {
            id: a.id,
            name: a.name,
            agent_type: a.agent_type,
            description: a.description,
            enabled: a.enabled,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "docs-writer", "agent_type": "documentation", "description": "Writes the release notes"}))]
pub struct CreateAgent {
    #[schema(value_type = crate::formats::Username)]
    pub name: String,
    /// `orchestrator`, `planner`, `validator`, `programmer`,
    /// `documentation`, `knowledge_base`, or any lower_snake name.
    #[schema(value_type = crate::formats::LowerSnake)]
    pub agent_type: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Create an agent.
#[utoipa::path(
    operation_id = "agents.create",
    tag = "identity",
    request_body = CreateAgent,
    responses((status = 201, body = AgentView), (status = 409, body = Problem), (status = 422, body = Problem))
)]
#[post("/agents")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    body: Body<CreateAgent>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let new = NewAgent {
        name: b.name,
        agent_type: b.agent_type,
        description: b.description,
        enabled: b.enabled,
    };
    let agent = agents::create(&st.audit, &caller.ctx, new).await?;
    Ok(HttpResponse::Created().json(AgentView::from(agent)))
}

/// List agents, oldest first.
#[utoipa::path(
    operation_id = "agents.list",
    tag = "identity",
    params(PageParams),
    responses((status = 200, body = Page<AgentView>), (status = 400, body = Problem))
)]
#[get("/agents")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AgentManage>,
    q: web::Query<PageParams>,
) -> Result<web::Json<Page<AgentView>>, ApiError> {
    let st = state::of(&req);
    let page = q.resolve()?;
    let rows = agents::list(&st.db, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |a| a.id.clone(),
        AgentView::from,
    )))
}

/// Get an agent (an agent may read itself).
#[utoipa::path(
    operation_id = "agents.get",
    tag = "identity",
    responses((status = 200, body = AgentView), (status = 404, body = Problem))
)]
#[get("/agents/{id}")]
pub async fn get(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<AgentView>, ApiError> {
    let st = state::of(&req);
    if caller.principal.id != *id {
        caller.require(&st, AgentManage::NAME).await?;
    }
    Ok(web::Json(agents::get(&st.db, &id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[schema(value_type = Option<crate::formats::Username>)]
    pub name: Option<String>,
    #[schema(value_type = Option<crate::formats::LowerSnake>)]
    pub agent_type: Option<String>,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// `true` re-enables a quarantined agent (issue it new keys).
    pub enabled: Option<bool>,
}

/// Update an agent.
#[utoipa::path(
    operation_id = "agents.update",
    tag = "identity",
    request_body = UpdateAgent,
    responses((status = 200, body = AgentView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
#[patch("/agents/{id}")]
pub async fn update(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    id: web::Path<String>,
    body: Body<UpdateAgent>,
) -> Result<web::Json<AgentView>, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let changes = AgentChanges {
        name: b.name,
        agent_type: b.agent_type,
        description: b.description,
        enabled: b.enabled,
    };
    Ok(web::Json(
        agents::update(&st.audit, &caller.ctx, &id, changes)
            .await?
            .into(),
    ))
}

/// Delete an agent and its keys.
#[utoipa::path(
    operation_id = "agents.remove",
    tag = "identity",
    responses((status = 204), (status = 404, body = Problem))
)]
#[delete("/agents/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    agents::delete(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List an agent's keys (never their secrets).
#[utoipa::path(
    operation_id = "agents.list_keys",
    tag = "identity",
    responses((status = 200, body = KeyList), (status = 404, body = Problem))
)]
#[get("/agents/{id}/keys")]
pub async fn list_keys(
    req: HttpRequest,
    _caller: Guarded<AgentManage>,
    id: web::Path<String>,
) -> Result<web::Json<KeyList>, ApiError> {
    let st = state::of(&req);
    agents::get(&st.db, &id).await?;
    let keys = api_keys::list(&st.db, Owner::Agent(id.into_inner())).await?;
    Ok(web::Json(KeyList {
        items: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Create an API key for an agent. The response carries the key; it is
/// never shown again.
#[utoipa::path(
    operation_id = "agents.create_key",
    tag = "identity",
    request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 404, body = Problem), (status = 422, body = Problem))
)]
#[post("/agents/{id}/keys")]
pub async fn create_key(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    id: web::Path<String>,
    body: Body<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let max = st.config.api_keys.max_lifetime_days;
    let key = api_keys::create(
        &st.audit,
        &caller.ctx,
        Owner::Agent(id.into_inner()),
        b.name,
        b.expires_in_days,
        max,
    )
    .await?;
    Ok(HttpResponse::Created().json(CreatedKey::from(key)))
}

/// Revoke one of an agent's keys.
#[utoipa::path(
    operation_id = "agents.revoke_key",
    tag = "identity",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem))
)]
#[delete("/agents/{id}/keys/{key_id}")]
pub async fn revoke_key(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let (id, key_id) = path.into_inner();
    api_keys::revoke(&st.audit, &caller.ctx, Owner::Agent(id), &key_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct QuarantineBody {
    /// Why, for the audit trail.
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Quarantined {
    pub agent: AgentView,
    pub keys_revoked: usize,
}

/// Quarantine an agent: disable it and revoke all its keys at once.
/// Reverse with PATCH `{"enabled": true}` and new keys.
#[utoipa::path(
    operation_id = "agents.quarantine",
    tag = "identity",
    request_body(content = Option<QuarantineBody>),
    responses((status = 200, body = Quarantined), (status = 404, body = Problem))
)]
#[post("/agents/{id}/quarantine")]
pub async fn quarantine(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    id: web::Path<String>,
    body: Option<web::Json<QuarantineBody>>,
) -> Result<web::Json<Quarantined>, ApiError> {
    let st = state::of(&req);
    let reason = body
        .and_then(|b| b.into_inner().reason)
        .map(|r| r.chars().take(512).collect());
    let keys_revoked = agents::quarantine(&st.audit, &caller.ctx, &id, reason).await?;
    let agent = agents::get(&st.db, &id).await?.into();
    Ok(web::Json(Quarantined {
        agent,
        keys_revoked,
    }))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AgentManage, create))
        .service(needs(Permission::AgentManage, list))
        .service(needs(Permission::AgentManage, get))
        .service(needs(Permission::AgentManage, update))
        .service(needs(Permission::AgentManage, remove))
        .service(needs(Permission::AgentManage, list_keys))
        .service(needs(Permission::AgentManage, create_key))
        .service(needs(Permission::AgentManage, revoke_key))
        .service(needs(Permission::AgentManage, quarantine));
}
