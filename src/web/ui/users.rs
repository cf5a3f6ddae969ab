//! Users pages: list and create; one user's page with edit, password
//! reset, unlock, end sessions, delete.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::UiError;
use super::forms::{checked, respond, FormErrors, ListSearch};
use super::layout::Layout;
use super::render;
use crate::identity::users::{self, NewUser, UserChanges};
use crate::rbac::Permission;
use crate::web::api::users::UserView;
use crate::web::auth::SessionUser;
use crate::web::pagination::Page;
use crate::web::state::{self, WebState};

const MANAGE: &str = Permission::UserManage.as_str();

#[derive(Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    enabled: Option<String>,
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    layout: Layout,
    users: Vec<UserView>,
    next: Option<String>,
    /// The search as typed, and how many match it (all, without one).
    q: String,
    total: i64,
    form: UserForm,
    errors: FormErrors,
}

async fn list_page(
    req: &HttpRequest,
    user: &SessionUser,
    q: &ListSearch,
    form: UserForm,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let st = state::of(req);
    user.caller().require(&st, MANAGE).await?;
    let page = q.page()?;
    let search = q.text();
    let (rows, total) = users::search(&st.db, &search, page.after.clone(), page.limit + 1).await?;
    let p = Page::from_rows(rows, &page, |u| u.id.clone(), UserView::from);
    let page = ListPage {
        layout: Layout::for_session("Users", user, "users"),
        users: p.items,
        next: p.next_cursor,
        q: search,
        total,
        form,
        errors,
    };
    render(status, &page)
}

#[get("/users")]
pub async fn list(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<ListSearch>,
) -> Result<HttpResponse, UiError> {
    list_page(
        &req,
        &user,
        &q,
        UserForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[post("/users")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut form = form.into_inner();
    let new = NewUser {
        username: form.username.trim().to_string(),
        password: Zeroizing::new(std::mem::take(&mut form.password)),
        display_name: form.display_name.trim().to_string(),
        email: Some(form.email.trim().to_string()).filter(|e| !e.is_empty()),
        enabled: true,
    };
    let result = users::create(&st.audit, &st.hasher, &user.ctx, new).await;
    let q = ListSearch::default();
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |u| format!("/users/{}", u.id),
        |errors| list_page(&req, &user, &q, form, errors, status),
    )
    .await
}

#[derive(Template)]
#[template(path = "users/detail.html")]
struct DetailPage {
    layout: Layout,
    u: UserView,
    form: UserForm,
    errors: FormErrors,
    is_self: bool,
    /// The user's second factors, by kind ("Authenticator app", ...).
    factors: Vec<&'static str>,
    /// Single sign-on is configured (the page offers to link the user).
    sso: bool,
    hub: super::hub::Hub,
}

async fn detail_page(
    st: &WebState,
    user: &SessionUser,
    id: &str,
    form: Option<UserForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    user.caller().require(st, MANAGE).await?;
    let u = UserView::from(users::get(&st.db, id).await?);
    let form = form.unwrap_or_else(|| UserForm {
        display_name: u.display_name.clone(),
        email: u.email.clone().unwrap_or_default(),
        enabled: u.enabled.then(|| "on".into()),
        ..UserForm::default()
    });
    let hub = super::hub::Hub::load(
        st,
        user,
        crate::identity::PrincipalKind::User,
        id,
        &u.username,
    )
    .await?;
    let factors = st
        .factors()
        .of_user(id)
        .await?
        .iter()
        .map(|f| f.kind.title())
        .collect();
    let page = DetailPage {
        sso: st.config.oidc.enabled(),
        factors,
        hub,
        layout: Layout::for_session(format!("User {}", u.username), user, "users"),
        is_self: u.id == user.session.user.id,
        u,
        form,
        errors,
    };
    render(status, &page)
}

#[get("/users/{id}")]
pub async fn detail(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    detail_page(&st, &user, &id, None, FormErrors::default(), StatusCode::OK).await
}

/// Runs one change from the user page: back to the page on success, the
/// page with the error next to the form otherwise.
async fn change(
    req: &HttpRequest,
    user: &SessionUser,
    id: &str,
    form: UserForm,
    result: crate::error::Result<()>,
    after: &str,
) -> Result<HttpResponse, UiError> {
    let st = state::of(req);
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    respond(
        result,
        |()| after.to_string(),
        |errors| detail_page(&st, user, id, Some(form), errors, status),
    )
    .await
}

/// The end of a button on the user's page (no fields of its own): back to
/// the page, or the page with the refusal.
async fn done(
    req: &HttpRequest,
    user: &SessionUser,
    id: &str,
    result: crate::error::Result<()>,
) -> Result<HttpResponse, UiError> {
    change(
        req,
        user,
        id,
        UserForm::default(),
        result,
        &format!("/users/{id}"),
    )
    .await
}

#[post("/users/{id}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let changes = UserChanges {
        display_name: Some(form.display_name.trim().to_string()),
        email: Some(Some(form.email.trim().to_string()).filter(|e| !e.is_empty())),
        enabled: Some(checked(&form.enabled)),
        oidc_subject: None,
    };
    let result = users::update(&st.audit, &user.ctx, &id, changes)
        .await
        .map(|_| ());
    change(&req, &user, &id, form, result, &format!("/users/{id}")).await
}

#[post("/users/{id}/password")]
pub async fn reset_password(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let mut form = form.into_inner();
    let target = users::get(&st.db, &id).await?;
    let pw = Zeroizing::new(std::mem::take(&mut form.password));
    let keep = (target.id == user.session.user.id).then(|| user.session.id_hash.clone());
    let result =
        users::set_password(&st.audit, &st.hasher, &user.ctx, &target, pw, None, keep).await;
    change(&req, &user, &id, form, result, &format!("/users/{id}")).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

#[post("/users/{id}/unlock")]
pub async fn unlock(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = users::unlock(&st.audit, &user.ctx, &id).await;
    done(&req, &user, &id, result).await
}

#[post("/users/{id}/sessions/revoke")]
pub async fn revoke_sessions(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = users::revoke_sessions(&st.audit, &user.ctx, &id)
        .await
        .map(|_| ());
    done(&req, &user, &id, result).await
}

#[derive(Deserialize)]
pub struct SsoForm {
    #[serde(default)]
    sso_subject: String,
    #[serde(default)]
    csrf_token: String,
}

/// Links the user to a subject of the sign-on provider (empty: unlinks).
#[post("/users/{id}/sso")]
pub async fn link_sso(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<SsoForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let sub = form.sso_subject.trim();
    let result = async {
        let subject = match sub {
            "" => None,
            sub => Some(crate::identity::oidc::linked_subject(&st.config.oidc, sub)?),
        };
        let changes = UserChanges {
            display_name: None,
            email: None,
            enabled: None,
            oidc_subject: Some(subject),
        };
        users::update(&st.audit, &user.ctx, &id, changes)
            .await
            .map(|_| ())
    }
    .await;
    done(&req, &user, &id, result).await
}

/// Clears the user's second factors and recovery codes (a lost device)
/// and ends their sessions.
#[post("/users/{id}/factors/reset")]
pub async fn reset_factors(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = st.factors().reset(&user.ctx, &id).await.map(|_| ());
    done(&req, &user, &id, result).await
}

#[post("/users/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let result = users::delete(&st.audit, &user.ctx, &id).await;
    change(&req, &user, &id, UserForm::default(), result, "/users").await
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(detail)
        .service(update)
        .service(reset_password)
        .service(unlock)
        .service(revoke_sessions)
        .service(reset_factors)
        .service(link_sso)
        .service(delete);
}
