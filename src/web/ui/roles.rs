//! Roles pages (list, create, edit with inheritance and effective
//! permissions, assignments) and the "check access" page.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{respond, FormErrors};
use super::layout::Layout;
use super::render;
use crate::identity::principals::{self, Names};
use crate::identity::PrincipalKind;
use crate::rbac::assignments::{self, NewAssignment};
use crate::rbac::decide::Question;
use crate::rbac::engine::Subject;
use crate::rbac::roles::{self, RoleInput};
use crate::rbac::Permission;
use crate::web::api::roles::{AssignmentView, RoleView};
use crate::web::auth::SessionUser;
use crate::web::state::{self, WebState};

const MANAGE: &str = Permission::RoleManage.as_str();

/// Splits a textarea or field of names on whitespace and commas.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Default, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: String,
    #[serde(default)]
    inherits: String,
    #[serde(default)]
    subject_type: String,
    #[serde(default)]
    subject_id: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    resource_pattern: String,
}

#[derive(Template)]
#[template(path = "roles/list.html")]
struct ListPage {
    layout: Layout,
    roles: Vec<RoleView>,
    form: RoleForm,
    errors: FormErrors,
}

async fn list_page(
    st: &WebState,
    user: &SessionUser,
    form: RoleForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let rows = roles::list(&st.db, None, 1000).await?;
    render(
        status,
        &ListPage {
            layout: Layout::for_session("Roles", user, "roles"),
            roles: rows.into_iter().map(Into::into).collect(),
            form,
            errors,
        },
    )
}

#[get("/roles")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    list_page(
        &st,
        &user,
        RoleForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

fn input(form: &RoleForm) -> RoleInput {
    RoleInput {
        name: form.name.trim().to_string(),
        description: form.description.trim().to_string(),
        permissions: words(&form.permissions),
        inherits: words(&form.inherits),
    }
}

#[post("/roles")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let result = roles::create(&st.audit, &user.ctx, input(&form)).await;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |r| format!("/roles/{}", r.name),
        |errors| list_page(&st, &user, form, errors, status),
    )
    .await
}

/// An assignment as the pages list it: who by name (linked to their
/// page), and the scope.
pub struct SubjectAssignment {
    pub id: String,
    pub role: String,
    pub kind: String,
    pub subject_id: String,
    /// The subject's name; `None` when it no longer exists.
    pub name: Option<String>,
    pub href: String,
    pub scope: Option<(String, String)>,
}

impl SubjectAssignment {
    pub fn of(a: AssignmentView, names: &Names) -> SubjectAssignment {
        let kind = PrincipalKind::parse(&a.subject.kind);
        SubjectAssignment {
            name: kind
                .and_then(|k| names.of(k, &a.subject.id))
                .map(str::to_string),
            href: format!("/{}s/{}", a.subject.kind, a.subject.id),
            id: a.id,
            role: a.role,
            kind: a.subject.kind,
            subject_id: a.subject.id,
            scope: a.scope.map(|s| (s.resource_type, s.resource_pattern)),
        }
    }

    /// "agent planner-1", or the id of one that is gone.
    pub fn who(&self) -> String {
        format!(
            "{} {}",
            self.kind,
            self.name.as_deref().unwrap_or(&self.subject_id)
        )
    }
}

/// A subject typed into a form (a name, or an id), as its id: "no agent
/// named …" when there is none, never a guess.
pub async fn resolve_subject(
    st: &WebState,
    kind: &str,
    typed: &str,
) -> Result<(PrincipalKind, String), crate::error::Error> {
    let field = |m: String| crate::error::Error::fields([("subject.id".to_string(), m)].into());
    let kind =
        PrincipalKind::parse(kind.trim()).ok_or_else(|| field("choose agent or user".into()))?;
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(field(format!("name the {kind}")));
    }
    match principals::find(&st.db, kind, typed).await? {
        Some((id, _)) => Ok((kind, id)),
        None => Err(field(format!("no {kind} named “{typed}”"))),
    }
}

