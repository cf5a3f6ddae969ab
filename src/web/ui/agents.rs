//! Agents pages: list and create; one agent's page with edit, API keys
//! (the new key shown once), quarantine and delete.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{checked, respond, FormErrors, ListSearch};
use super::layout::Layout;
use super::{render, see_other};
use crate::identity::agents::{self, AgentChanges, NewAgent};
use crate::identity::api_keys::{self, Owner};
use crate::rbac::Permission;
use crate::web::api::agents::AgentView;
use crate::web::api::keys::ApiKeyView;
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state::{self, WebState};

const MANAGE: &str = Permission::AgentManage.as_str();

#[derive(Default, Deserialize)]
pub struct AgentForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    agent_type: String,
    #[serde(default)]
    description: String,
    enabled: Option<String>,
    /// Key creation.
    #[serde(default)]
    key_name: String,
    #[serde(default)]
    expires_in_days: String,
    /// Quarantine.
    #[serde(default)]
    reason: String,
}

#[derive(Template)]
#[template(path = "agents/list.html")]
struct ListPage {
    layout: Layout,
    agents: Vec<AgentView>,
    next: Option<String>,
    /// The search as typed, and how many match it (all, without one).
    q: String,
    total: i64,
    form: AgentForm,
    errors: FormErrors,
}

async fn list_page(
    req: &HttpRequest,
    user: &SessionUser,
    q: &ListSearch,
    form: AgentForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let st = state::of(req);
    user.caller().require(&st, MANAGE).await?;
    let page = q.page()?;
    let search = q.text();
    let (rows, total) = agents::search(&st.db, &search, page.after.clone(), page.limit + 1).await?;
    let p = Page::from_rows(rows, &page, |a| a.id.clone(), AgentView::from);
    render(
        status,
        &ListPage {
            layout: Layout::for_session("Agents", user, "agents"),
            agents: p.items,
            next: p.next_cursor,
            q: search,
            total,
            form,
            errors,
        },
    )
}

#[get("/agents")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListSearch>,
) -> Result<HttpResponse, UiError> {
    list_page(
        &req,
        &user,
        &q,
        AgentForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[post("/agents")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<AgentForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let new = NewAgent {
        name: form.name.trim().to_string(),
        agent_type: form.agent_type.trim().to_string(),
        description: form.description.trim().to_string(),
        enabled: true,
    };
    let result = agents::create(&st.audit, &user.ctx, new).await;
    let q = ListSearch::default();
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |a| format!("/agents/{}", a.id),
        |errors| list_page(&req, &user, &q, form, errors, status),
    )
    .await
}

#[derive(Template)]
#[template(path = "agents/detail.html")]
struct DetailPage {
    layout: Layout,
    a: AgentView,
    keys: Vec<ApiKeyView>,
    form: AgentForm,
    errors: FormErrors,
    /// A key just created: shown on this response only.
    new_key: Option<NewKey>,
    max_days: u32,
    hub: super::hub::Hub,
}

/// What the page says about a key just created.
pub enum NewKey {
    Show(String),
    /// The page was opened again: the key cannot be shown twice.
    ShownAlready,
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    form: Option<AgentForm>,
    errors: FormErrors,
    new_key: Option<NewKey>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let a = AgentView::from(agents::get(&st.db, id).await?);
    let keys = api_keys::list(&st.db, Owner::Agent(id.to_string())).await?;
    let form = form.unwrap_or_else(|| AgentForm {
        name: a.name.clone(),
        agent_type: a.agent_type.clone(),
        description: a.description.clone(),
        enabled: a.enabled.then(|| "on".into()),
        ..AgentForm::default()
    });
    let hub =
        super::hub::Hub::load(st, user, crate::identity::PrincipalKind::Agent, id, &a.name).await?;
    let page = DetailPage {
        hub,
        layout: Layout::for_session(format!("Agent {}", a.name), user, "agents"),
        a,
        keys: keys.into_iter().map(Into::into).collect(),
        form,
        errors,
        new_key,
        max_days: st.config.api_keys.max_lifetime_days,
    };
    render(status, &page)
}

#[get("/agents/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    detail_page(
        &st,
        &user,
        &id,
        None,
        FormErrors::default(),
        None,
        StatusCode::OK,
    )
    .await
}

