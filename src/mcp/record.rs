//! The audit records of gateway messages (SPEC §14), built here and
//! committed by the gateway: a *decision* record for every `tools/call`,
//! `resources/read` and `prompts/get` and every refused message (who —
//! the context's actor —, through which client, to which server, what it
//! acts on, the arguments' digest, session, token, trace, the decision),
//! committed before an allowed call is forwarded; and a *result* record
//! when the call ends, linked to its decision by sequence number, with the
//! outcome and the latency.

use serde_json::Value;

use crate::audit::{Context, Event, Outcome};

use super::message::{arguments_digest, Message};
use super::trace::GatewaySpan;
use super::verdict::Verdict;

crate::closed_set! {
    /// How a forwarded call ended.
    pub enum CallOutcome {
        /// A result without `isError`.
        Ok = "ok",
        /// A result with `isError: true` (the tool ran and failed).
        ToolError = "tool_error",
        /// A JSON-RPC error answer.
        RpcError = "rpc_error",
        /// No usable answer: connection, timeout, status or framing.
        UpstreamFailure = "upstream_failure",
        /// The client went away before the answer came.
        Cancelled = "cancelled",
        /// Held for approval and denied or expired: never forwarded.
        NotApproved = "not_approved",
    }
}

/// Where a message came from and went, besides the actor.
/// Owned: a call outlives the request that brought it (its result is
/// recorded when the upstream's answer streams past).
#[derive(Debug, Clone)]
pub struct Call {
    pub server: String,
    pub message: Message,
    /// The OAuth client the token was issued to, if any.
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    /// The access token's `jti` (none for an API key).
    pub jti: Option<String>,
    pub trace_id: Option<String>,
    /// Decided from a proxy's headers without the body (forward auth): the
    /// arguments are not known, so no digest is recorded.
    pub headers_only: bool,
    /// The gateway's span for the message (the trace it continues).
    pub span: Option<GatewaySpan>,
}

/// The span name of a message, per the MCP semantic conventions:
/// `{method} {target}` (`tools/call get_weather`), or the method alone.
pub fn span_name(m: &Message) -> String {
    match (m.method(), m.name()) {
        (Some(method), Some(name)) => format!("{method} {name}"),
        (Some(method), None) => method.to_string(),
        (None, _) => "jsonrpc answer".to_string(),
    }
}

/// The span attributes of a call (MCP and GenAI semantic conventions,
/// and the gateway's own under `agentry.`).
pub fn span_attributes(call: &Call) -> serde_json::Map<String, Value> {
    let mut a = serde_json::Map::new();
    let m = &call.message;
    if let Some(method) = m.method() {
        a.insert("mcp.method.name".into(), method.into());
    }
    if let Some(name) = m.name() {
        let key = match m.method() {
            Some("tools/call") => "gen_ai.tool.name",
            Some("resources/read") => "mcp.resource.uri",
            Some("prompts/get") => "gen_ai.prompt.name",
            _ => "agentry.mcp.target",
        };
        a.insert(key.into(), name.into());
    }
    if m.method() == Some("tools/call") {
        a.insert("gen_ai.operation.name".into(), "execute_tool".into());
    }
    if let Some(id) = m.id() {
        a.insert(
            "jsonrpc.request.id".into(),
            Value::String(match id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        );
    }
    if let Some(sid) = &call.session_id {
        a.insert("mcp.session.id".into(), sid.clone().into());
    }
    if let Some(c) = &call.client_id {
        a.insert("agentry.client_id".into(), c.clone().into());
    }
    a.insert("agentry.mcp_server".into(), call.server.clone().into());
    a
}

/// The record's action for a method: what it does, in the audit log's
/// `area.verb` form.
pub fn action(method: Option<&str>) -> &'static str {
    match method {
        Some("tools/call") => "mcp.tool_call",
        Some("resources/read") => "mcp.resource_read",
        Some("prompts/get") => "mcp.prompt_get",
        _ => "mcp.message",
    }
}

fn common(ctx: &Context, call: &Call, outcome: Outcome) -> Event {
    let mut ev = ctx
        .event(action(call.message.method()), outcome)
        .target("mcp_server", &call.server)
        .detail("method", call.message.method());
    if let Some(name) = call.message.name() {
        ev = ev.detail("name", name);
    }
    for (key, value) in [
        ("client_id", &call.client_id),
        ("session_id", &call.session_id),
        ("jti", &call.jti),
        ("trace_id", &call.trace_id),
    ] {
        if let Some(v) = value {
            ev = ev.detail(key, v);
        }
    }
    ev
}