/// What an assignment form names: who (a name or id, of a kind), which
/// role, and an optional scope (both scope fields empty: everything).
pub struct AssignRequest<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub role: &'a str,
    pub resource_type: &'a str,
    pub resource_pattern: &'a str,
}

/// Assigns as the role page and the agent and user pages do: the subject
/// resolved by name or id (refused by name when unknown), the scope read
/// from its two fields; returns who got it.
pub async fn assign_typed(
    st: &WebState,
    ctx: &crate::audit::Context,
    a: AssignRequest<'_>,
) -> Result<(PrincipalKind, String), crate::error::Error> {
    let (kind, id) = resolve_subject(st, a.kind, a.subject).await?;
    let scope = match (a.resource_type.trim(), a.resource_pattern.trim()) {
        ("", "") => None,
        (t, p) => Some((t.to_string(), p.to_string())),
    };
    let new = NewAssignment {
        subject_type: kind.to_string(),
        subject_id: id.clone(),
        role: a.role.trim().to_string(),
        scope,
    };
    assignments::create(&st.audit, ctx, new).await?;
    Ok((kind, id))
}

#[derive(Template)]
#[template(path = "roles/detail.html")]
struct DetailPage {
    layout: Layout,
    role: RoleView,
    effective: Vec<(String, String)>,
    assignments: Vec<SubjectAssignment>,
    names: Names,
    form: RoleForm,
    errors: FormErrors,
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    name: &str,
    form: Option<RoleForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let role = RoleView::from(roles::get(&st.db, name).await?);
    let policy = st.policy.get(&st.db, &st.audit).await?;
    let effective = policy
        .role_permissions(name)
        .into_iter()
        .map(|(p, path)| (p, path.join(" → ")))
        .collect();
    let assignments = assignments::list(&st.db, Some(name.to_string()), None, None, 1000).await?;
    let names = Names::load(&st.db).await?;
    let form = form.unwrap_or_else(|| RoleForm {
        name: role.name.clone(),
        description: role.description.clone(),
        permissions: role.permissions.join("\n"),
        inherits: role.inherits.join(" "),
        subject_type: PrincipalKind::Agent.to_string(),
        ..RoleForm::default()
    });
    let page = DetailPage {
        layout: Layout::for_session(format!("Role {}", role.name), user, "roles"),
        role,
        effective,
        assignments: assignments
            .into_iter()
            .map(|a| SubjectAssignment::of(a.into(), &names))
            .collect(),
        names,
        form,
        errors,
    };
    render(status, &page)
}

#[get("/roles/{name}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    detail_page(
        &st,
        &user,
        &name,
        None,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

async fn after(
    st: &WebState,
    user: &SessionUser,
    name: &str,
    form: RoleForm,
    result: crate::error::Result<()>,
    to: &str,
) -> Result<HttpResponse, UiError> {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |()| to.to_string(),
        |errors| detail_page(st, user, name, Some(form), errors, status),
    )
    .await
}

#[post("/roles/{name}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut form = form.into_inner();
    form.name = name.to_string();
    let result = roles::replace(&st.audit, &user.ctx, input(&form))
        .await
        .map(|_| ());
    after(&st, &user, &name, form, result, &format!("/roles/{name}")).await
}

#[post("/roles/{name}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = roles::delete(&st.audit, &user.ctx, &name).await;
    after(&st, &user, &name, RoleForm::default(), result, "/roles").await
}

#[post("/roles/{name}/assignments")]
pub async fn assign(
    req: HttpRequest,
    user: SessionUser,
    name: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let request = AssignRequest {
        kind: &form.subject_type,
        subject: &form.subject_id,
        role: &name,
        resource_type: &form.resource_type,
        resource_pattern: &form.resource_pattern,
    };
    let result = assign_typed(&st, &user.ctx, request).await.map(|_| ());
    after(&st, &user, &name, form, result, &format!("/roles/{name}")).await
}

