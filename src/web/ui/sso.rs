//! Single sign-on pages: `/login/oidc` sends the browser to the provider
//! (binding the sign-in to it with a cookie holding the `state`), and
//! `/login/oidc/callback` takes the provider's answer, verified by
//! `identity::oidc`, to a full session.

use actix_web::cookie::time::Duration;
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::UiError;
use super::login::{local_path, open_session, sign_in_budget, LoginQuery};
use crate::audit::Outcome;
use crate::identity::oidc::{self, SignOn};
use crate::identity::sessions::Stage;
use crate::web::context::audit_context;
use crate::web::cookies;
use crate::web::csrf;
use crate::web::problem::ApiError;
use crate::web::state::WebState;

fn sso(st: &WebState) -> Result<&oidc::Sso, UiError> {
    st.sso.as_deref().ok_or_else(|| {
        ApiError::from(crate::error::Error::NotFound(
            "single sign-on (it is not configured)".into(),
        ))
        .into()
    })
}

#[get("/login/oidc")]
pub async fn start(req: HttpRequest, q: web::Query<LoginQuery>) -> Result<HttpResponse, UiError> {
    let st = sign_in_budget(&req)?;
    let next = q.into_inner().next.filter(|n| local_path(n).is_some());
    let (url, state) = sso(&st)?.start(next).await.map_err(ApiError::from)?;
    let mut res = super::see_other(&url);
    res.add_cookie(
        &st.cookies
            .build_lax(cookies::OIDC_STATE, state, Duration::minutes(10)),
    )
    .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// One message for every refusal; the reason goes to the audit trail.
const FAILED: &str = "Single sign-on failed. Try again, or sign in with your password.";

#[get("/login/oidc/callback")]
pub async fn callback(req: HttpRequest, q: web::Query<Callback>) -> Result<HttpResponse, UiError> {
    let st = sign_in_budget(&req)?;
    let sso = sso(&st)?;
    let q = q.into_inner();
    let anonymous = audit_context(&req, None);
    let bound = st
        .cookies
        .read(&req, cookies::OIDC_STATE)
        .unwrap_or_default();
    let state = q.state.clone().unwrap_or_default();
    // What the provider (or whoever sent the browser here) says is kept
    // short and printable in the records.
    let printable =
        |s: &str, n: usize| -> String { s.chars().filter(|c| !c.is_control()).take(n).collect() };
    let refusal = if let Some(e) = &q.error {
        Some(format!(
            "the provider answered {}: {}",
            printable(e, 64),
            printable(q.error_description.as_deref().unwrap_or(""), 200)
        ))
    } else if state.is_empty() || bound.is_empty() || !csrf::matches(&bound, &state) {
        Some("the state does not match this browser's sign-in (a forged or stray callback)".into())
    } else {
        None
    };
    let identity = match refusal {
        Some(why) => Err(why),
        None => match sso
            .finish(&state, q.code.as_deref().unwrap_or_default())
            .await
            .map_err(ApiError::from)?
        {
            Ok(identity) => Ok(identity),
            Err(r) => Err(r.0),
        },
    };
    let outcome = match identity {
        Ok(identity) => {
            match oidc::sign_on(sso, &st.db, &st.audit, &st.hasher, &anonymous, &identity).await? {
                SignOn::User(user) => Ok((user, identity.next)),
                SignOn::Refused(why) => Err(why),
            }
        }
        Err(why) => Err(why),
    };
    let (user, next) = match outcome {
        Ok(found) => found,
        Err(why) => {
            st.audit
                .record(
                    anonymous
                        .event("auth.login", Outcome::Failure)
                        .detail("method", "oidc")
                        .reason(why.clone()),
                )
                .await?;
            tracing::warn!(reason = %why, "single sign-on refused");
            let mut res = super::error::error_page(StatusCode::UNAUTHORIZED, FAILED, None);
            res.add_cookie(&st.cookies.removal(cookies::OIDC_STATE))
                .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
            return Ok(res);
        }
    };
    // The provider's own policy (its second factors) governs its sign-ins.
    let to = next.as_deref().unwrap_or("/");
    let mut res = open_session(&st, &req, &user, Stage::Full, "oidc", to).await?;
    res.add_cookie(&st.cookies.removal(cookies::OIDC_STATE))
        .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
    Ok(res)
}

/// Registers this module's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(start).service(callback);
}
