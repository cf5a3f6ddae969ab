//! Passkey ceremonies in the pages: each starts with a small JSON request
//! for the WebAuthn options (the page's script hands them to the browser)
//! and finishes with an ordinary form post carrying the credential, so
//! the result is a page or a redirect like any sign-in step.
//!
//! * `/account/second-factor/passkey[/options]`: register one (also for a
//!   sign-in that must enrol).
//! * `/login/second-factor/passkey[/options]`: the second step.
//! * `/login/passkey[/options]`: sign in without a password.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::account::{enrolled, enrolling};
use super::error::UiError;
use super::login::{local_path, open_session, sign_in_budget};
use super::second_factor::{finish, step_page};
use crate::identity::login;
use crate::identity::passkeys::Started;
use crate::identity::sessions::{self, Stage};
use crate::identity::PrincipalKind;
use crate::web::auth::AnySession;
use crate::web::context::audit_context;
use crate::web::cookies;
use crate::web::csrf;
use crate::web::problem::ApiError;
use crate::web::state::{self, WebState};

#[derive(Deserialize)]
pub struct OptionsForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Serialize)]
struct Options {
    ceremony: String,
    #[serde(rename = "publicKey")]
    public_key: serde_json::Value,
}

fn options(started: Started) -> HttpResponse {
    HttpResponse::Ok().json(Options {
        ceremony: started.ceremony,
        public_key: started.options,
    })
}

#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

/// A credential is a few kilobytes at most.
const MAX_CREDENTIAL: usize = 64 * 1024;

fn credential(form: &FinishForm) -> Result<&str, UiError> {
    if form.credential.is_empty() || form.credential.len() > MAX_CREDENTIAL {
        return Err(ApiError::from(crate::error::Error::field(
            "credential",
            "no passkey answer in the form (this needs JavaScript)",
        ))
        .into());
    }
    Ok(&form.credential)
}

/// A ceremony asked for without the page's valid form token (or from a
/// page of another step).
fn stale_form() -> ApiError {
    ApiError::forbidden("this page's form token is missing or stale; reload the page")
        .with_code("csrf_failed")
}

// ---- registration ------------------------------------------------------

#[post("/account/second-factor/passkey/options")]
pub async fn register_options(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<OptionsForm>,
) -> Result<HttpResponse, ApiError> {
    if user.check_csrf(&req, &form.csrf_token).is_err() || enrolling(&user).is_err() {
        return Err(stale_form());
    }
    let st = state::of(&req);
    let started = st
        .passkeys
        .start_registration(&st.factors(), &user.session.user, &form.label)
        .await?;
    Ok(options(started))
}

#[post("/account/second-factor/passkey")]
pub async fn register(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<FinishForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    enrolling(&user)?;
    let st = state::of(&req);
    st.passkeys
        .finish_registration(
            &st.factors(),
            &user.ctx,
            &user.session.user,
            &form.ceremony,
            credential(&form)?,
        )
        .await
        .map_err(ApiError::from)?;
    let next = local_path(&form.next).map(str::to_string);
    enrolled(&st, &user, "password+passkey", next).await
}

// ---- second step -------------------------------------------------------

#[post("/login/second-factor/passkey/options")]
pub async fn step_options(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<OptionsForm>,
) -> Result<HttpResponse, ApiError> {
    if user.check_csrf(&req, &form.csrf_token).is_err() || user.session.stage != Stage::SecondFactor
    {
        return Err(stale_form());
    }
    let st = state::of(&req);
    let started = st
        .passkeys
        .start_second_factor(&st.factors(), &user.session.user)
        .await?;
    Ok(options(started))
}

