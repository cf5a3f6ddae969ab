//! `/api/v1/approval-rules`: which calls wait for a person (SPEC §18).

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::approvals::rules::ApprovalRuleSpec;
use crate::approvals::store;
use crate::db::approvals::RuleRow;
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{ApprovalManage, Guarded};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// A rule as stored: its [`ApprovalRuleSpec`] fields, its id and version, and when
/// it was written.
#[derive(Serialize, ToSchema)]
pub struct ApprovalRuleView {
    pub id: String,
    pub name: String,
    pub server: String,
    pub tools: String,
    pub permission: Option<String>,
    pub approver_role: String,
    pub timeout_seconds: u32,
    pub channels: Vec<String>,
    pub escalation_policy: Option<String>,
    /// Grows with every change; an approval binds the version it was
    /// asked under.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RuleRow> for ApprovalRuleView {
    fn from(r: RuleRow) -> Self {
        let s = store::spec_of(&r);
        ApprovalRuleView {
            id: r.id,
            name: s.name,
            server: s.server,
            tools: s.tools,
            permission: s.permission,
            approver_role: s.approver_role,
            timeout_seconds: s.timeout_seconds,
            channels: s.channels,
            escalation_policy: s.escalation_policy,
            version: r.version,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalRuleList {
    pub items: Vec<ApprovalRuleView>,
}

/// Every approval rule, by name.
#[utoipa::path(operation_id = "approval_rules.list", tag = "approvals", responses((status = 200, body = ApprovalRuleList)))]
#[get("/approval-rules")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<ApprovalManage>,
) -> Result<web::Json<ApprovalRuleList>, ApiError> {
    let st = state::of(&req);
    let items = store::list(&st.db)
        .await?
        .into_iter()
        .map(ApprovalRuleView::from)
        .collect();
    Ok(web::Json(ApprovalRuleList { items }))
}

/// Create a rule.
#[utoipa::path(operation_id = "approval_rules.create", tag = "approvals", request_body = ApprovalRuleSpec,
    responses((status = 201, body = ApprovalRuleView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/approval-rules")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<ApprovalManage>,
    body: Body<ApprovalRuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let row = store::create(&st.audit, &caller.ctx, body?.into_inner()).await?;
    Ok(HttpResponse::Created().json(ApprovalRuleView::from(row)))
}

#[utoipa::path(operation_id = "approval_rules.get", tag = "approvals",
    responses((status = 200, body = ApprovalRuleView), (status = 404, body = Problem)))]
#[get("/approval-rules/{id}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<ApprovalManage>,
    id: web::Path<String>,
) -> Result<web::Json<ApprovalRuleView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(store::get(&st.db, &id).await?.into()))
}

/// Replace a rule (its version grows: pending approvals asked under the
/// old version no longer let their calls through).
#[utoipa::path(operation_id = "approval_rules.replace", tag = "approvals", request_body = ApprovalRuleSpec,
    responses((status = 200, body = ApprovalRuleView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[put("/approval-rules/{id}")]
pub async fn replace(
    req: HttpRequest,
    caller: Guarded<ApprovalManage>,
    id: web::Path<String>,
    body: Body<ApprovalRuleSpec>,
) -> Result<web::Json<ApprovalRuleView>, ApiError> {
    let st = state::of(&req);
    let row = store::replace(&st.audit, &caller.ctx, &id, body?.into_inner()).await?;
    Ok(web::Json(row.into()))
}

/// Delete a rule (its approval requests go with it).
#[utoipa::path(operation_id = "approval_rules.remove", tag = "approvals",
    responses((status = 204), (status = 404, body = Problem)))]
#[delete("/approval-rules/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<ApprovalManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    store::delete(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::ApprovalManage, list))
        .service(needs(Permission::ApprovalManage, create))
        .service(needs(Permission::ApprovalManage, get))
        .service(needs(Permission::ApprovalManage, replace))
        .service(needs(Permission::ApprovalManage, remove));
}
