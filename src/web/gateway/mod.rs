//! The MCP gateway's HTTP side (SPEC §14): `/mcp/{name}` serves each
//! enabled proxied server's Streamable HTTP endpoint. Every message is
//! authenticated, decided and (when SPEC says so) recorded before it is
//! forwarded; the answer streams back through [`relay`], watched by
//! [`watch`] for list filtering and the call's result.

pub mod authn;
pub mod forward;
pub mod hold;
pub mod jsonrpc;
pub mod relay;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{delete, get, post, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::mcp::gateway::{Admission, Refusal, Route};
use crate::mcp::message::{self, codes, Kind, MAX_MESSAGE_BYTES};
use crate::mcp::policy::Headers;
use crate::mcp::record::{self, Call};
use crate::mcp::trace::GatewaySpan;
use crate::web::context::audit_context;
use crate::web::problem::ApiError;
use crate::web::state::{self, WebState};

use authn::Sender;
use watch::Watch;

/// Registers `/mcp/{name}` (POST, GET, DELETE), outside `/api/v1`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(post).service(get).service(delete);
}

pub(crate) fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The caller's span: W3C `traceparent` from the message's `_meta` (MCP
/// 2026-07-28) or else the request header; an unreadable one is ignored
/// (the gateway's span then starts a trace).
fn caller_span(req: &HttpRequest, msg: &message::Message) -> Option<crate::mcp::trace::Parent> {
    let from_meta = msg
        .params
        .as_ref()
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get("traceparent"))
        .and_then(|t| t.as_str())
        .and_then(crate::mcp::trace::parse);
    from_meta.or_else(|| header_str(req, "traceparent").and_then(crate::mcp::trace::parse))
}

/// The route and its authenticated sender, or the answer to give instead
/// (404 for an unknown server, 401 for a missing or refused credential).
pub(crate) async fn open(
    req: &HttpRequest,
    st: &WebState,
    name: &str,
) -> Result<Result<(Arc<Route>, Sender), HttpResponse>, ApiError> {
    let Some(route) = st.gateway.route(name).await? else {
        return Err(ApiError::not_found(format!(
            "no enabled MCP server called {:?} is proxied here",
            crate::names::shown(name)
        )));
    };
    Ok(match authn::authenticate(req, st, &route).await? {
        Ok(sender) => Ok((route, sender)),
        Err(resp) => Err(resp),
    })
}

/// What the upstream credential is exchanged from: the caller's token and
/// its `jti`, in the caller's audit context.
struct SenderToken {
    token: Option<(String, String)>,
    ctx: crate::audit::Context,
}

impl SenderToken {
    fn of(sender: &Sender, ctx: &crate::audit::Context) -> SenderToken {
        SenderToken {
            token: sender.token.clone().zip(sender.jti.clone()),
            ctx: ctx.clone(),
        }
    }
}

