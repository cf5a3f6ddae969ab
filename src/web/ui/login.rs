//! The login page, the login form post and logout.

use actix_web::cookie::time::Duration;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::UiError;
use super::layout::Layout;
use super::{render, see_other};
use crate::crypto::random;
use crate::identity::login::{self, LoginOutcome};
use crate::identity::sessions;
use crate::identity::signin;
use crate::identity::Principal;
use crate::web::auth::{unfinished_path, AnySession, MaybeSession};
use crate::web::context::audit_context;
use crate::web::cookies;
use crate::web::csrf;
use crate::web::state::{self, WebState};

/// Shown for every failed login, whatever the reason.
const FAILED: &str = "Sign-in failed. Check your user name and password. \
                      After repeated failures an account is locked for a while.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    username: String,
    error: Option<&'static str>,
    /// Where to go after signing in (a local path), if not the dashboard.
    next: Option<String>,
    /// Passkeys work here (the page offers a password-less sign-in).
    passkeys: bool,
    /// "Sign in with …" (single sign-on), when configured.
    sso: Option<String>,
}

/// `path` when it is a path of this site to return to after signing in:
/// absolute, not protocol-relative (`//host`, `/\host`), no control
/// characters, at most 2048 bytes, and not a sign-in page or logout.
/// Anything else would make the login page an open redirect.
pub fn local_path(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 2048
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && !path
            .split('?')
            .next()
            .is_some_and(|p| p == "/login" || p.starts_with("/login/") || p == "/logout");
    ok.then_some(path)
}

/// The pre-login nonce cookie lives this long: a login form older than
/// this must be reloaded.
const NONCE_TTL: Duration = Duration::hours(1);

fn login_page(
    st: &WebState,
    nonce: &str,
    status: StatusCode,
    username: String,
    error: Option<&'static str>,
    next: Option<String>,
) -> Result<HttpResponse, UiError> {
    let page = LoginPage {
        layout: Layout::new(
            "Sign in",
            None,
            csrf::login_token(&st.csrf_key, nonce),
            "login",
        ),
        username,
        error,
        next,
        passkeys: st.passkeys.unavailable().is_none(),
        sso: st.sso.as_ref().map(|s| s.display_name().to_string()),
    };
    let mut res = render(status, &page)?;
    res.add_cookie(
        &st.cookies
            .build(cookies::LOGIN_NONCE, nonce.to_string(), Some(NONCE_TTL)),
    )
    .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    pub next: Option<String>,
}

