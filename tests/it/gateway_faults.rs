//! The gateway in front of a hostile upstream: slow, huge, malformed,
//! endless, dropped. The client always gets a JSON-RPC error (or the
//! answer) within the call timeout, the gateway holds no more than its
//! per-event bound, and the client's token never reaches the upstream.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::gateway::{records, rpc, Setup};
use crate::support::*;

/// Reads one HTTP request: (head, body).
async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

fn json_answer(body: &Value) -> Vec<u8> {
    let b = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: s-1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
        b.len()
    )
    .into_bytes()
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

fn result(id: &Value, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}})
}

/// Serves one connection the way the called tool's name says.
async fn serve(mut sock: TcpStream) {
    let Some((head, body)) = read_request(&mut sock).await else {
        return;
    };
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = msg["id"].clone();
    let tool = msg["params"]["name"].as_str().unwrap_or("").to_string();
    if msg["method"] == "initialize" {
        let init = json!({"jsonrpc": "2.0", "id": id, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile", "version": "1"}}});
        let _ = sock.write_all(&json_answer(&init)).await;
        return;
    }
    match tool.as_str() {
        // The request head as the upstream saw it.
        "echo" => {
            let _ = sock.write_all(&json_answer(&result(&id, &head))).await;
        }
        "huge" => {
            let _ = sock
                .write_all(&json_answer(&result(&id, &"x".repeat(1 << 20))))
                .await;
        }
        "garbage" => {
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\nthis is not json")
                .await;
        }
        "wrong_id" => {
            let _ = sock
                .write_all(&json_answer(&result(&json!(999), "x")))
                .await;
        }
        "html" => {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5\r\n\r\n<p>hi",
                )
                .await;
        }
        // Headers never come.
        "silent" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        // A progress event, then nothing, forever.
        "endless" => {
            let _ = sock.write_all(SSE_HEAD).await;
            let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                                  "params": {"progressToken": 1, "progress": 1}});
            let _ = sock
                .write_all(format!("event: message\ndata: {progress}\n\n").as_bytes())
                .await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        // The answer, then the stream is kept open.
        "answer_then_hang" => {
            let _ = sock.write_all(SSE_HEAD).await;
            let _ = sock
                .write_all(format!("data: {}\n\n", result(&id, "answered")).as_bytes())
                .await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        // The connection drops mid-stream.
        "drop" => {
            let _ = sock.write_all(SSE_HEAD).await;
            let _ = sock.write_all(b"data: {\"jsonrpc\":\"2.0\",\"meth").await;
        }
        // One event that never ends, larger than the bound.
        "big_event" => {
            let _ = sock.write_all(SSE_HEAD).await;
            let _ = sock.write_all(b"data: ").await;
            for _ in 0..64 {
                if sock.write_all(&[b'y'; 4096]).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        _ => {
            let _ = sock.write_all(&json_answer(&result(&id, "ok"))).await;
        }
    }
}

async fn hostile_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock));
        }
    });
    format!("http://{addr}/mcp")
}

fn call(id: i64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": {}}})
}