#[post("/login/second-factor/passkey")]
pub async fn step(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<FinishForm>,
) -> Result<HttpResponse, UiError> {
    let st = sign_in_budget(&req)?;
    user.check_csrf(&req, &form.csrf_token)?;
    let next = local_path(&form.next).map(str::to_string);
    if user.session.stage != Stage::SecondFactor {
        return Err(UiError::SignInUnfinished("/login/second-factor"));
    }
    let factors = st.factors();
    let u = &user.session.user;
    let ok = st
        .passkeys
        .finish_second_factor(&factors, &user.ctx, u, &form.ceremony, credential(&form)?)
        .await
        .map_err(ApiError::from)?;
    if ok {
        return finish(&st, &user, "password+passkey", next.as_deref()).await;
    }
    if login::second_factor_failed(&st.db, &st.audit, st.lockout_policy, &user.ctx, &u.id).await? {
        sessions::destroy(&st.db, &user.session.id_hash).await?;
        return Err(ApiError::unauthenticated(
            "Too many failed second factors: the account is locked for a while.",
        )
        .into());
    }
    step_page(
        &st,
        &user,
        StatusCode::UNAUTHORIZED,
        Some("The passkey was refused. Try again, or use a code."),
        next,
    )
    .await
}

// ---- sign-in without a password ----------------------------------------

/// The login form's token: bound to the pre-login nonce cookie.
fn check_login_csrf(req: &HttpRequest, submitted: &str) -> bool {
    let st = state::of(req);
    let nonce = st
        .cookies
        .read(req, cookies::LOGIN_NONCE)
        .unwrap_or_default();
    !nonce.is_empty()
        && !csrf::is_cross_site(req)
        && csrf::matches(&csrf::login_token(&st.csrf_key, &nonce), submitted)
}

#[post("/login/passkey/options")]
pub async fn sign_in_options(
    req: HttpRequest,
    form: web::Form<OptionsForm>,
) -> Result<HttpResponse, ApiError> {
    let st = sign_in_budget(&req)?;
    if !check_login_csrf(&req, &form.csrf_token) {
        return Err(stale_form());
    }
    Ok(options(st.passkeys.start_sign_in()?))
}

#[post("/login/passkey")]
pub async fn sign_in(
    req: HttpRequest,
    form: web::Form<FinishForm>,
) -> Result<HttpResponse, UiError> {
    let st = sign_in_budget(&req)?;
    if !check_login_csrf(&req, &form.csrf_token) {
        return Err(UiError::Csrf);
    }
    let next = local_path(&form.next).map(str::to_string);
    let anonymous = audit_context(&req, None);
    let found = st
        .passkeys
        .finish_sign_in(
            &st.factors(),
            &anonymous,
            &form.ceremony,
            credential(&form)?,
        )
        .await
        .map_err(ApiError::from)?;
    let user = match found {
        Ok(user) if user.enabled && !login::is_locked(&user) => user,
        Ok(user) => {
            let why = "account disabled or locked".to_string();
            return Err(refused(&st, &anonymous, why, Some(user.id)).await);
        }
        Err((reason, user_id)) => return Err(refused(&st, &anonymous, reason, user_id).await),
    };
    // A passkey with user verification is both factors at once.
    let to = next.as_deref().unwrap_or("/");
    open_session(&st, &req, &user, Stage::Full, "passkey", to).await
}

/// A refused password-less sign-in: audited, counted toward the lockout
/// of the account the passkey named, and one message for every reason.
async fn refused(
    st: &WebState,
    anonymous: &crate::audit::Context,
    reason: String,
    user_id: Option<String>,
) -> UiError {
    let mut ev = anonymous
        .event("auth.login", crate::audit::Outcome::Failure)
        .detail("method", "passkey")
        .reason(reason);
    if let Some(id) = &user_id {
        ev = ev.target(PrincipalKind::User.as_str(), id);
    }
    if let Err(e) = st.audit.record(ev).await {
        return e.into();
    }
    if let Some(id) = &user_id {
        if let Err(e) =
            login::second_factor_failed(&st.db, &st.audit, st.lockout_policy, anonymous, id).await
        {
            return e.into();
        }
    }
    ApiError::unauthenticated("Sign-in with the passkey failed. Use your password, or try again.")
        .into()
}

/// Registers this module's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(register_options)
        .service(register)
        .service(step_options)
        .service(step)
        .service(sign_in_options)
        .service(sign_in);
}
