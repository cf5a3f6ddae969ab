//! The gateway's policy as pure functions over data: which permission on
//! which resource a message needs (SPEC §14), whether the `Mcp-Method` /
//! `Mcp-Name` headers agree with the body, and which entries of a
//! `*/list` answer a caller may see. The RBAC engine answers the questions
//! these functions ask; nothing here does I/O.

use std::collections::BTreeMap;

use serde_json::Value;

use super::message::{codes, Kind, Message};

crate::closed_set! {
    /// The resource types of the gateway's questions; a resource's id is
    /// `<server name>/<tool, URI, prompt or method>`.
    pub enum McpResourceType {
        Tool = "mcp_tool",
        Resource = "mcp_resource",
        Prompt = "mcp_prompt",
        Method = "mcp_method",
    }
}

/// The permissions the gateway asks for when no tool setting maps another.
pub const CALL: &str = crate::rbac::Permission::McpCall.as_str();
pub const READ: &str = crate::rbac::Permission::McpRead.as_str();
pub const PROMPT: &str = crate::rbac::Permission::McpPrompt.as_str();

/// What one message needs of its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Lifecycle and plumbing (`initialize`, `ping`, `server/discover`,
    /// notifications, answers to the server's own requests): any principal
    /// allowed some access to this server.
    ServerAccess,
    /// `permission` on `(resource_type, resource_id)`.
    Permission {
        permission: String,
        resource_type: McpResourceType,
        resource_id: String,
    },
}

impl Need {
    /// Calling `tool`: its mapped permission, else `mcp:call`; the same
    /// question for the call and for its entry in `tools/list`.
    fn tool(server: &str, tool: &str, mapped: impl Fn(&str) -> Option<String>) -> Need {
        let permission = mapped(tool).unwrap_or_else(|| CALL.to_string());
        Need::on(&permission, McpResourceType::Tool, server, tool)
    }

    fn on(permission: &str, resource_type: McpResourceType, server: &str, name: &str) -> Need {
        Need::Permission {
            permission: permission.to_string(),
            resource_type,
            resource_id: format!("{server}/{name}"),
        }
    }
}

/// Methods any principal with some access to the server may send.
const PLUMBING: &[&str] = &["initialize", "ping", "server/discover"];

/// The methods whose answers are lists filtered per caller, and the key of
/// the list in the result.
pub const LISTS: &[(&str, &str)] = &[
    ("tools/list", "tools"),
    ("resources/list", "resources"),
    ("resources/templates/list", "resourceTemplates"),
    ("prompts/list", "prompts"),
];

/// What `msg`, sent to the server named `server`, needs. `mapped` gives a
/// tool's permission when an admin mapped one (`tools.<T>.permission`).
pub fn need(server: &str, msg: &Message, mapped: impl Fn(&str) -> Option<String>) -> Need {
    let method = match &msg.kind {
        Kind::Response { .. } | Kind::Notification { .. } => return Need::ServerAccess,
        Kind::Request { method, .. } => method.as_str(),
    };
    // parse() has checked the name of these three is there.
    let name = msg.name().unwrap_or_default();
    match method {
        "tools/call" => Need::tool(server, name, &mapped),
        "resources/read" => Need::on(READ, McpResourceType::Resource, server, name),
        "prompts/get" => Need::on(PROMPT, McpResourceType::Prompt, server, name),
        // Listing is allowed to anyone with access; the answer is filtered.
        m if PLUMBING.contains(&m) || LISTS.iter().any(|(l, _)| *l == m) => Need::ServerAccess,
        other => Need::on(CALL, McpResourceType::Method, server, other),
    }
}

/// The question a `*/list` entry asks, to filter the answer: `None` for an
/// entry that names nothing usable (it is dropped).
pub fn entry_need(
    server: &str,
    list_method: &str,
    entry: &Value,
    mapped: impl Fn(&str) -> Option<String>,
) -> Option<Need> {
    let field = |k: &str| entry.get(k).and_then(Value::as_str);
    Some(match list_method {
        "tools/list" => Need::tool(server, field("name")?, &mapped),
        "resources/list" => Need::on(READ, McpResourceType::Resource, server, field("uri")?),
        "resources/templates/list" => Need::on(
            READ,
            McpResourceType::Resource,
            server,
            field("uriTemplate")?,
        ),
        "prompts/list" => Need::on(PROMPT, McpResourceType::Prompt, server, field("name")?),
        _ => return None,
    })
}

