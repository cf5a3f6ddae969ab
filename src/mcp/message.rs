//! The JSON-RPC 2.0 messages of MCP as the gateway sees them: one message
//! per POST body (batches left the protocol in 2025-06-18 and are refused),
//! classified as a request, a notification or a response to a request the
//! server made, with what the policy needs from it (method, the name a
//! `tools/call`, `resources/read` or `prompts/get` acts on, the arguments).
//!
//! Parsing is strict where a lax reading could let a message be decided as
//! one thing and executed as another: duplicate keys are refused (two
//! `name`s would let the policy read one and the server the other), and the
//! name must be a string.

use serde_json::{Map, Value};

/// Largest message body the gateway reads (a `tools/call` with large
/// arguments fits; a stream of them is not one message).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// JSON-RPC error codes the gateway answers with.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const INVALID_PARAMS: i64 = -32602;
    /// The `Mcp-Method` / `Mcp-Name` headers disagree with the body
    /// (Streamable HTTP, 2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The caller may not send this message (the reason is in `message`).
    pub const FORBIDDEN: i64 = -32003;
    /// A calls-per-minute limit is reached (`data.retry_after_seconds`).
    pub const RATE_LIMITED: i64 = -32029;
    /// The upstream gave no usable answer (connection, status, framing,
    /// size).
    pub const UPSTREAM_FAILURE: i64 = -32050;
    /// The upstream did not answer within `gateway.call_timeout_seconds`.
    pub const UPSTREAM_TIMEOUT: i64 = -32051;
    /// A call held for approval (SPEC §18) was denied, expired or its
    /// approval used by an identical call: it was never forwarded
    /// (`data.approval_id`, `data.state`).
    pub const NOT_APPROVED: i64 = -32040;
}

/// What a message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A call that expects an answer.
    Request { id: Value, method: String },
    /// A message without an id: no answer.
    Notification { method: String },
    /// The client's answer to a request the server made (sampling,
    /// elicitation, roots).
    Response { id: Value },
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: Kind,
    /// `params`, when it is an object.
    pub params: Option<Map<String, Value>>,
}

/// Why a body is not one message we can decide on; each maps to a JSON-RPC
/// error (and the HTTP 400 the transport gives it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("the body is not JSON: {0}")]
    Parse(String),
    #[error("the message is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("batches are not part of MCP since 2025-06-18: send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
    #[error("invalid params: {0}")]
    Params(&'static str),
}

impl MessageError {
    /// The JSON-RPC error code for this refusal.
    pub fn code(&self) -> i64 {
        match self {
            MessageError::Parse(_) => codes::PARSE_ERROR,
            MessageError::Params(_) => codes::INVALID_PARAMS,
            _ => codes::INVALID_REQUEST,
        }
    }
}

/// The methods whose `params` name what they act on, and that name's key.
const NAMED: &[(&str, &str)] = &[
    ("tools/call", "name"),
    ("prompts/get", "name"),
    ("resources/read", "uri"),
];

impl Message {
    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            Kind::Response { .. } => None,
        }
    }

    /// The request id, for the answer.
    pub fn id(&self) -> Option<&Value> {
        match &self.kind {
            Kind::Request { id, .. } | Kind::Response { id } => Some(id),
            Kind::Notification { .. } => None,
        }
    }

    /// What a `tools/call`, `prompts/get` or `resources/read` acts on (the
    /// tool or prompt name, the resource URI).
    pub fn name(&self) -> Option<&str> {
        let key = NAMED
            .iter()
            .find(|(m, _)| Some(*m) == self.method())
            .map(|(_, k)| *k)?;
        self.params.as_ref()?.get(key)?.as_str()
    }

    /// A `tools/call`'s arguments (`{}` when it sends none).
    pub fn arguments(&self) -> Value {
        self.params
            .as_ref()
            .and_then(|p| p.get("arguments"))
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }
}

/// The message a proxy in front describes in its headers (`Mcp-Method`,
/// `Mcp-Name`) when agentry decides without seeing the body (forward
/// auth): a request with that method, naming `name`.
pub fn from_headers(method: &str, name: Option<&str>) -> Message {
    let params = NAMED
        .iter()
        .find(|(m, _)| *m == method)
        .zip(name)
        .map(|((_, key), n)| {
            let mut p = Map::new();
            p.insert((*key).to_string(), Value::String(n.to_string()));
            p
        });
    Message {
        kind: Kind::Request {
            id: Value::Null,
            method: method.to_string(),
        },
        params,
    }
}

/// SHA-256 (hex) of a call's arguments in RFC 8785 canonical JSON: the
/// same arguments give the same digest whatever their key order or number
/// spelling, so an audit record (and an approval) can name them without
/// holding them.
pub fn arguments_digest(arguments: &Value) -> String {
    // Serialising a Value cannot fail: its keys are strings and its numbers
    // finite.
    let canonical = serde_json_canonicalizer::to_vec(arguments).unwrap_or_default();
    crate::crypto::sha256_hex(&canonical)
}