/// The bearer token for `route`'s upstream when it takes a delegated one
/// (`upstream_token_exchange`): the caller's access token exchanged (RFC
/// 8693) as the server's agent, reused until shortly before it expires.
/// `Ok(None)`: the server exchanges nothing; `Err`: why the call cannot go
/// upstream.
async fn upstream_token(
    st: &WebState,
    route: &Route,
    from: &SenderToken,
) -> Result<Result<Option<String>, forward::Failure>, ApiError> {
    use crate::tokens::exchange::{ExchangeRequest, ACCESS_TOKEN_TYPE};
    use crate::tokens::oauth::OAuthError;
    let failure = |message: String| forward::Failure {
        code: codes::UPSTREAM_FAILURE,
        message,
    };
    let Some(target) = &route.row.upstream_token_exchange else {
        return Ok(Ok(None));
    };
    let Some((token, jti)) = &from.token else {
        return Ok(Err(failure(
            "this server's upstream takes a token delegated by the caller: call it with an \
             OAuth access token, not an API key"
                .into(),
        )));
    };
    if let Some(t) = st.gateway.exchanged_token(jti, target) {
        return Ok(Ok(Some(t)));
    }
    let Some(agent) = &route.row.agent_id else {
        return Ok(Err(failure(
            "the server has no agent to exchange tokens as".into(),
        )));
    };
    let exchanger = crate::identity::Principal {
        kind: crate::identity::PrincipalKind::Agent,
        id: agent.clone(),
        name: agent.clone(),
    };
    let request = ExchangeRequest {
        subject_token: Some(token),
        subject_token_type: Some(ACCESS_TOKEN_TYPE),
        resource: Some(target),
        ..ExchangeRequest::default()
    };
    match st.issuer().exchange(&from.ctx, &exchanger, request).await {
        Ok(t) => {
            st.gateway
                .remember_exchanged(jti, target, &t.access_token, t.expires_in);
            Ok(Ok(Some(t.access_token)))
        }
        Err(OAuthError::Server(e)) => Err(e.into()),
        Err(e) => Ok(Err(failure(format!(
            "the caller's token could not be exchanged for the upstream ({}: {})",
            e.code(),
            e.description()
        )))),
    }
}

/// Asked every few seconds while a GET stream stays open: a quarantine,
/// disable or revocation ends the client's open streams too, not only its
/// next message.
fn still_admitted(
    st: actix_web::web::Data<WebState>,
    req: &HttpRequest,
    audience: String,
) -> relay::StillAdmitted {
    let credential = authn::credential(req).unwrap_or_default();
    Box::new(move || {
        let (st, credential, audience) = (st.clone(), credential.clone(), audience.clone());
        Box::pin(async move { authn::still_valid(&st, &credential, &audience).await })
    })
}

/// Whose sessions a sender's are: `type:id` of its principal.
fn owner_of(sender: &Sender) -> String {
    format!("{}:{}", sender.principal.kind.as_str(), sender.principal.id)
}

/// A request naming a session another principal opened is answered as if
/// the session did not exist (404: the client starts a new one), and
/// recorded.
async fn foreign_session(
    st: &WebState,
    route: &Route,
    req: &HttpRequest,
    owner: &str,
    ctx: &crate::audit::Context,
) -> Result<Option<HttpResponse>, ApiError> {
    let Some(sid) = header_str(req, "mcp-session-id") else {
        return Ok(None);
    };
    if st.gateway.sessions().claim(&route.row.name, sid, owner) {
        return Ok(None);
    }
    let ev = ctx
        .event("mcp.message", crate::audit::Outcome::Denied)
        .target("mcp_server", &route.row.name)
        .detail("decision", "denied")
        .detail("session_id", crate::names::shown(sid))
        .reason("the session belongs to another principal".to_string());
    st.gateway.audit().record(ev).await?;
    Ok(Some(jsonrpc::reply(
        StatusCode::NOT_FOUND,
        None,
        codes::INVALID_REQUEST,
        "no such session",
        None,
    )))
}

/// The session an upstream answer opens is its sender's.
fn bind_session(
    st: &WebState,
    route: &Route,
    req: &HttpRequest,
    owner: &str,
    resp: &reqwest::Response,
) {
    let opened = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok());
    if let Some(sid) = opened {
        if header_str(req, "mcp-session-id") != Some(sid) {
            st.gateway.sessions().bind(&route.row.name, sid, owner);
        }
    }
}

/// The body, up to one message's size.
async fn read_body(mut payload: web::Payload) -> Result<Bytes, ()> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ())?;
        if body.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err(());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// 403 `insufficient_scope`: the principal holds what is needed, the
/// token does not carry it; a stock client re-authorises for `scope`.
pub(crate) fn step_up(st: &WebState, route: &Route, scope: &[String]) -> HttpResponse {
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\"",
        scope.join(" "),
        authn::metadata_url(st, route)
    );
    HttpResponse::Forbidden()
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(jsonrpc::error(
            None,
            codes::FORBIDDEN,
            "insufficient_scope: the token's scope does not cover this message",
            Some(serde_json::json!({"scope": scope.join(" ")})),
        ))
}