/// The page a new key is shown on: the agent's page with the key, the
/// first time only; afterwards (a reload, a shared link) the agent's page
/// says it was shown already.
#[get("/agents/{id}/keys/{key_id}/new")]
pub async fn show_new_key(
    req: HttpRequest,
    user: SessionUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    let (id, key_id) = path.into_inner();
    let shown = match st.show_once.take(&user.session.id_hash, &key_id) {
        Some(key) => NewKey::Show(key.to_string()),
        None => NewKey::ShownAlready,
    };
    detail_page(
        &st,
        &user,
        &id,
        None,
        FormErrors::default(),
        Some(shown),
        StatusCode::OK,
    )
    .await
}

async fn after_change(
    req: &HttpRequest,
    user: &SessionUser,
    id: &str,
    form: AgentForm,
    result: crate::error::Result<()>,
    to: &str,
) -> Result<HttpResponse, UiError> {
    let st = state::of(req);
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |()| to.to_string(),
        |errors| detail_page(&st, user, id, Some(form), errors, None, status),
    )
    .await
}

#[post("/agents/{id}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AgentForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let changes = AgentChanges {
        name: Some(form.name.trim().to_string()),
        agent_type: Some(form.agent_type.trim().to_string()),
        description: Some(form.description.trim().to_string()),
        enabled: Some(checked(&form.enabled)),
    };
    let result = agents::update(&st.audit, &user.ctx, &id, changes)
        .await
        .map(|_| ());
    after_change(&req, &user, &id, form, result, &format!("/agents/{id}")).await
}

/// Creates a key and redirects to the page that shows it, once.
#[post("/agents/{id}/keys")]
pub async fn create_key(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AgentForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let days = match form.expires_in_days.trim() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let mut errors = FormErrors::default();
                errors.fields.insert(
                    "expires_in_days".into(),
                    "must be a whole number of days".into(),
                );
                return detail_page(
                    &st,
                    &user,
                    &id,
                    Some(form),
                    errors,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
    };
    let max = st.config.api_keys.max_lifetime_days;
    match api_keys::create(
        &st.audit,
        &user.ctx,
        Owner::Agent(id.to_string()),
        form.key_name.trim().to_string(),
        days,
        max,
    )
    .await
    {
        Ok(k) => {
            // Shown by the page the redirect leads to, once: reloading it
            // neither shows the key again nor creates another.
            st.show_once
                .put(&user.session.id_hash, &k.row.id, k.key.to_string());
            Ok(see_other(&format!("/agents/{id}/keys/{}/new", k.row.id)))
        }
        Err(e) => {
            let errors = FormErrors::from_error(e)?;
            detail_page(
                &st,
                &user,
                &id,
                Some(form),
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[post("/agents/{id}/keys/{key_id}/revoke")]
pub async fn revoke_key(
    req: HttpRequest,
    user: SessionUser,
    path: web::Path<(String, String)>,
    form: web::Form<AgentForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let (id, key_id) = path.into_inner();
    let result = api_keys::revoke(&st.audit, &user.ctx, Owner::Agent(id.clone()), &key_id).await;
    after_change(
        &req,
        &user,
        &id,
        AgentForm::default(),
        result,
        &format!("/agents/{id}"),
    )
    .await
}

#[post("/agents/{id}/quarantine")]
pub async fn quarantine(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AgentForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let reason =
        Some(form.reason.trim().chars().take(512).collect::<String>()).filter(|r| !r.is_empty());
    let result = agents::quarantine(&st.audit, &user.ctx, &id, reason)
        .await
        .map(|_| ());
    after_change(
        &req,
        &user,
        &id,
        AgentForm::default(),
        result,
        &format!("/agents/{id}"),
    )
    .await
}

#[post("/agents/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<AgentForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = agents::delete(&st.audit, &user.ctx, &id).await;
    after_change(&req, &user, &id, AgentForm::default(), result, "/agents").await
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(detail)
        .service(update)
        .service(create_key)
        .service(show_new_key)
        .service(revoke_key)
        .service(quarantine)
        .service(delete);
}