/// The whole answer's body, with a hang guard far above the call timeout.
async fn body_of(res: reqwest::Response) -> String {
    tokio::time::timeout(Duration::from_secs(40), res.text())
        .await
        .expect("the gateway ended the answer")
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_upstream_gets_the_client_an_error_in_time_and_never_the_token() {
    let s = TestServer::start_with(|c| {
        c.gateway.call_timeout_seconds = 10;
        c.gateway.max_response_bytes = 65_536;
    })
    .await;
    let upstream = hostile_upstream().await;
    let a = Setup::new(&s).await;
    a.server(
        &s,
        "h",
        &upstream,
        json!({"upstream_headers": {"X-Upstream-Key": "upstream-secret"}}),
    )
    .await;
    a.role(&s, "h_caller", &["mcp:call"]).await;
    let (id, key) = a.agent(&s, "h-agent").await;
    a.assign(&s, &id, "h_caller", Some(("mcp_tool", "h/*")))
        .await;

    // The upstream sees its own credential and never the client's.
    let r = rpc(&s, "h", &key, None, call(1, "echo")).await;
    let body: Value = r.json().await.unwrap();
    let head = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.contains("x-upstream-key: upstream-secret"), "{head}");
    assert!(!head.contains("authorization"), "{head}");
    assert!(!head.contains(&key.to_ascii_lowercase()), "{head}");

    // JSON answers: too large, not JSON, not the answer, not JSON at all.
    for (i, tool) in ["huge", "garbage", "wrong_id", "html"].iter().enumerate() {
        let r = rpc(&s, "h", &key, None, call(10 + i as i64, tool)).await;
        assert_eq!(r.status(), 200, "{tool}");
        let body: Value = serde_json::from_str(&body_of(r).await).unwrap();
        assert_eq!(body["id"], 10 + i as i64, "{tool}: {body}");
        assert_eq!(body["error"]["code"], -32050, "{tool}: {body}");
    }

    // Event streams: dropped, an endless event, an answer kept open.
    let r = rpc(&s, "h", &key, None, call(20, "drop")).await;
    let text = body_of(r).await;
    assert!(text.contains("-32050"), "{text}");
    let r = rpc(&s, "h", &key, None, call(21, "big_event")).await;
    let text = body_of(r).await;
    assert!(
        text.contains("-32050") && text.contains("max_response_bytes"),
        "{text}"
    );
    let r = rpc(&s, "h", &key, None, call(22, "answer_then_hang")).await;
    let text = body_of(r).await;
    assert!(text.contains("answered"), "{text}");

    // Slow: no headers, or a stream without the answer — both end at the
    // call timeout with -32051, concurrently.
    let (silent, endless) = tokio::join!(
        async { body_of(rpc(&s, "h", &key, None, call(30, "silent")).await).await },
        async { body_of(rpc(&s, "h", &key, None, call(31, "endless")).await).await },
    );
    let silent: Value = serde_json::from_str(&silent).unwrap();
    assert_eq!(silent["error"]["code"], -32051, "{silent}");
    assert!(endless.contains("notifications/progress"), "{endless}");
    assert!(endless.contains("-32051"), "{endless}");

    // Every call has its result record, each an upstream failure but the
    // echo and the answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let results = records(&s, "mcp.tool_call.result");
    let failed = results
        .iter()
        .filter(|(_, d)| d["result"] == "upstream_failure")
        .count();
    assert_eq!(results.len(), 10, "{results:?}");
    assert_eq!(failed, 8, "{results:?}");
    s.stop().await;
}

#[tokio::test]
async fn bad_client_messages_get_json_rpc_errors_and_unknown_servers_404() {
    let s = TestServer::start().await;
    let upstream = hostile_upstream().await;
    let a = Setup::new(&s).await;
    a.server(&s, "h", &upstream, json!({})).await;
    let (_id, key) = a.agent(&s, "no-role").await;
    let raw = |body: &'static str| {
        client()
            .post(s.url("/mcp/h"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, code) in [
        ("not json", -32700),
        ("[]", -32600),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, -32600),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            -32602,
        ),
    ] {
        let r = raw(body).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // Too large.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":"{}"}}}}"#,
        "a".repeat(5 << 20)
    );
    let r = client()
        .post(s.url("/mcp/h"))
        .bearer_auth(&key)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // No role at all: even initialize is refused, with the reason.
    let r = rpc(
        &s,
        "h",
        &key,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("no role"),
        "{v}"
    );
    // Unknown and disabled servers.
    let r = rpc(&s, "nope", &key, None, call(1, "x")).await;
    assert_eq!(r.status(), 404);
    s.stop().await;
}

/// The trace id and parent span id an upstream was sent.
struct Seen {
    trace_id: String,
    parent_id: String,
}