/// A refused message's answer: a JSON-RPC error for a request (HTTP 400
/// for a header mismatch, as the transport says; else 200: the refusal is
/// the call's answer), 400/403/429 for a message without an id.
fn refused(id: Option<&serde_json::Value>, r: &Refusal) -> HttpResponse {
    let status = match (r, id.is_some()) {
        (Refusal::HeaderMismatch(_), _) => StatusCode::BAD_REQUEST,
        (_, true) => StatusCode::OK,
        (Refusal::Denied(_), false) => StatusCode::FORBIDDEN,
        (Refusal::Limited(_), false) => StatusCode::TOO_MANY_REQUESTS,
    };
    refusal_reply(status, id, r)
}

/// The JSON-RPC error of refusal `r` with `status`; a limit also says when
/// to retry in `Retry-After`.
pub(crate) fn refusal_reply(
    status: StatusCode,
    id: Option<&serde_json::Value>,
    r: &Refusal,
) -> HttpResponse {
    let mut resp = jsonrpc::reply(status, id, r.code(), &r.message(), r.data());
    if let Refusal::Limited(l) = r {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(l.retry_after_seconds),
        );
    }
    resp
}

/// When a forwarded request's answer must be complete.
fn deadline(st: &WebState) -> Instant {
    Instant::now() + Duration::from_secs(u64::from(st.config.gateway.call_timeout_seconds))
}

/// One JSON-RPC message to the proxied MCP server `name` (Streamable
/// HTTP): authenticated, decided, recorded, forwarded; the answer is JSON
/// or an event stream.
#[utoipa::path(operation_id = "gateway.post", tag = "mcp",
    params(("name" = String, Path, description = "The proxied server's name")),
    request_body(content = Object, content_type = "application/json", description = "One JSON-RPC 2.0 message"),
    responses(
        (status = 200, description = "The upstream's answer (application/json or text/event-stream), or a JSON-RPC error for the request"),
        (status = 202, description = "A notification or answer accepted upstream"),
        (status = 400, description = "Not one JSON-RPC message, or Mcp-Method/Mcp-Name disagree with it (JSON-RPC error)"),
        (status = 401, description = "No or an invalid credential; WWW-Authenticate names the resource metadata"),
        (status = 403, description = "insufficient_scope (WWW-Authenticate), or a refused message without an id"),
        (status = 404, body = crate::web::problem::Problem, description = "No enabled proxied server has this name"),
        (status = 413, description = "The message is larger than 4 MiB"),
    ))]
