//! The sign-in's second step (`/login/second-factor`): after a right
//! password, a code from the authenticator app or a recovery code (or a
//! passkey) before the session becomes full.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::layout::Layout;
use super::login::{local_path, sign_in_budget, signed_in, LoginQuery};
use super::{render, see_other};
use crate::identity::sessions::{self, Stage};
use crate::identity::signin::{self, CodeCheck};
use crate::web::auth::{unfinished_path, AnySession};
use crate::web::cookies;
use crate::web::state::{self, WebState};

#[derive(Template)]
#[template(path = "second_factor.html")]
struct StepPage {
    layout: Layout,
    username: String,
    error: Option<&'static str>,
    next: Option<String>,
    /// The user has a passkey (and passkeys work here).
    passkey: bool,
    /// The user has an authenticator app.
    totp: bool,
}

pub async fn step_page(
    st: &WebState,
    user: &AnySession,
    status: StatusCode,
    error: Option<&'static str>,
    next: Option<String>,
) -> Result<HttpResponse, UiError> {
    use crate::db::factors::FactorKind;
    let factors = st.factors().of_user(&user.session.user.id).await?;
    let has = |kind| factors.iter().any(|f| f.kind == kind);
    let page = StepPage {
        passkey: st.passkeys.unavailable().is_none() && has(FactorKind::Passkey),
        totp: has(FactorKind::Totp),
        layout: Layout::new("Second factor", None, user.csrf.clone(), "login"),
        username: user.session.user.username.clone(),
        error,
        next,
    };
    render(status, &page)
}

/// Where a session not at this step belongs.
fn elsewhere(stage: Stage, next: Option<&str>) -> Option<HttpResponse> {
    match stage {
        Stage::SecondFactor => None,
        Stage::Full => Some(see_other(next.unwrap_or("/"))),
        other => unfinished_path(other).map(see_other),
    }
}

#[get("/login/second-factor")]
pub async fn show(
    req: HttpRequest,
    user: AnySession,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, UiError> {
    let next = q.into_inner().next.filter(|n| local_path(n).is_some());
    if let Some(res) = elsewhere(user.session.stage, next.as_deref()) {
        return Ok(res);
    }
    step_page(&state::of(&req), &user, StatusCode::OK, None, next).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

#[post("/login/second-factor")]
pub async fn submit(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, UiError> {
    let st = sign_in_budget(&req)?;
    user.check_csrf(&req, &form.csrf_token)?;
    let next = local_path(&form.next).map(str::to_string);
    if let Some(res) = elsewhere(user.session.stage, next.as_deref()) {
        return Ok(res);
    }
    let code: String = form.code.chars().take(64).collect();
    let check = signin::check_code(
        &st.factors(),
        st.lockout_policy,
        &user.ctx,
        &user.session.user,
        &code,
    )
    .await?;
    match check {
        CodeCheck::Accepted(method) => finish(&st, &user, method, next.as_deref()).await,
        CodeCheck::Refused => {
            step_page(
                &st,
                &user,
                StatusCode::UNAUTHORIZED,
                Some("That code is wrong or was already used. Codes from the app change every 30 seconds; each works once."),
                next,
            )
            .await
        }
        CodeCheck::Locked => {
            sessions::destroy(&st.db, &user.session.id_hash).await?;
            let mut res = super::error::error_page(
                StatusCode::UNAUTHORIZED,
                "Too many wrong codes: the account is locked for a while. Sign in again later.",
                None,
            );
            res.add_cookie(&st.cookies.removal(cookies::SESSION))
                .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
            Ok(res)
        }
    }
}

/// Makes the half-done sign-in full (a new session cookie) and goes on.
pub async fn finish(
    st: &WebState,
    user: &AnySession,
    method: &str,
    next: Option<&str>,
) -> Result<HttpResponse, UiError> {
    let session = sessions::upgrade(
        &st.audit,
        &user.ctx,
        &user.session,
        st.session_policy,
        method,
    )
    .await?;
    tracing::info!(user = %user.session.user.username, method, "login succeeded");
    signed_in(st, next.unwrap_or("/"), &session, Stage::Full)
}

/// Registers this page's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(show).service(submit);
}
