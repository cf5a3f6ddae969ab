//! `/api/v1/approvals`: approval requests (SPEC §18) — listed to holders of
//! the rule's approver role and of approval:manage, and to the requester
//! for its own; approved or denied by an approver who is not the requester.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::approvals::access::Seen;
use crate::approvals::requests::{Decision, Ruling, Via};
use crate::approvals::ApprovalState;
use crate::timefmt::rfc3339;
use crate::web::auth::Caller;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state::{self, WebState};

/// Requests listed at most.
const LIST_LIMIT: u32 = 200;

#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    pub state: ApprovalState,
    pub principal_type: String,
    pub principal_id: String,
    pub client_id: Option<String>,
    pub server: String,
    pub tool: String,
    /// SHA-256 of the arguments in RFC 8785 canonical JSON.
    pub arguments_digest: String,
    /// The call's arguments: shown to approvers and approval:manage only.
    pub arguments: Option<serde_json::Value>,
    pub rule_id: String,
    pub rule_name: Option<String>,
    pub rule_version: i64,
    pub created_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub used_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// pending (default), approved, denied, expired or used.
    pub state: Option<ApprovalState>,
}

async fn view(st: &WebState, seen: Seen) -> Result<ApprovalView, ApiError> {
    let Seen {
        row,
        rule,
        standing,
    } = seen;
    let rule = rule.as_ref();
    let arguments = if standing.see_arguments {
        Some(st.approvals().arguments(&row).await?)
    } else {
        None
    };
    let now = crate::db::now_ms();
    let b = &row.binding;
    Ok(ApprovalView {
        id: b.id.clone(),
        state: b.state_at(now),
        principal_type: b.principal_type.clone(),
        principal_id: b.principal_id.clone(),
        client_id: row.client_id.clone(),
        server: b.server.clone(),
        tool: b.tool.clone(),
        arguments_digest: b.arguments_digest.clone(),
        arguments,
        rule_id: b.rule_id.clone(),
        rule_name: rule.map(|r| r.name.clone()),
        rule_version: b.rule_version,
        created_at: rfc3339(row.created_at),
        expires_at: rfc3339(b.expires_at),
        decided_at: row.decided_at.map(rfc3339),
        decided_by: row
            .decided_by_id
            .as_ref()
            .map(|id| format!("{}:{id}", row.decided_by_type.as_deref().unwrap_or("user"))),
        reason: row.reason.clone(),
        used_at: row.used_at.map(rfc3339),
    })
}

/// Approval requests the caller may see, newest first (at most 200).
#[utoipa::path(operation_id = "approvals.list", tag = "approvals", params(ListQuery),
    responses((status = 200, body = ApprovalList)))]
#[get("/approvals")]
pub async fn list(
    req: HttpRequest,
    caller: Caller,
    q: web::Query<ListQuery>,
) -> Result<web::Json<ApprovalList>, ApiError> {
    let st = state::of(&req);
    let wanted = q.state.unwrap_or(ApprovalState::Pending);
    let seen = st
        .approvals()
        .visible(&caller.principal, Some(wanted), LIST_LIMIT)
        .await?;
    let mut items = Vec::new();
    for s in seen {
        items.push(view(&st, s).await?);
    }
    Ok(web::Json(ApprovalList { items }))
}

/// One request and its state (also the cooperative path's poll).
#[utoipa::path(operation_id = "approvals.get", tag = "approvals",
    responses((status = 200, body = ApprovalView), (status = 404, body = Problem)))]
#[get("/approvals/{id}")]
pub async fn get(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<ApprovalView>, ApiError> {
    let st = state::of(&req);
    let seen = st.approvals().seen(&caller.principal, &id).await?;
    Ok(web::Json(view(&st, seen).await?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (kept on the request and in the audit record).
    #[schema(max_length = 500)]
    #[serde(default)]
    pub reason: Option<String>,
}

/// The decision's body when one was sent (a bare POST, as from a page's
/// button, has none).
fn optional(req: &HttpRequest, body: Body<DecisionBody>) -> Result<Option<DecisionBody>, ApiError> {
    let empty = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == "0");
    if empty {
        return Ok(None);
    }
    Ok(Some(body?.into_inner()))
}

async fn decide(
    req: HttpRequest,
    caller: Caller,
    id: &str,
    body: Option<DecisionBody>,
    decision: Decision,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let reason = body.and_then(|b| b.reason);
    let seen = st
        .approvals()
        .decide_as(
            &caller.ctx,
            &caller.principal,
            id,
            Ruling {
                decision,
                reason: reason.as_deref(),
                via: Via::Api,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(view(&st, seen).await?))
}

/// Approve a pending request (not one's own): the bound call may go
/// ahead once.
#[utoipa::path(operation_id = "approvals.approve", tag = "approvals", request_body(content = DecisionBody, description = "optional"),
    responses((status = 200, body = ApprovalView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/approvals/{id}/approve")]
pub async fn approve(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: Body<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = optional(&req, body)?;
    decide(req, caller, &id, body, Decision::Approve).await
}

/// Deny a pending request: its call is answered with an error.
#[utoipa::path(operation_id = "approvals.deny", tag = "approvals", request_body(content = DecisionBody, description = "optional"),
    responses((status = 200, body = ApprovalView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/approvals/{id}/deny")]
pub async fn deny(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    body: Body<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = optional(&req, body)?;
    decide(req, caller, &id, body, Decision::Deny).await
}

/// Registers this module's routes (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list)
        .service(get)
        .service(approve)
        .service(deny);
}
