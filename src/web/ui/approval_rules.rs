//! Approval rules pages (SPEC §18), under `approval:manage`: the list, the
//! form (new and edit; a change is a new version, and approvals asked
//! under the old one no longer bind) and deletion. The same checks as the
//! API's, with each refusal next to its field.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{self, FormErrors};
use super::layout::Layout;
use super::{render, see_other};
use crate::approvals::rules::{ApprovalRuleSpec, DEFAULT_TIMEOUT_SECONDS};
use crate::approvals::store;
use crate::db::approvals::RuleRow;
use crate::error::{Error, FieldErrors};
use crate::rbac::Permission;
use crate::web::auth::SessionUser;
use crate::web::state::{self, WebState};

const MANAGE: &str = Permission::ApprovalManage.as_str();

#[derive(Default, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    tools: String,
    #[serde(default)]
    permission: String,
    #[serde(default)]
    approver_role: String,
    #[serde(default)]
    timeout_seconds: String,
    /// Channel names, separated by commas or spaces.
    #[serde(default)]
    channels: String,
    #[serde(default)]
    escalation_policy: String,
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

impl RuleForm {
    fn new_defaults() -> RuleForm {
        RuleForm {
            server: "*".into(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS.to_string(),
            ..RuleForm::default()
        }
    }

    fn of(r: &RuleRow) -> RuleForm {
        let s = store::spec_of(r);
        RuleForm {
            name: s.name,
            server: s.server,
            tools: s.tools,
            permission: s.permission.unwrap_or_default(),
            approver_role: s.approver_role,
            timeout_seconds: s.timeout_seconds.to_string(),
            channels: s.channels.join(", "),
            escalation_policy: s.escalation_policy.unwrap_or_default(),
            ..RuleForm::default()
        }
    }

    /// The spec the form says; a timeout that is not a number is refused
    /// here, everything else by the spec's own checks.
    fn spec(&self) -> Result<ApprovalRuleSpec, Error> {
        let Ok(timeout_seconds) = self.timeout_seconds.trim().parse::<u32>() else {
            let mut e = FieldErrors::new();
            e.insert("timeout_seconds".into(), "a number of seconds".into());
            return Err(Error::fields(e));
        };
        Ok(ApprovalRuleSpec {
            name: self.name.trim().to_string(),
            server: self.server.trim().to_string(),
            tools: self.tools.trim().to_string(),
            permission: optional(&self.permission),
            approver_role: self.approver_role.trim().to_string(),
            timeout_seconds,
            channels: self
                .channels
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            escalation_policy: optional(&self.escalation_policy),
        })
    }
}

struct RuleItem {
    id: String,
    spec: ApprovalRuleSpec,
    version: i64,
}

impl RuleItem {
    fn of(r: &RuleRow) -> RuleItem {
        RuleItem {
            id: r.id.clone(),
            spec: store::spec_of(r),
            version: r.version,
        }
    }
}

#[derive(Template)]
#[template(path = "approval_rules/list.html")]
struct ListPage {
    layout: Layout,
    rules: Vec<RuleItem>,
}

#[get("/approval-rules")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    let rules = store::list(&st.db)
        .await?
        .iter()
        .map(RuleItem::of)
        .collect();
    let page = ListPage {
        layout: Layout::for_session("Approval rules", &user, "approval-rules"),
        rules,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "approval_rules/form.html")]
struct FormPage {
    layout: Layout,
    rule: Option<RuleItem>,
    form: RuleForm,
    errors: FormErrors,
}

async fn form_page(
    st: &WebState,
    user: &SessionUser,
    id: Option<&str>,
    form: Option<RuleForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let stored = match id {
        Some(id) => Some(store::get(&st.db, id).await?),
        None => None,
    };
    let form = form.unwrap_or_else(|| match &stored {
        Some(r) => RuleForm::of(r),
        None => RuleForm::new_defaults(),
    });
    let title = match &stored {
        Some(r) => format!("Approval rule {}", r.name),
        None => "New approval rule".to_string(),
    };
    let page = FormPage {
        layout: Layout::for_session(title, user, "approval-rules"),
        rule: stored.as_ref().map(RuleItem::of),
        form,
        errors,
    };
    render(status, &page)
}

#[get("/approval-rules/new")]
pub async fn new(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    let errors = FormErrors::default();
    form_page(&st, &user, None, None, errors, StatusCode::OK).await
}

#[post("/approval-rules")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let result = match form.spec() {
        Ok(spec) => store::create(&st.audit, &user.ctx, spec).await,
        Err(e) => Err(e),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    forms::respond(
        result,
        |r| format!("/approval-rules/{}", r.id),
        |errors| form_page(&st, &user, None, Some(form), errors, status),
    )
    .await
}

#[get("/approval-rules/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    user.caller().require(&st, MANAGE).await?;
    let errors = FormErrors::default();
    form_page(&st, &user, Some(&id), None, errors, StatusCode::OK).await
}

#[post("/approval-rules/{id}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let result = match form.spec() {
        Ok(spec) => store::replace(&st.audit, &user.ctx, &id, spec).await,
        Err(e) => Err(e),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    forms::respond(
        result,
        |r| format!("/approval-rules/{}", r.id),
        |errors| form_page(&st, &user, Some(&id), Some(form), errors, status),
    )
    .await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
}

#[post("/approval-rules/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    store::delete(&st.audit, &user.ctx, &id).await?;
    Ok(see_other("/approval-rules"))
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(new)
        .service(create)
        .service(detail)
        .service(update)
        .service(delete);
}