/// The decision record of a message.
pub fn decision(ctx: &Context, call: &Call, verdict: &Verdict) -> Event {
    let (outcome, decision) = match verdict {
        Verdict::Allowed { .. } => (Outcome::Success, "allowed"),
        Verdict::StepUp { .. } => (Outcome::Denied, "step_up"),
        Verdict::Denied { .. } => (Outcome::Denied, "denied"),
    };
    let mut ev = common(ctx, call, outcome).detail("decision", decision);
    if call.headers_only {
        ev = ev.detail("via", "forward_auth");
    } else if call.message.method() == Some("tools/call") {
        ev = ev.detail(
            "arguments_sha256",
            arguments_digest(&call.message.arguments()),
        );
    }
    match verdict {
        Verdict::Allowed { granted_by } => ev.detail("granted_by", granted_by),
        Verdict::StepUp { scope, reason } => {
            ev.detail("scope_needed", scope).reason(reason.clone())
        }
        Verdict::Denied { reason } => ev.reason(reason.clone()),
    }
}

/// The record of a refused GET (event stream) or DELETE (session end),
/// which carry no message: the decision is on access to the server.
pub fn transport_refusal(
    ctx: &Context,
    server: &str,
    http_method: &str,
    session_id: Option<&str>,
    verdict: &Verdict,
) -> Event {
    let (decision, reason) = match verdict {
        Verdict::Allowed { .. } => ("allowed", ""),
        Verdict::StepUp { reason, .. } => ("step_up", reason.as_str()),
        Verdict::Denied { reason } => ("denied", reason.as_str()),
    };
    let mut ev = ctx
        .event("mcp.message", Outcome::Denied)
        .target("mcp_server", server)
        .detail("http_method", http_method)
        .detail("decision", decision)
        .reason(reason.to_string());
    if let Some(s) = session_id {
        ev = ev.detail("session_id", s);
    }
    ev
}

/// The result record of a forwarded call, linked to its decision record.
pub fn result(
    ctx: &Context,
    call: &Call,
    decision_seq: i64,
    outcome: CallOutcome,
    detail: Option<&str>,
    latency_ms: u64,
) -> Event {
    let audit_outcome = match outcome {
        CallOutcome::Ok => Outcome::Success,
        CallOutcome::ToolError | CallOutcome::RpcError => Outcome::Failure,
        CallOutcome::UpstreamFailure => Outcome::Error,
        CallOutcome::Cancelled => Outcome::Failure,
        CallOutcome::NotApproved => Outcome::Denied,
    };
    let mut ev = common(ctx, call, audit_outcome)
        .detail("decision_seq", decision_seq)
        .detail("result", outcome)
        .detail("latency_ms", latency_ms);
    ev.action = format!("{}.result", ev.action);
    if let Some(d) = detail {
        ev = ev.reason(crate::names::shown(d));
    }
    ev
}

/// A gateway record at a glance, for the audit log page: what it acted on
/// and how it went (`search: allowed`, `search: ok in 12 ms`); `None` for
/// other records.
pub fn glance(action: &str, details: &Value) -> Option<String> {
    if !action.starts_with("mcp.") {
        return None;
    }
    let field = |k: &str| details.get(k).and_then(Value::as_str);
    let what = field("name")
        .or_else(|| field("method"))
        .or_else(|| field("http_method"))
        .unwrap_or("message");
    let how = match (field("result"), field("decision")) {
        (Some(r), _) => match details.get("latency_ms").and_then(Value::as_u64) {
            Some(ms) => format!("{r} in {ms} ms"),
            None => r.to_string(),
        },
        (None, Some(d)) => d.to_string(),
        (None, None) => return None,
    };
    Some(format!("{}: {how}", crate::names::shown(what)))
}

