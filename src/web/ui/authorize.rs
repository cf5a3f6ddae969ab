//! `/oauth/authorize`: the authorization-code flow's browser half. A
//! signed-out user signs in first and comes back; then the consent page
//! (Allow / Deny), unless the same consent was given before; then the
//! redirect with `code`, `state` and `iss` (RFC 9207).
//!
//! The decisions are `oauth::authorize`'s; this module reads the request,
//! shows the page and sends the redirect.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::layout::Layout;
use super::{render, see_other};
use crate::db::oauth_clients::{ClientRow, Registration};
use crate::identity::Principal;
use crate::oauth::authorize::{self as flow, AuthorizeParams, PageError, RedirectError};
use crate::oauth::redirect;
use crate::tokens::oauth::OAuthError;
use crate::web::auth::{MaybeSession, SessionUser};
use crate::web::headers::CSP;
use crate::web::problem::ApiError;
use crate::web::state::{self, WebState};

/// A request that passed every check that needs no user.
struct Valid {
    client: ClientRow,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    requested: Vec<String>,
    /// The audience: agentry's API or a registered MCP server's URI.
    resource: String,
    allows: Option<Vec<String>>,
}

enum Refusal {
    Page(String),
    Redirect(String),
}

fn page_error(message: impl Into<String>) -> UiError {
    UiError::Api(ApiError::bad_request(
        "invalid_authorization_request",
        message,
    ))
}

/// Checks the client and redirect (refusals shown as a page), then the
/// rest (refusals sent back to the client).
async fn validate(
    req: &HttpRequest,
    st: &WebState,
    p: &AuthorizeParams,
) -> Result<Result<Valid, Refusal>, UiError> {
    let Some(client_id) = p.client_id.as_deref() else {
        return Ok(Err(Refusal::Page("client_id is required".into())));
    };
    let ctx = crate::web::context::audit_context(req, None);
    let found = st
        .oauth_clients
        .resolve(&ctx, client_id, st.document_policy())
        .await?;
    let client = match found {
        Ok(Some(c)) if c.enabled => c,
        Ok(Some(_)) => return Ok(Err(Refusal::Page("this client is disabled".into()))),
        Ok(None) => return Ok(Err(Refusal::Page("no client has this client_id".into()))),
        Err(why) => {
            return Ok(Err(Refusal::Page(format!(
                "the client's metadata document cannot be used: {why}"
            ))))
        }
    };
    let redirect_uri = match flow::redirect_uri(&client, p.redirect_uri.as_deref()) {
        Ok(u) => u,
        Err(PageError(m)) => return Ok(Err(Refusal::Page(m))),
    };
    let issuer = st.issuer_url.as_str();
    let back = |e: RedirectError| {
        Refusal::Redirect(flow::error_redirect(
            &redirect_uri,
            &e,
            p.state.as_deref(),
            issuer,
        ))
    };
    let checked = match flow::check(p) {
        Ok(c) => c,
        Err(e) => return Ok(Err(back(e))),
    };
    let target = match st.issuer().target(p.resource.as_deref()).await {
        Ok(t) => t,
        Err(OAuthError::Server(e)) => return Err(e.into()),
        Err(e) => {
            return Ok(Err(back(RedirectError::new(
                "invalid_target",
                e.description(),
            ))))
        }
    };
    Ok(Ok(Valid {
        client,
        redirect_uri: redirect_uri.clone(),
        state: p.state.clone(),
        code_challenge: checked.code_challenge,
        requested: checked.requested,
        resource: target.aud,
        allows: target.allows,
    }))
}

/// The scope this user can grant for `v` (sorted, space-separated), or
/// the `invalid_scope` redirect when it is empty.
async fn grantable(
    st: &WebState,
    user: &SessionUser,
    v: &Valid,
) -> Result<Result<String, HttpResponse>, UiError> {
    let principal = Principal::of_user(&user.session.user);
    let held = crate::rbac::token_patterns_of(&st.policy, &st.db, &st.audit, &principal).await?;
    let scopes = flow::grantable(&held, &v.requested, v.allows.as_deref());
    if scopes.is_empty() {
        let e = RedirectError::new(
            "invalid_scope",
            "the user holds none of the requested permissions for this resource",
        );
        return Ok(Err(send_back(v, st, e)));
    }
    Ok(Ok(scopes.join(" ")))
}

/// The redirect that carries a new code.
async fn issue(
    st: &WebState,
    user: &SessionUser,
    v: &Valid,
    scope: &str,
) -> Result<HttpResponse, UiError> {
    let grants = st.grants();
    let code = grants
        .issue_code(
            &user.ctx,
            &user.session.user.id,
            &v.client,
            &v.resource,
            scope,
            &v.redirect_uri,
            &v.code_challenge,
        )
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &v.state {
        params.push(("state", s));
    }
    params.push(("iss", st.issuer_url.as_str()));
    Ok(see_other(&flow::redirect_with(&v.redirect_uri, &params)))
}

fn send_back(v: &Valid, st: &WebState, e: RedirectError) -> HttpResponse {
    see_other(&flow::error_redirect(
        &v.redirect_uri,
        &e,
        v.state.as_deref(),
        st.issuer_url.as_str(),
    ))
}