#[get("/login")]
pub async fn show(
    req: HttpRequest,
    session: MaybeSession,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, UiError> {
    let next = q.into_inner().next.filter(|n| local_path(n).is_some());
    if session.0.is_some() {
        return Ok(see_other(next.as_deref().unwrap_or("/")));
    }
    let st = state::of(&req);
    let nonce = st
        .cookies
        .read(&req, cookies::LOGIN_NONCE)
        .filter(|n| n.len() == 43)
        .unwrap_or_else(random::token);
    login_page(&st, &nonce, StatusCode::OK, String::new(), None, next)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

#[post("/login")]
pub async fn submit(req: HttpRequest, form: web::Form<LoginForm>) -> Result<HttpResponse, UiError> {
    let st = sign_in_budget(&req)?;
    let ip = state::client_ip(&req);

    let form = form.into_inner();
    let next = local_path(&form.next).map(str::to_string);
    let nonce = st
        .cookies
        .read(&req, cookies::LOGIN_NONCE)
        .unwrap_or_default();
    let expected = csrf::login_token(&st.csrf_key, &nonce);
    if nonce.is_empty() || csrf::is_cross_site(&req) || !csrf::matches(&expected, &form.csrf_token)
    {
        return Err(UiError::Csrf);
    }

    let username: String = form.username.trim().chars().take(256).collect();
    let password = Zeroizing::new(form.password);
    let ctx = audit_context(&req, None);
    match login::login(
        &st.db,
        &st.audit,
        &st.hasher,
        st.lockout_policy,
        &ctx,
        &username,
        password,
    )
    .await?
    {
        LoginOutcome::Success(user) => {
            let stage = signin::stage_after_password(
                &st.factors(),
                &st.config.login.require_second_factor,
                &user,
            )
            .await?;
            let to = match unfinished_path(stage) {
                None => next.unwrap_or_else(|| "/".into()),
                Some(step) => with_next(step, next.as_deref()),
            };
            open_session(&st, &req, &user, stage, "password", &to).await
        }
        LoginOutcome::Failure { reason, user_id } => {
            tracing::warn!(user = %username, user_id = user_id.as_deref().unwrap_or("-"), reason = reason.as_str(), %ip, "login failed");
            login_page(
                &st,
                &nonce,
                StatusCode::UNAUTHORIZED,
                username,
                Some(FAILED),
                next,
            )
        }
    }
}

/// The state, once the client's sign-in attempts are within
/// `login.rate_limit_per_minute` (every sign-in step counts).
pub fn sign_in_budget(
    req: &HttpRequest,
) -> Result<actix_web::web::Data<WebState>, crate::error::Error> {
    let st = state::of(req);
    st.login_limiter
        .check(state::client_ip(req))
        .map_err(|retry_after_secs| crate::error::Error::RateLimited { retry_after_secs })?;
    Ok(st)
}

/// Opens a session for `user`, who just proved who they are by `method`,
/// at `stage`, and sends the browser on to `to`.
pub async fn open_session(
    st: &WebState,
    req: &HttpRequest,
    user: &crate::db::users::UserRow,
    stage: sessions::Stage,
    method: &str,
    to: &str,
) -> Result<HttpResponse, UiError> {
    let principal = Principal::of_user(user);
    let ctx = audit_context(req, Some(&principal));
    let session =
        sessions::create(&st.audit, &ctx, &user.id, st.session_policy, stage, method).await?;
    tracing::info!(user = %user.username, user_id = %user.id, method, stage = stage.as_str(), "sign-in step passed");
    signed_in(st, to, &session, stage)
}

/// `path`, carrying where to go once the sign-in is done.
pub fn with_next(path: &str, next: Option<&str>) -> String {
    match next {
        Some(n) => format!(
            "{path}?next={}",
            percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => path.to_string(),
    }
}

/// The answer that hands the browser its (new) session cookie and sends
/// it on to `to`; the pre-login nonce goes. A half-done sign-in's cookie
/// lives as long as the half-done session.
pub fn signed_in(
    st: &WebState,
    to: &str,
    session: &sessions::NewSession,
    stage: sessions::Stage,
) -> Result<HttpResponse, UiError> {
    let lifetime = match stage {
        sessions::Stage::Full => st.session_policy.absolute_ms,
        _ => sessions::PENDING_MS,
    };
    let mut res = see_other(to);
    let cookie = st.cookies.build(
        cookies::SESSION,
        session.token.to_string(),
        Some(Duration::milliseconds(lifetime)),
    );
    let internal = |e| UiError::Internal(crate::error::Error::internal(e));
    res.add_cookie(&cookie).map_err(internal)?;
    res.add_cookie(&st.cookies.removal(cookies::LOGIN_NONCE))
        .map_err(internal)?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// Ends a session, also a half-done sign-in (its "Cancel").
#[post("/logout")]
pub async fn logout(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    sessions::logout(&st.audit, &user.ctx, &user.session).await?;
    tracing::info!(user = %user.session.user.username, "logout");
    let mut res = see_other("/login");
    res.add_cookie(&st.cookies.removal(cookies::SESSION))
        .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
    Ok(res)
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(show).service(submit).service(logout);
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        for ok in [
            "/",
            "/alerts?state=all",
            "/monitors/abc",
            "/access?permission=a%3Ab",
        ] {
            assert_eq!(local_path(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "alerts",
            "//evil.example/",
            "/\\evil.example/",
            "https://evil.example/",
            "/x\nSet-Cookie: a=b",
            "/a\\b",
            "/login",
            "/login?next=/",
            "/login/second-factor",
            "/logout",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