/// How an answer to a forwarded call ended, from the answer's JSON.
pub fn outcome_of(answer: &Value) -> (CallOutcome, Option<String>) {
    if let Some(err) = answer.get("error") {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        return (
            CallOutcome::RpcError,
            Some(format!("JSON-RPC error {code}")),
        );
    }
    let is_error = answer
        .get("result")
        .and_then(|r| r.get("isError"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if is_error {
        (CallOutcome::ToolError, None)
    } else {
        (CallOutcome::Ok, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::message::parse;
    use serde_json::json;

    fn ctx() -> Context {
        Context::system("test")
    }

    fn call_msg() -> Message {
        parse(br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search","arguments":{"b":1,"a":"x"}}}"#).unwrap()
    }

    #[test]
    fn gateway_records_read_at_a_glance() {
        let d = json!({"name": "search", "decision": "allowed"});
        assert_eq!(glance("mcp.tool_call", &d).unwrap(), "search: allowed");
        let r = json!({"name": "search", "result": "ok", "latency_ms": 12});
        assert_eq!(
            glance("mcp.tool_call.result", &r).unwrap(),
            "search: ok in 12 ms"
        );
        let m = json!({"method": "tools/list", "decision": "denied"});
        assert_eq!(glance("mcp.message", &m).unwrap(), "tools/list: denied");
        assert_eq!(glance("user.create", &d), None);
    }

    #[test]
    fn decision_records_name_the_call_and_digest_its_arguments() {
        let m = call_msg();
        let call = Call {
            server: "kb".into(),
            message: m,
            client_id: Some("c1".into()),
            session_id: Some("s1".into()),
            jti: Some("j1".into()),
            trace_id: None,
            headers_only: false,
            span: None,
        };
        let ev = decision(
            &ctx(),
            &call,
            &Verdict::Allowed {
                granted_by: vec!["kb_user".into()],
            },
        );
        assert_eq!(ev.action, "mcp.tool_call");
        assert_eq!(ev.outcome, Outcome::Success);
        assert_eq!(
            (ev.target_type.as_deref(), ev.target_id.as_deref()),
            (Some("mcp_server"), Some("kb"))
        );
        assert_eq!(ev.details["name"], "search");
        assert_eq!(ev.details["decision"], "allowed");
        assert_eq!(
            ev.details["arguments_sha256"],
            arguments_digest(&json!({"a": "x", "b": 1}))
        );
        assert_eq!(ev.details["jti"], "j1");
        assert!(ev.details.get("trace_id").is_none());
        // The arguments themselves are not in the record.
        assert!(!ev.details.to_string().contains("\"x\""));

        let step = decision(
            &ctx(),
            &call,
            &Verdict::StepUp {
                scope: vec!["mcp:call".into()],
                reason: "scope".into(),
            },
        );
        assert_eq!(
            (step.outcome, step.details["decision"].as_str()),
            (Outcome::Denied, Some("step_up"))
        );
        assert_eq!(step.details["scope_needed"], json!(["mcp:call"]));
        let denied = decision(
            &ctx(),
            &call,
            &Verdict::Denied {
                reason: "no role grants mcp:call".into(),
            },
        );
        assert_eq!(denied.reason.as_deref(), Some("no role grants mcp:call"));

        let ping = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        let ev = decision(
            &ctx(),
            &Call {
                message: ping,
                ..call
            },
            &Verdict::Denied { reason: "r".into() },
        );
        assert_eq!(ev.action, "mcp.message");
        assert!(ev.details.get("arguments_sha256").is_none());
    }

    #[test]
    fn results_link_to_their_decision_and_say_how_the_call_ended() {
        let m = call_msg();
        let call = Call {
            server: "kb".into(),
            message: m,
            client_id: None,
            session_id: None,
            jti: None,
            trace_id: Some("t1".into()),
            headers_only: false,
            span: None,
        };
        let ev = result(
            &ctx(),
            &call,
            41,
            CallOutcome::UpstreamFailure,
            Some("cannot connect"),
            12,
        );
        assert_eq!(ev.action, "mcp.tool_call.result");
        assert_eq!(ev.outcome, Outcome::Error);
        assert_eq!(ev.details["decision_seq"], 41);
        assert_eq!(ev.details["result"], "upstream_failure");
        assert_eq!(ev.details["latency_ms"], 12);
        assert_eq!(ev.reason.as_deref(), Some("cannot connect"));

        assert_eq!(
            outcome_of(&json!({"result": {"content": []}})).0,
            CallOutcome::Ok
        );
        assert_eq!(
            outcome_of(&json!({"result": {"isError": true}})).0,
            CallOutcome::ToolError
        );
        let (o, d) = outcome_of(&json!({"error": {"code": -32602, "message": "bad"}}));
        assert_eq!(
            (o, d.as_deref()),
            (CallOutcome::RpcError, Some("JSON-RPC error -32602"))
        );
    }
}