/// The `traceparent` line of a request head the echo tool returned.
fn traceparent_seen(head: &str) -> Seen {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("traceparent:"))
        .unwrap_or_else(|| panic!("no traceparent upstream: {head}"));
    let v: Vec<&str> = line[12..].trim().split('-').collect();
    Seen {
        trace_id: v[1].to_string(),
        parent_id: v[2].to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_gets_a_gateway_span_that_continues_the_callers_trace() {
    let s = TestServer::start().await;
    let upstream = hostile_upstream().await;
    let a = Setup::new(&s).await;
    a.server(&s, "h", &upstream, json!({})).await;
    a.role(&s, "h_caller", &["mcp:call"]).await;
    let (id, key) = a.agent(&s, "h-agent").await;
    a.assign(&s, &id, "h_caller", Some(("mcp_tool", "h/echo")))
        .await;
    let send = |body: Value, traceparent: Option<&'static str>| {
        let mut r = client()
            .post(s.url("/mcp/h"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(tp) = traceparent {
            r = r.header("traceparent", tp);
        }
        r.send()
    };
    let echo_head = |r: Value| {
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let span_of = |trace: String, span_id: String| {
        let c = a.c.clone();
        let s = &s;
        async move {
            let path = format!("/api/v1/traces/{trace}");
            for _ in 0..50 {
                let res = c.get(s.url(&path)).send().await.unwrap();
                if res.status() == 200 {
                    let t: Value = res.json().await.unwrap();
                    if let Some(sp) = t["spans"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|x| x["span_id"] == span_id.as_str())
                    {
                        return sp.clone();
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no span {span_id} in trace {trace}");
        }
    };

    // The caller's header: the gateway's span is its child, the upstream's parent.
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = send(call(1, "echo"), Some(caller)).await.unwrap();
    let seen = traceparent_seen(&echo_head(r.json().await.unwrap()));
    assert_eq!(seen.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(seen.parent_id, "00f067aa0ba902b7");
    let span = span_of(seen.trace_id.clone(), seen.parent_id.clone()).await;
    assert_eq!(span["name"], "tools/call echo");
    assert_eq!(span["service"], "agentry");
    assert_eq!(span["parent_span_id"], "00f067aa0ba902b7");
    assert_eq!(span["attributes"]["gen_ai.tool.name"], "echo");
    assert_eq!(span["attributes"]["mcp.method.name"], "tools/call");
    assert_eq!(span["attributes"]["agentry.mcp_server"], "h");
    assert_eq!(span["status"], "unset");
    // The call's audit records name the trace.
    let calls = crate::gateway::records(&s, "mcp.tool_call");
    assert!(calls
        .iter()
        .all(|(_, d)| d["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"));

    // `_meta` first; without any, a trace starts at the gateway.
    let mut meta = call(2, "echo");
    meta["params"]["_meta"] =
        json!({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"});
    let r = send(meta, Some(caller)).await.unwrap();
    let seen = traceparent_seen(&echo_head(r.json().await.unwrap()));
    assert_eq!(seen.trace_id, "0af7651916cd43dd8448eb211c80319c");
    let r = send(call(3, "echo"), Some("00-zz-yy-01")).await.unwrap();
    let seen = traceparent_seen(&echo_head(r.json().await.unwrap()));
    let span = span_of(seen.trace_id.clone(), seen.parent_id.clone()).await;
    assert_eq!(span["parent_span_id"], Value::Null);
    let listed = get_json(
        &a.c,
        &s,
        "/api/v1/traces?service=agentry&name=tools%2Fcall%20echo",
    )
    .await;
    assert_eq!(items(&listed).len(), 3, "{listed}");

    // A refused call has its span too, failed.
    let r = send(call(4, "secret"), Some(caller)).await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_object(), "{body}");
    let denied = crate::alerting::until(
        &a.c,
        &s,
        "/api/v1/traces?service=agentry&status=error",
        10,
        |v| !items(v).is_empty(),
    )
    .await;
    assert_eq!(items(&denied)[0]["name"], "tools/call secret", "{denied}");
    assert_eq!(
        items(&denied)[0]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    s.stop().await;
}
