//! `/api/v1/approvals`: approval requests (SPEC §18) — listed to holders of
//! the rule's approver role and of approval:manage, and to the requester
//! for its own; approved or denied by an approver who is not the requester.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::approvals::requests::Decision;
use crate::approvals::ApprovalState;
use crate::db::approvals::{self as repo, ApprovalRow, RuleRow};
use crate::rbac::Permission;
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

/// What the caller may do with a request.
struct Standing {
    see_arguments: bool,
    may_decide: bool,
    may_see: bool,
}

async fn is_manager(st: &WebState, caller: &Caller) -> Result<bool, ApiError> {
    let policy = st.policy.get(&st.db, &st.audit).await?;
    let subject = crate::rbac::subject_of(&caller.principal);
    Ok(policy
        .check(&subject, Permission::ApprovalManage.as_str(), None)
        .allowed)
}

async fn standing(
    st: &WebState,
    caller: &Caller,
    manager: bool,
    row: &ApprovalRow,
    rule: Option<&RuleRow>,
) -> Result<Standing, ApiError> {
    let approver = match (rule, caller.principal.kind) {
        (Some(rule), crate::identity::PrincipalKind::User) => {
            let (uid, role) = (
                caller.principal.id.clone(),
                vec![rule.approver_role.clone()],
            );
            st.db
                .read(move |c| crate::db::roles::user_holds_any(c, &uid, &role))
                .await?
        }
        _ => false,
    };
    let own = row.binding.principal_type == caller.principal.kind.as_str()
        && row.binding.principal_id == caller.principal.id;
    Ok(Standing {
        see_arguments: manager || approver,
        may_decide: manager || approver,
        may_see: manager || approver || own,
    })
}

async fn view(
    st: &WebState,
    row: ApprovalRow,
    rule: Option<&RuleRow>,
    see_arguments: bool,
) -> Result<ApprovalView, ApiError> {
    let arguments = if see_arguments {
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

async fn load(st: &WebState, id: &str) -> Result<(ApprovalRow, Option<RuleRow>), ApiError> {
    let id = id.to_string();
    let found = st
        .db
        .read(move |c| {
            let Some(row) = repo::get(c, &id)? else {
                return Ok(None);
            };
            let rule = repo::get_rule(c, &row.binding.rule_id)?;
            Ok(Some((row, rule)))
        })
        .await?;
    found.ok_or_else(|| ApiError::from(crate::error::Error::NotFound("approval".into())))
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
    let manager = is_manager(&st, &caller).await?;
    let wanted = q.state.unwrap_or(ApprovalState::Pending);
    let (rows, rules) = st
        .db
        .read(move |c| Ok((repo::in_state(c, wanted, LIST_LIMIT)?, repo::rules(c)?)))
        .await?;
    let mut items = Vec::new();
    for row in rows {
        let rule = rules.iter().find(|r| r.id == row.binding.rule_id);
        let s = standing(&st, &caller, manager, &row, rule).await?;
        if s.may_see {
            items.push(view(&st, row, rule, s.see_arguments).await?);
        }
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
    let manager = is_manager(&st, &caller).await?;
    let (row, rule) = load(&st, &id).await?;
    let s = standing(&st, &caller, manager, &row, rule.as_ref()).await?;
    if !s.may_see {
        // Not found rather than forbidden: ids of others' requests say
        // nothing.
        return Err(crate::error::Error::NotFound("approval".into()).into());
    }
    Ok(web::Json(
        view(&st, row, rule.as_ref(), s.see_arguments).await?,
    ))
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
    let reason = body.and_then(|b| b.reason).map(|r| r.trim().to_string());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(crate::error::Error::field("reason", "at most 500 characters").into());
    }
    let manager = is_manager(&st, &caller).await?;
    let (row, rule) = load(&st, id).await?;
    let s = standing(&st, &caller, manager, &row, rule.as_ref()).await?;
    if !s.may_see {
        return Err(crate::error::Error::NotFound("approval".into()).into());
    }
    let decided = st
        .approvals()
        .decide(
            &caller.ctx,
            &caller.principal,
            s.may_decide,
            id,
            decision,
            reason.as_deref().filter(|r| !r.is_empty()),
        )
        .await?;
    let v = view(&st, decided, rule.as_ref(), s.see_arguments).await?;
    Ok(HttpResponse::Ok().json(v))
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
