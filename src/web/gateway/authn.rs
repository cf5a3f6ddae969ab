//! Who sends a message to `/mcp/{name}`: an access token whose `aud` is
//! this server's resource URI, or an `agk_` API key. A missing or refused
//! credential is answered 401 with the challenge that sends a stock MCP
//! client to the server's protected resource metadata (RFC 9728), and
//! recorded like every refused credential.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use crate::audit::Outcome;
use crate::identity::principals::PrincipalState;
use crate::identity::{api_keys, Principal};
use crate::mcp::gateway::{Route, Who};
use crate::rbac;
use crate::tokens::jwt;
use crate::web::auth::{bearer_credential, record_refusal};
use crate::web::context::audit_context;
use crate::web::gateway::jsonrpc;
use crate::web::problem::ApiError;
use crate::web::state::WebState;

/// An authenticated sender.
pub struct Sender {
    pub principal: Principal,
    pub who: Who,
    /// The OAuth client the token was issued to.
    pub client_id: Option<String>,
    /// The token's `jti` (none for an API key).
    pub jti: Option<String>,
    /// The access token itself (none for an API key): what the gateway
    /// exchanges when the upstream takes a delegated token.
    pub token: Option<String>,
}

/// A credential that holds.
enum Checked {
    Key(Principal),
    Token(Arc<jwt::Claims>, Arc<PrincipalState>),
}

/// Why a credential was refused: the audit reason and, for a key, its
/// public id.
type Refused = (&'static str, Option<String>);

/// Checks a bearer `credential` (`None`: the header is not `Bearer …`): an
/// API key, or an access token for `audience`.
async fn check(
    st: &WebState,
    credential: Option<&str>,
    audience: &str,
) -> crate::error::Result<Result<Checked, Refused>> {
    Ok(match credential {
        None => Err(("malformed_authorization_header", None)),
        Some(c) if c.starts_with(api_keys::PREFIX) => {
            match api_keys::authenticate(&st.key_lookup(), c).await? {
                api_keys::KeyCheck::Valid { principal, .. } => Ok(Checked::Key(principal)),
                api_keys::KeyCheck::Refused { reason, key_id } => Err((reason.as_str(), key_id)),
            }
        }
        Some(c) if c.matches('.').count() == 2 => {
            match jwt::verify(&st.issuer().verify_context(), c, audience).await? {
                Ok((claims, state)) => Ok(Checked::Token(claims, state)),
                Err(f) => Err((f.as_str(), None)),
            }
        }
        Some(_) => Err(("unrecognised_credential", None)),
    })
}

/// Whether `credential` (a token for `audience`, or an API key) is still
/// good: not revoked, its principal not disabled or quarantined. Asked
/// again and again while an event stream stays open; refusals here are
/// not recorded (the stream just ends).
pub async fn still_valid(st: &WebState, credential: &str, audience: &str) -> bool {
    matches!(check(st, Some(credential), audience).await, Ok(Ok(_)))
}

/// The bearer credential of a request, as sent.
pub fn credential(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?;
    bearer_credential(v.as_bytes()).map(str::to_string)
}

/// The URL of a proxied server's protected resource metadata.
pub fn metadata_url(st: &WebState, route: &Route) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp/{}",
        st.issuer_url, route.row.name
    )
}

/// `WWW-Authenticate` for a refused or missing credential.
fn challenge(st: &WebState, route: &Route, presented: bool) -> String {
    let error = if presented {
        "error=\"invalid_token\", "
    } else {
        ""
    };
    format!(
        "Bearer {error}resource_metadata=\"{}\"",
        metadata_url(st, route)
    )
}

fn unauthorized(st: &WebState, route: &Route, presented: bool, message: &str) -> HttpResponse {
    let mut resp = jsonrpc::reply(
        StatusCode::UNAUTHORIZED,
        None,
        crate::mcp::message::codes::FORBIDDEN,
        message,
        None,
    );
    if let Ok(v) = header::HeaderValue::from_str(&challenge(st, route, presented)) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The sender, or the 401 to answer with.
pub async fn authenticate(
    req: &HttpRequest,
    st: &WebState,
    route: &Route,
) -> Result<Result<Sender, HttpResponse>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        // No credential: the first request of every OAuth client. Not
        // recorded (it is the discovery step, not a refusal).
        return Ok(Err(unauthorized(
            st,
            route,
            false,
            "authentication required: send a Bearer access token for this server",
        )));
    };
    let credential = bearer_credential(value.as_bytes());
    let (reason, key_id) = match check(st, credential, &route.uri).await? {
        Ok(Checked::Key(principal)) => {
            return admitted(st, principal, None).await.map(Ok);
        }
        Ok(Checked::Token(claims, state)) => {
            let principal = Principal {
                kind: claims.sub_type,
                id: state.id.clone(),
                name: state.name.clone(),
            };
            let token = TokenFacts {
                scope: claims.scopes(),
                client_id: claims.client_id.clone(),
                jti: claims.jti.clone(),
                token: credential.unwrap_or_default().to_string(),
                state,
            };
            return admitted(st, principal, Some(token)).await.map(Ok);
        }
        Err(refused) => refused,
    };
    let mut ev = audit_context(req, None)
        .event("auth.bearer", Outcome::Failure)
        .reason(reason.to_string())
        .target("mcp_server", &route.row.name);
    if let Some(k) = key_id {
        ev = ev.detail("key_id", k);
    }
    record_refusal(req, st, ev).await?;
    Ok(Err(unauthorized(
        st,
        route,
        true,
        &format!("invalid credential for this server ({reason})"),
    )))
}

/// What a verified access token says beyond its principal.
struct TokenFacts {
    scope: Vec<String>,
    client_id: String,
    jti: String,
    token: String,
    /// The principal's state, as verification read it.
    state: Arc<PrincipalState>,
}

/// The sender with its current state (a token's verification read it
/// already; a key's is read here); a principal that no longer exists is
/// refused (its key or token outlived it).
async fn admitted(
    st: &WebState,
    principal: Principal,
    token: Option<TokenFacts>,
) -> Result<Sender, ApiError> {
    let state = match &token {
        Some(t) => t.state.clone(),
        None => st
            .principals
            .get(&st.db, &st.audit, principal.kind, &principal.id)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the principal no longer exists"))?,
    };
    let (scope, client_id, jti, token) = match token {
        Some(t) => (Some(t.scope), Some(t.client_id), Some(t.jti), Some(t.token)),
        None => (None, None, None, None),
    };
    Ok(Sender {
        who: Who {
            subject: rbac::subject_of(&principal),
            state,
            scope,
        },
        principal,
        client_id,
        jti,
        token,
    })
}
