//! Holding a tool call for a person's approval (SPEC §18).
//!
//! A `tools/call` an approval rule covers, once admitted (its decision
//! record committed), asks for approval: an approved, unused request bound
//! to the exact call lets it through at once; otherwise it waits on a
//! pending request (a retry joins it) or a new one. While it waits, a
//! client that takes event streams (every Streamable HTTP client says so
//! in `Accept`) gets an open `text/event-stream` with a comment every
//! [`KEEP_ALIVE`], so neither it nor a proxy between gives up; the moment
//! the request is approved the call goes upstream and the upstream's
//! answer follows on the same stream (a JSON answer as one `message`
//! event). Denied or expired, the answer is a JSON-RPC error
//! ([`codes::NOT_APPROVED`]) and the upstream never sees the call. A client
//! that goes away leaves the request as it is: its retry of the identical
//! call joins it. A client that takes JSON only waits without keep-alives.

use std::pin::Pin;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::watch::Watch;
use super::{jsonrpc, Forwarding};
use crate::approvals::requests::{Asked, Asker, Held, MAX_PENDING};
use crate::approvals::waiting::Waited;
use crate::audit::Context;
use crate::db::approvals::RuleRow;
use crate::identity::Principal;
use crate::mcp::gateway::Route;
use crate::mcp::message::{self, codes, Kind};
use crate::mcp::record::Call;
use crate::web::problem::ApiError;
use crate::web::state::WebState;

/// How often a held call's open stream carries a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A call a rule holds: the rule, and the call's tool and arguments
/// (`{}` when it names none: the digest of no arguments is that of an
/// empty object, as the tool sees it).
pub struct Holding {
    pub rule: RuleRow,
    pub tool: String,
    pub arguments: Value,
}

/// What holds `call`, if it is a `tools/call` request a rule covers.
pub async fn holding_of(
    st: &WebState,
    route: &Route,
    call: &Call,
) -> Result<Option<Holding>, ApiError> {
    let msg = &call.message;
    if !matches!(msg.kind, Kind::Request { .. }) || msg.method() != Some("tools/call") {
        return Ok(None);
    }
    let Some(tool) = msg.name() else {
        return Ok(None);
    };
    let rule = st.approvals().rule_for_call(&route.row.name, tool).await?;
    Ok(rule.map(|rule| Holding {
        rule,
        tool: tool.to_string(),
        arguments: msg.arguments(),
    }))
}

/// Who asks for the held call, and what holds it.
pub struct Asking {
    pub principal: Principal,
    pub client_id: Option<String>,
    pub holding: Holding,
    pub ctx: Context,
}

/// Whether the client takes an event stream as the answer to its POST.
fn takes_event_stream(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| super::forward::media_type(Some(t)) == "text/event-stream")
}

/// Asks for approval of the call `fwd` carries, and answers: at once
/// when an approval lets it through, else after the wait.
pub(crate) async fn held(
    fwd: Forwarding,
    watch: Option<Watch>,
    asking: Asking,
) -> Result<HttpResponse, ApiError> {
    let st = fwd.st.clone();
    let Holding {
        rule,
        tool,
        arguments,
    } = &asking.holding;
    let digest = message::arguments_digest(arguments);
    let asked = st
        .approvals()
        .ask(
            &asking.ctx,
            &Asker {
                principal: &asking.principal,
                client_id: asking.client_id.as_deref(),
            },
            &Held {
                server: &fwd.route.row.name,
                tool,
                arguments,
                digest: &digest,
            },
            rule,
        )
        .await?;
    let approval_id = match asked {
        Asked::Proceed { .. } => return fwd.run(watch).await,
        Asked::Wait { approval_id, .. } => approval_id,
        Asked::TooMany => {
            let message = format!(
                "the call needs approval, and {MAX_PENDING} of your requests are already \
                 waiting: retry when they are decided or have expired"
            );
            if let Some(mut w) = watch {
                w.not_approved(&message);
            }
            return Ok(jsonrpc::reply(
                actix_web::http::StatusCode::OK,
                fwd.id.as_ref(),
                codes::NOT_APPROVED,
                &message,
                Some(json!({"state": "too_many_waiting", "limit": MAX_PENDING})),
            ));
        }
    };
    if !takes_event_stream(&fwd.req) {
        let waited = st.approvals().wait(&asking.ctx, &approval_id).await;
        return match ended(waited, watch) {
            Ok(watch) => fwd.run(watch).await,
            Err(refusal) => Ok(jsonrpc::reply(
                actix_web::http::StatusCode::OK,
                fwd.id.as_ref(),
                refusal.code,
                &refusal.message,
                refusal.data(&approval_id),
            )),
        };
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(stream_held(fwd, watch, asking.ctx, approval_id, tx));
    let mut rx = rx;
    let events = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(Ok::<Bytes, actix_web::Error>);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events))
}