/// Parses one message from a POST body.
pub fn parse(body: &[u8]) -> Result<Message, MessageError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge);
    }
    let value = strict_json(body)?;
    let obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => return Err(MessageError::Batch),
        _ => return Err(MessageError::Invalid("the message must be a JSON object")),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(MessageError::Invalid("\"jsonrpc\" must be \"2.0\""));
    }
    let id = match obj.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => return Err(MessageError::Invalid("\"id\" must be a string or a number")),
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p.clone()),
        Some(_) => return Err(MessageError::Params("\"params\" must be an object")),
    };
    let kind = match (obj.get("method"), id) {
        (Some(Value::String(m)), Some(id)) => Kind::Request {
            id,
            method: m.clone(),
        },
        (Some(Value::String(m)), None) => Kind::Notification { method: m.clone() },
        (Some(_), _) => return Err(MessageError::Invalid("\"method\" must be a string")),
        (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
            Kind::Response { id }
        }
        (None, _) => {
            return Err(MessageError::Invalid(
                "a message needs a \"method\" or, as a response, \"result\" or \"error\"",
            ))
        }
    };
    let message = Message { kind, params };
    if let Some((_, key)) = NAMED.iter().find(|(m, _)| Some(*m) == message.method()) {
        if message.name().is_none() {
            return Err(MessageError::Params(match *key {
                "uri" => "\"params.uri\" must be a string",
                _ => "\"params.name\" must be a string",
            }));
        }
        let args = message.params.as_ref().and_then(|p| p.get("arguments"));
        if args.is_some_and(|a| !a.is_object() && !a.is_null()) {
            return Err(MessageError::Params(
                "\"params.arguments\" must be an object",
            ));
        }
    }
    Ok(message)
}

/// JSON with duplicate object keys refused at any depth.
fn strict_json(body: &[u8]) -> Result<Value, MessageError> {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Strict(Value);
    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(Strict)
        }
    }
    struct StrictVisitor;
    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let Strict(v) = map.next_value()?;
                if out.insert(key.clone(), v).is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate key {:?}",
                        crate::names::shown(&key)
                    )));
                }
            }
            Ok(Value::Object(out))
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let Strict(v) = Strict::deserialize(&mut de).map_err(|e| MessageError::Parse(e.to_string()))?;
    de.end().map_err(|e| MessageError::Parse(e.to_string()))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(v: Value) -> Result<Message, MessageError> {
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn requests_notifications_and_responses() {
        let call = msg(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "search", "arguments": {"q": "x"}}}))
        .unwrap();
        assert_eq!(call.method(), Some("tools/call"));
        assert_eq!(call.name(), Some("search"));
        assert_eq!(call.id(), Some(&json!(7)));
        assert_eq!(call.arguments(), json!({"q": "x"}));

        let read = msg(
            json!({"jsonrpc": "2.0", "id": "a", "method": "resources/read",
            "params": {"uri": "file:///runbook.md"}}),
        )
        .unwrap();
        assert_eq!(read.name(), Some("file:///runbook.md"));

        let note = msg(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
        assert_eq!(
            note.kind,
            Kind::Notification {
                method: "notifications/initialized".into()
            }
        );
        assert_eq!(note.name(), None);

        let answer = msg(json!({"jsonrpc": "2.0", "id": 3, "result": {}})).unwrap();
        assert_eq!(answer.kind, Kind::Response { id: json!(3) });
        assert_eq!(answer.method(), None);

        let no_args = msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ping_db"}}))
        .unwrap();
        assert_eq!(no_args.arguments(), json!({}));
    }

    #[test]
    fn what_is_refused_and_with_which_code() {
        let cases: Vec<(&[u8], i64)> = vec![
            (b"{not json", codes::PARSE_ERROR),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} trailing", codes::PARSE_ERROR),
            (b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", codes::INVALID_REQUEST),
            (b"\"ping\"", codes::INVALID_REQUEST),
            (b"{\"id\":1,\"method\":\"ping\"}", codes::INVALID_REQUEST),
            (b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", codes::INVALID_REQUEST),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", codes::INVALID_REQUEST),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1}", codes::INVALID_REQUEST),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":[]}", codes::INVALID_PARAMS),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}", codes::INVALID_PARAMS),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":3}}", codes::INVALID_PARAMS),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"arguments\":[1]}}", codes::INVALID_PARAMS),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"name\":\"a\"}}", codes::INVALID_PARAMS),
        ];
        for (body, code) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.code(), code, "{} -> {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_duplicate_key_cannot_make_the_policy_and_the_server_read_different_names() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","name":"delete_all"}}"#;
        let e = parse(body).unwrap_err();
        assert_eq!(e.code(), codes::PARSE_ERROR);
        assert!(e.to_string().contains("duplicate key \"name\""), "{e}");
        // Nested too.
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}"#;
        assert!(parse(body).is_err());
    }

    #[test]
    fn argument_digests_are_over_rfc_8785_canonical_json() {
        // The example of RFC 8785 §3.2.3 (key order, number and string
        // forms) ...
        let input =
            br#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]}"#;
        let v: Value = serde_json::from_slice(input).unwrap();
        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(serde_json_canonicalizer::to_string(&v).unwrap(), expected);
        assert_eq!(
            arguments_digest(&v),
            crate::crypto::sha256_hex(expected.as_bytes())
        );
        // ... so the same arguments spelled differently digest alike.
        let a: Value = serde_json::from_str(r#"{"b": 1.0, "a": [1, "x"]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":[1,"x"],"b":1}"#).unwrap();
        assert_eq!(arguments_digest(&a), arguments_digest(&b));
        assert_ne!(
            arguments_digest(&a),
            arguments_digest(&json!({"a": [1, "x"], "b": 2}))
        );
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(parse(&big).unwrap_err(), MessageError::TooLarge);
    }
}