#[post("/mcp/{name}")]
async fn post(
    req: HttpRequest,
    name: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let (route, sender) = match open(&req, &st, &name).await? {
        Ok(opened) => opened,
        Err(resp) => return Ok(resp),
    };
    let started = std::time::Instant::now();
    let Ok(body) = read_body(payload).await else {
        return Ok(jsonrpc::reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            codes::INVALID_REQUEST,
            &message::MessageError::TooLarge.to_string(),
            None,
        ));
    };
    let msg = match message::parse(&body) {
        Ok(m) => m,
        Err(e) => {
            return Ok(jsonrpc::reply(
                StatusCode::BAD_REQUEST,
                None,
                e.code(),
                &e.to_string(),
                None,
            ))
        }
    };
    let ctx = audit_context(&req, Some(&sender.principal));
    let owner = owner_of(&sender);
    if let Some(refused) = foreign_session(&st, &route, &req, &owner, &ctx).await? {
        return Ok(refused);
    }
    let span = GatewaySpan::begin(caller_span(&req, &msg));
    let traceparent = span.traceparent();
    let mut call = Call {
        server: route.row.name.clone(),
        client_id: sender.client_id.clone(),
        session_id: header_str(&req, "mcp-session-id").map(crate::names::shown),
        jti: sender.jti.clone(),
        trace_id: Some(span.trace_id.clone()),
        message: msg,
        headers_only: false,
        span: Some(span),
    };
    let headers = Headers {
        mcp_method: header_str(&req, "mcp-method"),
        mcp_name: header_str(&req, "mcp-name"),
    };
    let admission = st
        .gateway
        .admit(&ctx, &sender.who, &route, &call, headers)
        .await?;
    let id = match &call.message.kind {
        Kind::Request { id, .. } => Some(id.clone()),
        _ => None,
    };
    let decision_seq = match admission {
        Admission::Refused(r) => {
            st.gateway.end_span(&call, Some(&r.message()));
            return Ok(refused(id.as_ref(), &r));
        }
        Admission::StepUp { scope } => {
            st.gateway.end_span(
                &call,
                Some("insufficient_scope: the token's scope does not cover this message"),
            );
            return Ok(step_up(&st, &route, &scope));
        }
        Admission::Forward { decision_seq } => decision_seq,
    };
    // A message whose answer nobody watches has its span ended here, when
    // the upstream has answered.
    let loose_span = (!Watch::wanted(&call, decision_seq)).then(|| {
        let name = record::span_name(&call.message);
        let attributes = record::span_attributes(&call);
        (call.span.take(), name, attributes)
    });
    let holding = hold::holding_of(&st, &route, &call).await?;
    let policy = st.gateway.policy().await?;
    let sender_token = SenderToken::of(&sender, &ctx);
    let watch = Watch::over(
        &st.gateway,
        policy,
        Arc::new(sender.who),
        route.clone(),
        ctx.clone(),
        call,
        decision_seq,
        started,
    );
    let fwd = Forwarding {
        st: st.clone(),
        route,
        req,
        body,
        id,
        owner,
        sender_token,
        loose_span,
        traceparent,
    };
    match holding {
        Some(holding) => {
            let asking = hold::Asking {
                principal: sender.principal,
                client_id: sender.client_id,
                holding,
                ctx,
            };
            hold::held(fwd, watch, asking).await
        }
        None => fwd.run(watch).await,
    }
}

/// A message admitted, on its way upstream: what sending it needs.
pub(crate) struct Forwarding {
    st: web::Data<WebState>,
    route: Arc<Route>,
    req: HttpRequest,
    body: Bytes,
    /// The JSON-RPC request's id, if it is one.
    id: Option<serde_json::Value>,
    /// Whose sessions the upstream opens.
    owner: String,
    sender_token: SenderToken,
    /// The span of a message whose answer nobody watches: ended when the
    /// upstream has answered.
    loose_span: Option<LooseSpan>,
    /// The gateway's span as the upstream's parent.
    traceparent: String,
}

type LooseSpan = (
    Option<GatewaySpan>,
    String,
    serde_json::Map<String, serde_json::Value>,
);

impl Forwarding {
    fn end_loose(&self, error: Option<&str>) {
        if let Some((Some(span), name, attributes)) = &self.loose_span {
            self.st
                .gateway
                .emit_span(span.end(name, attributes.clone(), error));
        }
    }

    /// Sends the message upstream now (within `gateway.call_timeout_seconds`)
    /// and answers with the upstream's answer, watched by `watch`.
    pub(crate) async fn run(self, mut watch: Option<Watch>) -> Result<HttpResponse, ApiError> {
        let st = &self.st;
        let deadline = deadline(st);
        let id = self.id.as_ref();
        let bearer = match upstream_token(st, &self.route, &self.sender_token).await? {
            Ok(b) => b,
            Err(f) => {
                if let Some(w) = watch.as_mut() {
                    w.failed(&f.message);
                }
                self.end_loose(Some(&f.message));
                return Ok(forward::failure(id, &f));
            }
        };
        let sent = forward::send(
            st,
            &self.route,
            &self.req,
            forward::Outgoing {
                method: reqwest::Method::POST,
                body: Some(self.body.clone()),
                bearer: bearer.as_deref(),
                traceparent: Some(&self.traceparent),
            },
            deadline,
        )
        .await;
        match sent {
            Ok(resp) => {
                bind_session(st, &self.route, &self.req, &self.owner, &resp);
                let status = resp.status();
                let answer = forward::answer(st, resp, watch, deadline).await;
                self.end_loose(
                    (!status.is_success())
                        .then(|| format!("the upstream answered HTTP {}", status.as_u16()))
                        .as_deref(),
                );
                Ok(answer)
            }
            Err(f) => {
                if let Some(w) = watch.as_mut() {
                    w.failed(&f.message);
                }
                self.end_loose(Some(&f.message));
                Ok(forward::failure(id, &f))
            }
        }
    }
}

