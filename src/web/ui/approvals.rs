//! The Approvals page (SPEC §18): the requests the signed-in person may
//! see, pending first, each with the exact call (arguments
//! pretty-printed), who asks and since when; one request's page, where a
//! notification's signed link leads (after signing in, if need be), with
//! Approve and Deny for its approvers. Opening a page changes nothing: a
//! decision is a form post with the session's CSRF token, taken once.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::filters;
use super::layout::Layout;
use super::{render, see_other};
use crate::approvals::access::Seen;
use crate::approvals::links;
use crate::approvals::requests::{Decision, Ruling, Via};
use crate::approvals::ApprovalState;
use crate::error::Error;
use crate::identity::Principal;
use crate::web::auth::SessionUser;
use crate::web::problem::ApiError;
use crate::web::state::{self, WebState};

/// Decided requests listed under the pending ones.
const RECENT: u32 = 50;
/// Pending requests listed (the dashboard shows the first few).
const PENDING: u32 = 200;

/// One request as a page shows it.
pub struct RequestItem {
    pub id: String,
    pub state: ApprovalState,
    /// `agent cleaner`, `user carol`.
    pub who: String,
    pub client: Option<String>,
    pub server: String,
    pub tool: String,
    /// Pretty-printed, for those who may see them.
    pub arguments: Option<String>,
    pub digest: String,
    pub rule: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    /// `approved by carol`, `denied by dave`, `used`, `expired`.
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub may_decide: bool,
}

impl RequestItem {
    pub fn is_pending(&self) -> bool {
        self.state == ApprovalState::Pending
    }
}

async fn item(st: &WebState, seen: Seen) -> Result<RequestItem, UiError> {
    let approvals = st.approvals();
    let Seen {
        row,
        rule,
        standing,
    } = seen;
    let arguments = if standing.see_arguments {
        let v = approvals.arguments(&row).await?;
        Some(serde_json::to_string_pretty(&v).map_err(Error::internal)?)
    } else {
        None
    };
    let b = &row.binding;
    let state = b.state_at(crate::db::now_ms());
    let decider = match (&row.decided_by_type, &row.decided_by_id) {
        (Some(k), Some(i)) => Some(approvals.name_of(k, i).await?),
        _ => None,
    };
    let outcome = match (state, decider) {
        (ApprovalState::Pending, _) => None,
        (ApprovalState::Used, Some(d)) => Some(format!("approved by {d}, and the call went ahead")),
        (s, Some(d)) => Some(format!("{s} by {d}")),
        (s, None) => Some(s.to_string()),
    };
    Ok(RequestItem {
        id: b.id.clone(),
        state,
        who: format!(
            "{} {}",
            b.principal_type,
            approvals
                .name_of(&b.principal_type, &b.principal_id)
                .await?
        ),
        client: row.client_id.clone(),
        server: b.server.clone(),
        tool: b.tool.clone(),
        arguments,
        digest: b.arguments_digest.clone(),
        rule: rule.map_or_else(|| "(deleted rule)".to_string(), |r| r.name),
        created_at: row.created_at,
        expires_at: b.expires_at,
        decided_at: row.decided_at,
        outcome,
        reason: row.reason.clone(),
        may_decide: standing.may_decide && !standing.own && state == ApprovalState::Pending,
    })
}

/// The pending requests `user` may see (for the dashboard, first).
pub async fn pending_for(st: &WebState, user: &SessionUser) -> Result<Vec<RequestItem>, UiError> {
    let p = Principal::of_user(&user.session.user);
    let seen = st
        .approvals()
        .visible(&p, Some(ApprovalState::Pending), PENDING)
        .await?;
    let mut out = Vec::new();
    for s in seen {
        out.push(item(st, s).await?);
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "approvals/list.html")]
struct ListPage {
    layout: Layout,
    /// No link on this page (the decision forms carry an empty one).
    link: &'static str,
    pending: Vec<RequestItem>,
    recent: Vec<RequestItem>,
}

#[get("/approvals")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let pending = pending_for(&st, &user).await?;
    let p = Principal::of_user(&user.session.user);
    let mut recent = Vec::new();
    let now = crate::db::now_ms();
    for s in st.approvals().visible(&p, None, RECENT).await? {
        // Pending ones are listed above already: not drawn (nor their
        // arguments opened) twice.
        if s.row.binding.state_at(now) != ApprovalState::Pending {
            recent.push(item(&st, s).await?);
        }
    }
    let page = ListPage {
        layout: Layout::for_session("Approvals", &user, "approvals"),
        link: "",
        pending,
        recent,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "approvals/detail.html")]
struct DetailPage {
    layout: Layout,
    r: RequestItem,
    /// The notification's link signature, kept on the forms.
    link: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LinkQuery {
    link: Option<String>,
}

/// A link's signature, checked: a forged or altered link is refused
/// (nothing about the request is shown through it).
fn checked_link(st: &WebState, id: &str, link: Option<&str>) -> Result<String, UiError> {
    match link.filter(|l| !l.is_empty()) {
        None => Ok(String::new()),
        Some(l) if links::verify(&st.csrf_key, id, l) => Ok(l.to_string()),
        Some(_) => Err(ApiError::not_found(
            "this link is not a valid approval link: open the request from the Approvals page",
        )
        .into()),
    }
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    link: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let p = Principal::of_user(&user.session.user);
    let seen = st.approvals().seen(&p, id).await?;
    let r = item(st, seen).await?;
    let page = DetailPage {
        layout: Layout::for_session(format!("Approval of {}", r.tool), user, "approvals"),
        r,
        link,
        error,
    };
    render(status, &page)
}

#[get("/approvals/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    q: web::Query<LinkQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let link = checked_link(&st, &id, q.link.as_deref())?;
    detail_page(&st, &user, &id, link, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    link: String,
}

async fn decide(
    req: HttpRequest,
    user: SessionUser,
    id: &str,
    form: DecisionForm,
    decision: Decision,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    let link = checked_link(&st, id, Some(&form.link))?;
    let p = Principal::of_user(&user.session.user);
    let via = if link.is_empty() {
        Via::Page
    } else {
        Via::NotificationLink
    };
    let decided = st
        .approvals()
        .decide_as(
            &user.ctx,
            &p,
            id,
            Ruling {
                decision,
                reason: Some(&form.reason),
                via,
            },
        )
        .await;
    match decided {
        Ok(_) => Ok(see_other(&format!("/approvals/{id}"))),
        Err(e @ (Error::Forbidden(_) | Error::Conflict(_) | Error::Validation { .. })) => {
            let (status, message) = match &e {
                Error::Validation { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not decided: the reason is at most 500 characters.".to_string(),
                ),
                Error::Forbidden(m) => (StatusCode::FORBIDDEN, format!("Not decided: {m}.")),
                other => (StatusCode::CONFLICT, format!("Not decided: {other}.")),
            };
            detail_page(&st, &user, id, link, Some(message), status).await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/approvals/{id}/approve")]
pub async fn approve(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, UiError> {
    decide(req, user, &id, form.into_inner(), Decision::Approve).await
}

#[post("/approvals/{id}/deny")]
pub async fn deny(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, UiError> {
    decide(req, user, &id, form.into_inner(), Decision::Deny).await
}

/// Registers this page's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(detail)
        .service(approve)
        .service(deny);
}
