//! `GET|POST /api/v1/authz/forward`: the gateway's decision for a proxy
//! that users already run in front of an MCP server (nginx `auth_request`,
//! Caddy `forward_auth`, Traefik ForwardAuth, Envoy `ext_authz` over
//! HTTP), from the forwarded headers alone (SPEC §14).
//!
//! The original URL, rebuilt from `X-Forwarded-Proto`, `X-Forwarded-Host`
//! (or `Host`) and `X-Original-URI` / `X-Forwarded-Uri` (or, for Envoy,
//! the path after `/api/v1/authz/forward`), names the registered server by
//! its `uri`. With `Mcp-Method` (and `Mcp-Name`) the message is decided as
//! the gateway decides it; without (clients older than 2026-07-28) only
//! access to the server is decided. Answers: 200 with who the caller is
//! for the upstream, or 401/403 with the gateway's `WWW-Authenticate`.
//! nginx treats any other status as an error, so a limit is a 403 with
//! `Retry-After` too.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, HttpRequest, HttpResponse};

use crate::mcp::gateway::{Admission, Refusal};
use crate::mcp::message;
use crate::mcp::policy::Headers;
use crate::mcp::record::Call;
use crate::web::context::audit_context;
use crate::web::gateway::{authn, header_str, refusal_reply, step_up};
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

/// Where forward auth is served; Envoy appends the original path to it.
pub const PATH: &str = "/api/v1/authz/forward";

/// The original request's URL from the forwarded headers, normalised as a
/// URL (default port dropped, host lower-cased), without its query.
fn original_url(req: &HttpRequest) -> Result<String, String> {
    let proto = header_str(req, "x-forwarded-proto")
        .ok_or("X-Forwarded-Proto is required: the scheme the client used")?;
    let host = header_str(req, "x-forwarded-host")
        .or_else(|| header_str(req, "host"))
        .ok_or("X-Forwarded-Host (or Host) is required: the host and port the client used")?;
    let envoy_path = req.path().strip_prefix(PATH).filter(|p| !p.is_empty());
    let uri = header_str(req, "x-original-uri")
        .or_else(|| header_str(req, "x-forwarded-uri"))
        .or(envoy_path)
        .ok_or("X-Original-URI (or X-Forwarded-Uri) is required: the path the client asked for")?;
    let path = uri.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err("the forwarded URI must be a path starting with /".into());
    }
    let first = proto.split(',').next().unwrap_or("").trim();
    let url = url::Url::parse(&format!("{first}://{host}{path}"))
        .map_err(|e| format!("the forwarded headers do not make a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("X-Forwarded-Proto must be http or https".into());
    }
    Ok(url.to_string())
}

/// One forward-auth handler: the method, the path, the operation and its
/// summary; `$($tail)?` adds Envoy's path parameter. Four handlers share
/// one decision ([`decide`]) and one description.
macro_rules! forward_handler {
    ($name:ident, $method:ident, $path:literal, $op:literal, $doc:literal $(, $tail:literal)?) => {
        #[doc = $doc]
        #[utoipa::path(operation_id = $op, tag = "mcp",
            params(
                $(($tail = String, Path, description = "The original request's path"),)?
                ("Mcp-Method" = Option<String>, Header, description = "The MCP method (Streamable HTTP, 2026-07-28)"),
                ("Mcp-Name" = Option<String>, Header, description = "The tool, prompt or resource URI a tools/call, prompts/get or resources/read names"),
                ("X-Forwarded-Proto" = String, Header, description = "The scheme the client used"),
                ("X-Forwarded-Host" = Option<String>, Header, description = "The host (and port) the client used; else Host"),
                ("X-Original-URI" = Option<String>, Header, description = "The path the client asked for (nginx); or X-Forwarded-Uri (Caddy, Traefik)"),
            ),
            responses(
                (status = 200, description = "Allowed; X-Agentry-Subject, X-Agentry-Subject-Type and X-Agentry-Client say who calls"),
                (status = 400, body = Problem, description = "The forwarded headers do not name a URL"),
                (status = 401, description = "No or an invalid credential; WWW-Authenticate names the resource metadata"),
                (status = 403, description = "Refused (JSON-RPC error body), insufficient_scope (WWW-Authenticate), or a limit (Retry-After)"),
                (status = 404, body = Problem, description = "No enabled MCP server has this URI"),
            ))]
        #[$method($path)]
        pub async fn $name(req: HttpRequest) -> Result<HttpResponse, ApiError> {
            decide(req).await
        }
    };
}

forward_handler!(
    get,
    get,
    "/authz/forward",
    "authz_forward.get",
    "Forward auth for a proxy that asks with GET (nginx `auth_request`, Caddy, Traefik)."
);
forward_handler!(
    post,
    post,
    "/authz/forward",
    "authz_forward.post",
    "Forward auth for a proxy that asks with POST (the body is not read)."
);
forward_handler!(
    envoy_get,
    get,
    "/authz/forward/{tail:.*}",
    "authz_forward.envoy_get",
    "Envoy's form (`ext_authz` with `path_prefix`): the original path appended.",
    "tail"
);
forward_handler!(
    envoy_post,
    post,
    "/authz/forward/{tail:.*}",
    "authz_forward.envoy_post",
    "Envoy's form, POST.",
    "tail"
);

async fn decide(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let url = original_url(&req)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "bad_forwarded_headers", m))?;
    let Some(route) = st.gateway.route_by_uri(&url).await? else {
        return Err(ApiError::not_found(format!(
            "no enabled MCP server has the URI {url}"
        )));
    };
    let sender = match authn::authenticate(&req, &st, &route).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let ctx = audit_context(&req, Some(&sender.principal));
    let session = header_str(&req, "mcp-session-id").map(crate::names::shown);
    let mcp_method = header_str(&req, "mcp-method");
    let mcp_name = header_str(&req, "mcp-name");
    let admission = match mcp_method {
        Some(m) => {
            let call = Call {
                server: route.row.name.clone(),
                message: message::from_headers(m, mcp_name),
                client_id: sender.client_id.clone(),
                session_id: session,
                jti: sender.jti.clone(),
                trace_id: None,
                headers_only: true,
                span: None,
            };
            let headers = Headers {
                mcp_method,
                mcp_name,
            };
            st.gateway
                .admit(&ctx, &sender.who, &route, &call, headers)
                .await?
        }
        None => {
            let method = header_str(&req, "x-forwarded-method").unwrap_or(req.method().as_str());
            st.gateway
                .admit_transport(&ctx, &sender.who, &route, method, session.as_deref())
                .await?
        }
    };
    Ok(match admission {
        Admission::Forward { .. } => {
            let mut ok = HttpResponse::Ok();
            ok.insert_header(("x-agentry-subject", sender.principal.id.as_str()))
                .insert_header(("x-agentry-subject-type", sender.principal.kind.as_str()))
                .insert_header((header::CACHE_CONTROL, "no-store"));
            if let Some(c) = &sender.client_id {
                ok.insert_header(("x-agentry-client", c.as_str()));
            }
            ok.finish()
        }
        Admission::StepUp { scope } => step_up(&st, &route, &scope),
        Admission::Refused(r) => {
            let status = match r {
                Refusal::HeaderMismatch(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            refusal_reply(status, None, &r)
        }
    })
}

/// Registers forward auth (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get)
        .service(post)
        .service(envoy_get)
        .service(envoy_post);
}