#[post("/roles/{name}/assignments/{id}/delete")]
pub async fn unassign(
    req: HttpRequest,
    user: SessionUser,
    path: web::Path<(String, String)>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let (name, id) = path.into_inner();
    let result = assignments::delete(&st.audit, &user.ctx, &id).await;
    after(
        &st,
        &user,
        &name,
        RoleForm::default(),
        result,
        &format!("/roles/{name}"),
    )
    .await
}

#[derive(Default, Deserialize)]
pub struct AccessQuery {
    subject_type: Option<String>,
    subject_id: Option<String>,
    permission: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
}

#[derive(Template)]
#[template(path = "roles/access.html")]
struct AccessPage {
    layout: Layout,
    q: AccessQuery,
    error: Option<String>,
    decision: Option<(bool, String, String)>,
    names: Names,
    /// After a refusal, the roles that would grant the permission (for an
    /// admin to assign from here), and the subject's name.
    grant_via: Vec<String>,
    subject_name: String,
}

/// "May X do Y on Z?": anyone may ask about themselves; asking about
/// another principal needs `authz:check`. A read, so a GET form.
#[get("/access")]
pub async fn access(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<AccessQuery>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let q = q.into_inner();
    let mut page = AccessPage {
        layout: Layout::for_session("Check access", &user, "access"),
        q,
        error: None,
        decision: None,
        names: Names::load(&st.db).await?,
        grant_via: Vec::new(),
        subject_name: String::new(),
    };
    let Some(permission) = page.q.permission.clone().filter(|p| !p.trim().is_empty()) else {
        return render(StatusCode::OK, &page);
    };
    if !crate::rbac::patterns::valid_permission(permission.trim()) {
        page.error = Some(
            "The permission must be resource:action in lower_snake, e.g. workflow:execute.".into(),
        );
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let caller = user.caller();
    let me = crate::rbac::subject_of(&caller.principal);
    let kind = match page.q.subject_type.as_deref().map(str::trim) {
        Some(kind) => PrincipalKind::parse(kind).unwrap_or(PrincipalKind::User),
        None => PrincipalKind::User,
    };
    let subject = match page.q.subject_id.as_deref().map(str::trim) {
        None | Some("") => me.clone(),
        Some(key) => match principals::find(&st.db, kind, key).await? {
            Some((id, _)) => Subject { kind, id },
            None => {
                page.error = Some(format!("No {kind} named “{key}”."));
                return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
            }
        },
    };
    if subject != me {
        caller.require(&st, Permission::AuthzCheck.as_str()).await?;
    }
    let resource = match (
        page.q.resource_type.as_deref().map(str::trim),
        page.q.resource_id.as_deref().map(str::trim),
    ) {
        (Some(t), Some(i)) if !t.is_empty() && !i.is_empty() => Some((t, i)),
        _ => None,
    };
    let question = Question {
        subject: &subject,
        permission: permission.trim(),
        resource,
        scope: None,
    };
    let purpose = st.query_purpose();
    let d = st
        .decider()
        .decide_recorded(&caller.ctx, purpose, question)
        .await?;
    if !d.allowed && user.nav.roles {
        let policy = st.policy.get(&st.db, &st.audit).await?;
        page.grant_via = policy.roles_granting(permission.trim());
        page.subject_name = page
            .names
            .of(subject.kind, &subject.id)
            .unwrap_or(&subject.id)
            .to_string();
        page.q.subject_type = Some(subject.kind.to_string());
    }
    // The decision names its subject by id; the page names it by name.
    let reason = match page.names.of(subject.kind, &subject.id) {
        Some(name) => d.reason.replace(&subject.id, name),
        None => d.reason,
    };
    page.decision = Some((d.allowed, reason, d.granted_by.join(" → ")));
    render(StatusCode::OK, &page)
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(detail)
        .service(update)
        .service(delete)
        .service(assign)
        .service(unassign)
        .service(access);
}
