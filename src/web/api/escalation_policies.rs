//! `/api/v1/escalation-policies`: who is told when, until acknowledged.

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::alerts::policies::{self, PolicySpec};
use crate::db::alert_rules::{PolicyRow, Step};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AlertManage, AlertRead, Guarded};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// A policy as stored: its [`PolicySpec`] fields and when it was written
/// (spelled out, not flattened: `PolicySpec`'s schema forbids other
/// properties, so it could not be combined with the timestamps).
#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    pub name: String,
    pub description: String,
    pub steps: Vec<Step>,
    /// Re-notify every this many seconds after the last step until
    /// acknowledged; `null`: no repeat.
    pub repeat_seconds: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PolicyRow> for PolicyView {
    fn from(p: PolicyRow) -> Self {
        PolicyView {
            name: p.name,
            description: p.description,
            steps: p.steps,
            repeat_seconds: p.repeat_seconds.map(|r| r as u64),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PolicyList {
    pub items: Vec<PolicyView>,
}

/// Every escalation policy.
#[utoipa::path(operation_id = "escalation_policies.list", tag = "alerting", responses((status = 200, body = PolicyList)))]
#[get("/escalation-policies")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
) -> Result<web::Json<PolicyList>, ApiError> {
    let st = state::of(&req);
    let items = policies::list(&st.db)
        .await?
        .into_iter()
        .map(PolicyView::from)
        .collect();
    Ok(web::Json(PolicyList { items }))
}

/// Create a policy. Steps: `{after_seconds, channels, quarantine_agent}`;
/// `@rule` in `channels` stands for the firing rule's channels.
#[utoipa::path(operation_id = "escalation_policies.create", tag = "alerting", request_body = PolicySpec,
    responses((status = 201, body = PolicyView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/escalation-policies")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    body: Body<PolicySpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let row = policies::create(&st.audit, &caller.ctx, body?.into_inner()).await?;
    Ok(HttpResponse::Created().json(PolicyView::from(row)))
}

#[utoipa::path(operation_id = "escalation_policies.get", tag = "alerting",
    responses((status = 200, body = PolicyView), (status = 404, body = Problem)))]
#[get("/escalation-policies/{name}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    name: web::Path<String>,
) -> Result<web::Json<PolicyView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(policies::get(&st.db, &name).await?.into()))
}

/// Replace a policy.
#[utoipa::path(operation_id = "escalation_policies.replace", tag = "alerting", request_body = PolicySpec,
    responses((status = 200, body = PolicyView), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[put("/escalation-policies/{name}")]
pub async fn replace(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    name: web::Path<String>,
    body: Body<PolicySpec>,
) -> Result<web::Json<PolicyView>, ApiError> {
    let st = state::of(&req);
    let row = policies::replace(&st.audit, &caller.ctx, &name, body?.into_inner()).await?;
    Ok(web::Json(row.into()))
}

/// Delete a policy no rule uses.
#[utoipa::path(operation_id = "escalation_policies.remove", tag = "alerting",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[delete("/escalation-policies/{name}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    policies::delete(&st.audit, &caller.ctx, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AlertRead, list))
        .service(needs(Permission::AlertManage, create))
        .service(needs(Permission::AlertRead, get))
        .service(needs(Permission::AlertManage, replace))
        .service(needs(Permission::AlertManage, remove));
}