/// How the consent page describes where a client came from.
fn provenance(c: &ClientRow) -> String {
    match c.registration {
        Registration::Admin => "registered by an administrator".into(),
        Registration::MetadataDocument => format!(
            "identified by its metadata document at {}",
            url::Url::parse(&c.id)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| c.id.clone())
        ),
        Registration::Dynamic => format!(
            "registered dynamically from {} at {}, unverified",
            c.registered_from.as_deref().unwrap_or("an unknown address"),
            crate::timefmt::rfc3339(c.created_at)
        ),
    }
}

#[derive(Template)]
#[template(path = "authorize.html")]
struct ConsentPage {
    layout: Layout,
    client_name: String,
    provenance: String,
    redirect_host: String,
    resource_name: String,
    resource: String,
    scopes: Vec<String>,
    p: AuthorizeParams,
}

async fn consent_page(
    st: &WebState,
    user: &SessionUser,
    v: &Valid,
    p: AuthorizeParams,
    scopes: Vec<String>,
) -> Result<HttpResponse, UiError> {
    let resource_name = if v.resource == st.issuer_url.as_str() {
        "agentry's API".to_string()
    } else {
        match st.mcp_servers.by_resource(&v.resource).await? {
            Some(s) => s.name,
            None => v.resource.clone(),
        }
    };
    let redirect_host = url::Url::parse(&v.redirect_uri)
        .ok()
        .map(|u| match u.host_str() {
            Some(h) => h.to_string(),
            None => format!("{}:", u.scheme()),
        })
        .unwrap_or_default();
    let page = ConsentPage {
        layout: Layout::for_session("Authorize access", user, ""),
        client_name: v.client.name.clone(),
        provenance: provenance(&v.client),
        redirect_host,
        resource_name,
        resource: v.resource.clone(),
        scopes,
        p,
    };
    let mut res = render(StatusCode::OK, &page)?;
    // The answer to this form is a redirect to the client: Chromium
    // enforces form-action on every hop of it, so the client's origin (or
    // private-use scheme) is allowed here, and nowhere else.
    if let Some(source) = redirect::form_action_source(&v.redirect_uri) {
        let csp = CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {source}"),
        );
        if let Ok(value) = header::HeaderValue::from_str(&csp) {
            res.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    Ok(res)
}

/// The authorization endpoint shares the token endpoint's per-address
/// budget (`tokens.rate_limit_per_minute`).
fn limited(st: &WebState, req: &HttpRequest) -> Result<(), UiError> {
    st.token_limiter
        .check(state::client_ip(req))
        .map_err(|retry_after_secs| UiError::RateLimited { retry_after_secs })
}

fn refusal_response(r: Refusal) -> Result<HttpResponse, UiError> {
    match r {
        Refusal::Page(m) => Err(page_error(m)),
        Refusal::Redirect(to) => Ok(see_other(&to)),
    }
}

#[get("/oauth/authorize")]
pub async fn authorize(
    req: HttpRequest,
    session: MaybeSession,
    q: Result<web::Query<AuthorizeParams>, actix_web::Error>,
) -> Result<HttpResponse, UiError> {
    let st = state::of(&req);
    limited(&st, &req)?;
    let p = q
        .map_err(|_| page_error("the authorization request cannot be parsed"))?
        .into_inner();
    let v = match validate(&req, &st, &p).await? {
        Ok(v) => v,
        Err(r) => return refusal_response(r),
    };
    let Some(user) = session.0 else {
        let next = req.uri().to_string();
        return Err(UiError::LoginRequired {
            next: crate::web::ui::login::local_path(&next).map(str::to_string),
        });
    };
    let scope = match grantable(&st, &user, &v).await? {
        Ok(scope) => scope,
        Err(back) => return Ok(back),
    };
    let prompt = p.prompt.as_deref().unwrap_or("");
    let grants = st.grants();
    let remembered = grants
        .consent(&user.session.user.id, &v.client.id, &v.resource, &scope)
        .await?
        .is_some();
    if remembered && !prompt.split(' ').any(|x| x == "consent") {
        return issue(&st, &user, &v, &scope).await;
    }
    if prompt.split(' ').any(|x| x == "none") {
        let e = RedirectError::new("consent_required", "the user has not allowed this yet");
        return Ok(send_back(&v, &st, e));
    }
    consent_page(
        &st,
        &user,
        &v,
        p,
        scope.split(' ').map(str::to_string).collect(),
    )
    .await
}

/// The consent form: the request's parameters again, the CSRF token and
/// the decision.
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    p: AuthorizeParams,
}

#[post("/oauth/authorize")]
pub async fn decide(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    limited(&st, &req)?;
    let form = form.into_inner();
    let v = match validate(&req, &st, &form.p).await? {
        Ok(v) => v,
        Err(r) => return refusal_response(r),
    };
    match form.decision.as_str() {
        "allow" => match grantable(&st, &user, &v).await? {
            Ok(scope) => issue(&st, &user, &v, &scope).await,
            Err(back) => Ok(back),
        },
        "deny" => {
            let grants = st.grants();
            grants
                .record_denial(&user.ctx, &v.client, &v.resource)
                .await?;
            let e = RedirectError::new("access_denied", "the user denied the request");
            Ok(send_back(&v, &st, e))
        }
        _ => Err(page_error("decision must be allow or deny")),
    }
}

/// Registers this page's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(authorize).service(decide);
}