/// Keeps the entries of a list answer (`result.<key>`) that `allowed`
/// admits; returns how many were removed. Anything that is not a list
/// answer is left as it is.
pub fn filter_list(
    server: &str,
    list_method: &str,
    answer: &mut Value,
    mapped: impl Fn(&str) -> Option<String>,
    mut allowed: impl FnMut(&Need) -> bool,
) -> usize {
    let Some((_, key)) = LISTS.iter().find(|(m, _)| *m == list_method) else {
        return 0;
    };
    let Some(entries) = answer
        .get_mut("result")
        .and_then(|r| r.get_mut(*key))
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    let before = entries.len();
    entries.retain(|e| {
        entry_need(server, list_method, e, &mapped)
            .as_ref()
            .is_some_and(&mut allowed)
    });
    before - entries.len()
}

/// The transport headers of a POST, when the client sent them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    pub mcp_method: Option<&'a str>,
    pub mcp_name: Option<&'a str>,
}

/// Why the headers and the body disagree (400, JSON-RPC -32020).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderMismatch(pub String);

impl HeaderMismatch {
    pub const CODE: i64 = codes::HEADER_MISMATCH;
}

/// A proxy in front may route or decide on the headers alone, so a body
/// that says something else is refused rather than forwarded. Headers
/// absent (older clients) are not an error.
pub fn check_headers(h: Headers<'_>, msg: &Message) -> Result<(), HeaderMismatch> {
    if let Some(m) = h.mcp_method {
        if msg.method() != Some(m) {
            return Err(HeaderMismatch(format!(
                "Mcp-Method {:?} does not match the message's method {:?}",
                crate::names::shown(m),
                msg.method().map(crate::names::shown).unwrap_or_default()
            )));
        }
    }
    match (h.mcp_name, msg.name()) {
        (Some(hn), Some(bn)) if hn != bn => Err(HeaderMismatch(format!(
            "Mcp-Name {:?} does not match the message's {:?}",
            crate::names::shown(hn),
            crate::names::shown(bn)
        ))),
        (Some(hn), None) => Err(HeaderMismatch(format!(
            "Mcp-Name {:?} is sent with a message that names nothing",
            crate::names::shown(hn)
        ))),
        (None, Some(_)) if h.mcp_method.is_some() => Err(HeaderMismatch(
            "Mcp-Name is required with Mcp-Method for tools/call, resources/read and prompts/get"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Per-tool settings an admin gives a server (`tools.<name>`); every key
/// optional.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ToolSettings {
    /// Permission a call needs instead of `mcp:call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::formats::Permission>)]
    pub permission: Option<String>,
    /// Keep the call's arguments (encrypted) in the audit record.
    #[serde(default)]
    pub record_arguments: bool,
    /// Classification the recorded arguments are encrypted under
    /// (default `confidential`); a key ring of it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::formats::Classification>)]
    pub classification: Option<String>,
    /// Calls per minute per principal to this tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub calls_per_minute: Option<u32>,
}

/// A server's tool settings, by tool name.
pub type Tools = BTreeMap<String, ToolSettings>;

/// The permission mapping of `tools`, for [`need`] and [`filter_list`].
pub fn mapping(tools: &Tools) -> impl Fn(&str) -> Option<String> + '_ {
    move |tool: &str| tools.get(tool).and_then(|t| t.permission.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::message::parse;
    use serde_json::json;

    fn msg(v: Value) -> Message {
        parse(v.to_string().as_bytes()).unwrap()
    }

    fn call(tool: &str) -> Message {
        msg(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}),
        )
    }

    #[test]
    fn each_method_asks_its_own_question() {
        let tools: Tools = [(
            "read_knowledge".to_string(),
            ToolSettings {
                permission: Some("knowledge:read".into()),
                ..Default::default()
            },
        )]
        .into();
        let m = mapping(&tools);
        assert_eq!(
            need("kb", &call("search"), &m),
            Need::on("mcp:call", McpResourceType::Tool, "kb", "search")
        );
        assert_eq!(
            need("kb", &call("read_knowledge"), &m),
            Need::on(
                "knowledge:read",
                McpResourceType::Tool,
                "kb",
                "read_knowledge"
            )
        );
        let read = msg(
            json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "kb://a"}}),
        );
        assert_eq!(
            need("kb", &read, &m),
            Need::on("mcp:read", McpResourceType::Resource, "kb", "kb://a")
        );
        let prompt = msg(
            json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "triage"}}),
        );
        assert_eq!(
            need("kb", &prompt, &m),
            Need::on("mcp:prompt", McpResourceType::Prompt, "kb", "triage")
        );
        let other =
            msg(json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {}}));
        assert_eq!(
            need("kb", &other, &m),
            Need::on(
                "mcp:call",
                McpResourceType::Method,
                "kb",
                "completion/complete"
            )
        );
        for plumbing in [
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json!({"jsonrpc": "2.0", "id": 9, "result": {"content": []}}),
        ] {
            assert_eq!(
                need("kb", &msg(plumbing.clone()), &m),
                Need::ServerAccess,
                "{plumbing}"
            );
        }
    }

    #[test]
    fn list_answers_keep_only_what_the_caller_may_use() {
        let tools: Tools = [(
            "admin_reset".to_string(),
            ToolSettings {
                permission: Some("kb:admin".into()),
                ..Default::default()
            },
        )]
        .into();
        let mut answer = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [
            {"name": "search", "inputSchema": {}},
            {"name": "admin_reset", "inputSchema": {}},
            {"inputSchema": {}},
            {"name": "delete_workflow", "inputSchema": {}}
        ], "nextCursor": "c"}});
        let removed = filter_list(
            "kb",
            "tools/list",
            &mut answer,
            mapping(&tools),
            |n| match n {
                Need::Permission {
                    permission,
                    resource_id,
                    ..
                } => permission == "mcp:call" && resource_id != "kb/delete_workflow",
                Need::ServerAccess => false,
            },
        );
        assert_eq!(removed, 3);
        assert_eq!(
            answer["result"]["tools"],
            json!([{"name": "search", "inputSchema": {}}])
        );
        assert_eq!(answer["result"]["nextCursor"], "c");

        let mut resources =
            json!({"result": {"resources": [{"uri": "kb://a"}, {"uri": "kb://b"}]}});
        let removed = filter_list(
            "kb",
            "resources/list",
            &mut resources,
            mapping(&tools),
            |n| matches!(n, Need::Permission { resource_id, .. } if resource_id == "kb/kb://a"),
        );
        assert_eq!(
            (
                removed,
                resources["result"]["resources"].as_array().unwrap().len()
            ),
            (1, 1)
        );

        // An error answer, or another method, is left alone.
        let mut error = json!({"error": {"code": -32601, "message": "no"}});
        assert_eq!(
            filter_list("kb", "tools/list", &mut error, mapping(&tools), |_| false),
            0
        );
        let mut call = json!({"result": {"tools": [1]}});
        assert_eq!(
            filter_list("kb", "tools/call", &mut call, mapping(&tools), |_| false),
            0
        );
    }

    #[test]
    fn headers_must_agree_with_the_body_when_sent() {
        let h = |m: Option<&'static str>, n: Option<&'static str>| Headers {
            mcp_method: m,
            mcp_name: n,
        };
        let search = call("search");
        assert!(check_headers(h(None, None), &search).is_ok());
        assert!(check_headers(h(Some("tools/call"), Some("search")), &search).is_ok());
        for (m, n) in [
            (Some("tools/list"), None),
            (Some("tools/call"), Some("delete_all")),
            (Some("tools/call"), None),
            (None, Some("delete_all")),
        ] {
            let e = check_headers(h(m, n), &search).unwrap_err();
            assert!(!e.0.is_empty(), "{m:?} {n:?}");
        }
        let ping = msg(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
        assert!(check_headers(h(Some("ping"), None), &ping).is_ok());
        assert!(check_headers(h(Some("ping"), Some("x")), &ping).is_err());
        assert_eq!(HeaderMismatch::CODE, -32020);
    }

    #[test]
    fn tool_settings_refuse_unknown_keys() {
        let ok: ToolSettings =
            serde_json::from_value(json!({"permission": "knowledge:read", "calls_per_minute": 10}))
                .unwrap();
        assert_eq!(ok.calls_per_minute, Some(10));
        assert!(serde_json::from_value::<ToolSettings>(json!({"permision": "x"})).is_err());
    }
}