/// Why a held call is not forwarded.
struct Refusal {
    code: i64,
    message: String,
    state: &'static str,
}

impl Refusal {
    fn data(&self, approval_id: &str) -> Option<Value> {
        Some(json!({"approval_id": approval_id, "state": self.state}))
    }
}

/// The end of a wait: the watch back to forward the call with, or why it
/// is not forwarded (recorded as the call's result).
fn ended(
    waited: crate::error::Result<Waited>,
    mut watch: Option<Watch>,
) -> Result<Option<Watch>, Refusal> {
    let (state, message) = match waited {
        Ok(Waited::Proceed) => {
            if let Some(w) = watch.as_mut() {
                w.forwarding_now();
            }
            return Ok(watch);
        }
        Ok(w) => {
            let state = match w {
                Waited::Denied { .. } => "denied",
                Waited::Expired => "expired",
                Waited::UsedElsewhere => "used",
                Waited::Interrupted => "pending",
                Waited::Proceed | Waited::Gone => "withdrawn",
            };
            (state, w.refusal().unwrap_or_default())
        }
        Err(e) => {
            tracing::error!(error = %e, "a held call's wait failed");
            (
                "error",
                "the approval could not be read: try again".to_string(),
            )
        }
    };
    if let Some(w) = watch.as_mut() {
        w.not_approved(&message);
    }
    Err(Refusal {
        code: codes::NOT_APPROVED,
        message,
        state,
    })
}

/// One server-sent event carrying `message`.
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// The held call's stream: keep-alives until the request is decided, then
/// the upstream's answer or the refusal. Ends quietly when the client has
/// gone (the request stays for its retry).
async fn stream_held(
    fwd: Forwarding,
    watch: Option<Watch>,
    ctx: Context,
    approval_id: String,
    tx: mpsc::Sender<Bytes>,
) {
    let st = fwd.st.clone();
    let opening = format!(": held for approval {approval_id}\n\n");
    if tx.send(Bytes::from(opening)).await.is_err() {
        return;
    }
    let approvals = st.approvals();
    let wait = approvals.wait(&ctx, &approval_id);
    tokio::pin!(wait);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let waited = loop {
        tokio::select! {
            biased;
            () = tx.closed() => return,
            w = &mut wait => break w,
            _ = ticks.tick() => {
                if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
            }
        }
    };
    let watch = match ended(waited, watch) {
        Ok(w) => w,
        Err(refusal) => {
            let error = jsonrpc::error(
                fwd.id.as_ref(),
                refusal.code,
                &refusal.message,
                refusal.data(&approval_id),
            );
            let _ = tx.send(event(&error)).await;
            return;
        }
    };
    let id = fwd.id.clone();
    let answer = match fwd.run(watch).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "a held call could not be forwarded");
            let error = jsonrpc::error(
                id.as_ref(),
                codes::UPSTREAM_FAILURE,
                "the approved call could not be forwarded",
                None,
            );
            let _ = tx.send(event(&error)).await;
            return;
        }
    };
    relay_answer(answer, id.as_ref(), &tx).await;
}

/// The upstream's answer (already bounded and watched by `forward`) onto
/// the held call's stream: an event stream as it comes, a JSON answer as
/// one event, anything else as a JSON-RPC error for the request.
async fn relay_answer(answer: HttpResponse, id: Option<&Value>, tx: &mpsc::Sender<Bytes>) {
    let status = answer.status();
    let kind = super::forward::media_type(
        answer
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut body = answer.into_body();
    if kind == "text/event-stream" {
        loop {
            let chunk = futures_util::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await;
            match chunk {
                Some(Ok(bytes)) => {
                    if tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                // The relay has already sent the error event and ended.
                Some(Err(_)) | None => return,
            }
        }
    }
    let whole = actix_web::body::to_bytes(body).await.ok();
    let message = whole
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .filter(|m| m.get("jsonrpc").is_some());
    let message = message.unwrap_or_else(|| {
        jsonrpc::error(
            id,
            codes::UPSTREAM_FAILURE,
            &format!("the upstream answered HTTP {}", status.as_u16()),
            None,
        )
    });
    let _ = tx.send(event(&message)).await;
}
