//! Who sends a message to `/mcp/{name}`: an access token whose `aud` is
//! this server's resource URI, or an `agk_` API key. A missing or refused
//! credential is answered 401 with the challenge that sends a stock MCP
//! client to the server's protected resource metadata (RFC 9728), and
//! recorded like every refused credential.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use crate::audit::Outcome;
use crate::identity::{api_keys, Principal};
use crate::mcp::gateway::{Route, Who};
use crate::rbac;
use crate::tokens::jwt;
use crate::web::auth::record_refusal;
use crate::web::context::audit_context;
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

/// Whether `credential` (a token for `audience`, or an API key) is still
/// good: not revoked, its principal not disabled or quarantined. Asked
/// again and again while an event stream stays open; refusals here are
/// not recorded (the stream just ends).
pub async fn still_valid(st: &WebState, credential: &str, audience: &str) -> bool {
    if credential.starts_with(api_keys::PREFIX) {
        return matches!(
            api_keys::authenticate(&st.key_lookup(), credential).await,
            Ok(api_keys::KeyCheck::Valid { .. })
        );
    }
    matches!(
        jwt::verify(&st.issuer().verify_context(), credential, audience).await,
        Ok(Ok(_))
    )
}

/// The bearer credential of a request, as sent.
pub fn credential(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, c) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| c.trim().to_string())
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
    HttpResponse::build(StatusCode::UNAUTHORIZED)
        .insert_header((header::WWW_AUTHENTICATE, challenge(st, route, presented)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": crate::mcp::message::codes::FORBIDDEN, "message": message},
        }))
}

/// The sender, or the 401 to answer with.
pub async fn authenticate(
    req: &HttpRequest,
    st: &WebState,
    route: &Route,
) -> Result<Result<Sender, HttpResponse>, ApiError> {
    let credential = req.headers().get(header::AUTHORIZATION).map(|v| {
        std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(|t| t.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, c)| c.trim().to_string())
    });
    let credential = match credential {
        // No credential: the first request of every OAuth client. Not
        // recorded (it is the discovery step, not a refusal).
        None => {
            return Ok(Err(unauthorized(
                st,
                route,
                false,
                "authentication required: send a Bearer access token for this server",
            )))
        }
        Some(c) => c,
    };
    let (reason, key_id) = match credential.as_deref() {
        None => ("malformed_authorization_header", None),
        Some(c) if c.starts_with(api_keys::PREFIX) => {
            match api_keys::authenticate(&st.key_lookup(), c).await? {
                api_keys::KeyCheck::Valid { principal, .. } => {
                    return admitted(st, principal, None, None, None, None)
                        .await
                        .map(Ok);
                }
                api_keys::KeyCheck::Refused { reason, key_id } => (reason.as_str(), key_id),
            }
        }
        Some(c) if c.matches('.').count() == 2 => {
            match jwt::verify(&st.issuer().verify_context(), c, &route.uri).await? {
                Ok((claims, state)) => {
                    let principal = Principal {
                        kind: claims.sub_type,
                        id: state.id.clone(),
                        name: state.name.clone(),
                    };
                    let scope = Some(claims.scopes());
                    return admitted(
                        st,
                        principal,
                        scope,
                        Some(claims.client_id.clone()),
                        Some(claims.jti.clone()),
                        Some(c.to_string()),
                    )
                    .await
                    .map(Ok);
                }
                Err(f) => (f.as_str(), None),
            }
        }
        Some(_) => ("unrecognised_credential", None),
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

/// The sender with its current state; a principal that no longer exists
/// is refused (its key or token outlived it).
async fn admitted(
    st: &WebState,
    principal: Principal,
    scope: Option<Vec<String>>,
    client_id: Option<String>,
    jti: Option<String>,
    token: Option<String>,
) -> Result<Sender, ApiError> {
    let state = st
        .principals
        .get(&st.db, &st.audit, principal.kind, &principal.id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the principal no longer exists"))?;
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