/// GET (the server's event stream) and DELETE (ending a session): access
/// to the server decides.
async fn transport(
    req: HttpRequest,
    name: &str,
    method: reqwest::Method,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let (route, sender) = match open(&req, &st, name).await? {
        Ok(opened) => opened,
        Err(resp) => return Ok(resp),
    };
    let ctx = audit_context(&req, Some(&sender.principal));
    let owner = owner_of(&sender);
    if let Some(refused) = foreign_session(&st, &route, &req, &owner, &ctx).await? {
        return Ok(refused);
    }
    let session = header_str(&req, "mcp-session-id").map(crate::names::shown);
    let admission = st
        .gateway
        .admit_transport(
            &ctx,
            &sender.who,
            &route,
            method.as_str(),
            session.as_deref(),
        )
        .await?;
    match admission {
        Admission::Refused(r) => return Ok(refused(None, &r)),
        Admission::StepUp { scope } => return Ok(step_up(&st, &route, &scope)),
        Admission::Forward { .. } => {}
    }
    let deadline = deadline(&st);
    let is_get = method == reqwest::Method::GET;
    let bearer = match upstream_token(&st, &route, &SenderToken::of(&sender, &ctx)).await? {
        Ok(b) => b,
        Err(f) => return Ok(forward::failure(None, &f)),
    };
    let out = forward::Outgoing {
        method,
        body: None,
        bearer: bearer.as_deref(),
        traceparent: None,
    };
    match forward::send(&st, &route, &req, out, deadline).await {
        Ok(resp) if is_get => {
            let still = still_admitted(st.clone(), &req, route.uri.clone());
            Ok(forward::stream(&st, resp, still))
        }
        Ok(resp) => {
            // A session ended upstream is nobody's any more.
            if let Some(sid) = header_str(&req, "mcp-session-id") {
                if resp.status().is_success() {
                    st.gateway.sessions().forget(&route.row.name, sid);
                }
            }
            Ok(forward::answer(&st, resp, None, deadline).await)
        }
        Err(f) => Ok(forward::failure(None, &f)),
    }
}

/// The proxied server's event stream (server-to-client messages).
#[utoipa::path(operation_id = "gateway.get", tag = "mcp",
    params(("name" = String, Path, description = "The proxied server's name")),
    responses(
        (status = 200, description = "text/event-stream from the upstream"),
        (status = 401, description = "No or an invalid credential"),
        (status = 403, description = "No access to the server"),
        (status = 404, body = crate::web::problem::Problem),
        (status = 405, description = "The upstream offers no stream"),
    ))]
#[get("/mcp/{name}")]
async fn get(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    transport(req, &name, reqwest::Method::GET).await
}

/// Ends the session named by `Mcp-Session-Id` upstream.
#[utoipa::path(operation_id = "gateway.delete", tag = "mcp",
    params(("name" = String, Path, description = "The proxied server's name")),
    responses(
        (status = 200, description = "The upstream ended the session"),
        (status = 401, description = "No or an invalid credential"),
        (status = 403, description = "No access to the server"),
        (status = 404, body = crate::web::problem::Problem),
    ))]
#[delete("/mcp/{name}")]
async fn delete(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    transport(req, &name, reqwest::Method::DELETE).await
}
