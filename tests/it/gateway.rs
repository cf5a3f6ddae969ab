//! The MCP gateway (SPEC §14) with real parts: the official MCP Python
//! SDK client through `/mcp/{name}` to a stock SDK `MCPServer` upstream
//! that has no authentication of its own.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// `tests/mcp/upstream.py` on a free loopback port, stopped when dropped.
pub(crate) struct Upstream {
    child: Child,
    pub url: String,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Upstream {
    /// Starts the stock server; `json`: JSON answers instead of streams.
    pub(crate) async fn start(json: bool) -> Upstream {
        let (child, url) = crate::mcp_sdk::serve("upstream.py", |port| {
            let mut args = vec![port.to_string()];
            if json {
                args.push("json".into());
            }
            args
        })
        .await;
        Upstream { child, url }
    }
}

/// The admin's client, for setting things up.
pub(crate) struct Setup {
    pub c: reqwest::Client,
    pub csrf: String,
}

impl Setup {
    pub(crate) async fn new(s: &TestServer) -> Setup {
        let (c, csrf) = admin(s).await;
        Setup { c, csrf }
    }

    pub(crate) async fn send(
        &self,
        s: &TestServer,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.c
            .request(method, s.url(path))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Registers `upstream` as the proxied server `name`; returns its id.
    pub(crate) async fn server(
        &self,
        s: &TestServer,
        name: &str,
        upstream: &str,
        extra: Value,
    ) -> String {
        let mut body = json!({"name": name, "upstream_url": upstream});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let res = self
            .send(s, reqwest::Method::POST, "/api/v1/mcp-servers", body)
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub(crate) async fn role(&self, s: &TestServer, name: &str, permissions: &[&str]) {
        let res = self
            .send(
                s,
                reqwest::Method::POST,
                "/api/v1/roles",
                json!({"name": name, "permissions": permissions}),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }

    /// Assigns `role` to agent `id` on resources of `kind` matching
    /// `pattern` (or everywhere).
    pub(crate) async fn assign(
        &self,
        s: &TestServer,
        id: &str,
        role: &str,
        scope: Option<(&str, &str)>,
    ) -> String {
        let mut body = json!({"subject": {"type": "agent", "id": id}, "role": role});
        if let Some((kind, pattern)) = scope {
            body["scope"] = json!({"resource_type": kind, "resource_pattern": pattern});
        }
        let res = self
            .send(s, reqwest::Method::POST, "/api/v1/role-assignments", body)
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A new agent and its API key.
    pub(crate) async fn agent(&self, s: &TestServer, name: &str) -> (String, String) {
        let id = create_agent(s, &self.c, &self.csrf, name, "planner").await;
        let key = create_agent_key(s, &self.c, &self.csrf, &id).await;
        (id, key)
    }
}

/// The upstream registered as `kb`, and an agent allowed the tools
/// search, slow and fail, the resource kb://readme and the prompt
/// summarize — and nothing else.
async fn kb_agent(s: &TestServer, upstream: &Upstream) -> (Setup, String, String) {
    let a = Setup::new(s).await;
    a.server(s, "kb", &upstream.url, json!({})).await;
    a.role(s, "kb_user", &["mcp:call", "mcp:read", "mcp:prompt"])
        .await;
    let (id, key) = a.agent(s, "kb-agent").await;
    for (kind, pattern) in [
        ("mcp_tool", "kb/search"),
        ("mcp_tool", "kb/slow"),
        ("mcp_tool", "kb/fail"),
        ("mcp_resource", "kb/kb://readme"),
        ("mcp_prompt", "kb/summarize"),
    ] {
        a.assign(s, &id, "kb_user", Some((kind, pattern))).await;
    }
    (a, id, key)
}

/// Runs `tests/mcp/client_gateway.py` against `url` with `credential`
/// (sessions opened with `server/discover`, protocol 2026-07-28).
pub(crate) fn sdk(url: &str, credential: &str, steps: &[&str]) -> Vec<Value> {
    sdk_in(&[], url, credential, steps)
}

/// [`sdk`] with the script's environment: `MCP_ERA=legacy` opens sessions
/// with `initialize` (no Mcp-Method / Mcp-Name headers).
fn sdk_in(env: &[(&str, &str)], url: &str, credential: &str, steps: &[&str]) -> Vec<Value> {
    let mut args = vec![url, credential];
    args.extend_from_slice(steps);
    let out = crate::mcp_sdk::run_script_with("client_gateway.py", &args, env);
    out["steps"].as_array().unwrap().clone()
}

/// Audit records of `action`, oldest first: (outcome, details).
pub(crate) fn records(s: &TestServer, action: &str) -> Vec<(String, Value)> {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT outcome, details FROM audit_log WHERE action = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([action], |r| {
        Ok((
            r.get::<_, String>(0)?,
            serde_json::from_str(&r.get::<_, String>(1)?).unwrap(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Waits for background result records to land.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_uses_tools_resources_and_prompts_through_the_gateway() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(false).await;
    let (_a, _id, key) = kb_agent(&s, &upstream).await;
    let url = s.url("/mcp/kb");
    let steps = tokio::task::spawn_blocking(move || {
        sdk(
            &url,
            &key,
            &[
                "tools",
                r#"call:search:{"query":"pumps"}"#,
                r#"call:publish:{"title":"x"}"#,
                "slow:3",
                r#"call:fail:{"reason":"r"}"#,
                "resources",
                "read:kb://readme",
                "read:kb://secret",
                "prompts",
                r#"prompt:summarize:{"topic":"pumps"}"#,
                "prompt:leak",
            ],
        )
    })
    .await
    .unwrap();
    // The list is filtered by the same policy as the calls.
    assert_eq!(steps[0], json!(["fail", "search", "slow"]));
    assert_eq!(
        steps[1]["text"],
        json!(["3 documents match 'pumps'"]),
        "{}",
        steps[1]
    );
    assert_eq!(steps[2]["code"], -32003, "{}", steps[2]);
    assert!(
        steps[2]["error"].as_str().unwrap().contains("mcp:call"),
        "{}",
        steps[2]
    );
    // The slow tool's progress streams through before its answer.
    assert_eq!(steps[3]["progress"], json!([1.0, 2.0, 3.0]), "{}", steps[3]);
    assert_eq!(steps[3]["text"], json!(["done after 3 steps"]));
    assert_eq!(steps[4]["is_error"], true);
    assert_eq!(steps[5], json!(["kb://readme"]));
    assert_eq!(steps[6], json!(["Welcome to the knowledge base."]));
    assert_eq!(steps[7]["code"], -32003);
    assert_eq!(steps[8], json!(["summarize"]));
    assert!(steps[9][0].as_str().unwrap().contains("pumps"));
    assert_eq!(steps[10]["code"], -32003);

    settle().await;
    let calls = records(&s, "mcp.tool_call");
    let decisions: Vec<&str> = calls
        .iter()
        .map(|(_, d)| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allowed", "denied", "allowed", "allowed"]);
    let (_, search) = &calls[0];
    assert_eq!(search["name"], "search");
    // SHA-256 of the RFC 8785 form of {"query":"pumps"}.
    assert_eq!(
        search["arguments_sha256"].as_str().unwrap().len(),
        64,
        "{search}"
    );
    assert!(search.get("arguments").is_none());
    let results = records(&s, "mcp.tool_call.result");
    let outcomes: Vec<&str> = results
        .iter()
        .map(|(_, d)| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "ok", "tool_error"]);
    assert!(results.iter().all(|(_, d)| d["decision_seq"].is_i64()));
    assert_eq!(records(&s, "mcp.resource_read").len(), 2);
    assert_eq!(records(&s, "mcp.prompt_get").len(), 2);
    assert_eq!(records(&s, "mcp.prompt_get.result").len(), 1);

    // Per server and tool in /metrics, and as alert series.
    let (c, csrf) = admin(&s).await;
    let metrics = get_text(&c, &s, "/metrics").await;
    for line in [
        r#"agentry_mcp_tool_calls_total{server="kb",tool="search"} 1"#,
        r#"agentry_mcp_denied_calls_total{server="kb",tool="publish"} 1"#,
        r#"agentry_mcp_tool_errors_total{server="kb",tool="fail"} 1"#,
        r#"agentry_mcp_tool_latency_seconds_count{server="kb",tool="slow"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let preview = |expression: &'static str| {
        let c = c.clone();
        let csrf = csrf.clone();
        let url = s.url("/api/v1/alert-rules/preview");
        async move {
            let res = c
                .post(url)
                .header("x-csrf-token", csrf)
                .json(&json!({"expression": expression}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["matches"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let failing = preview(r#"mcp_tool_error_rate{server="kb"} > 50%"#).await;
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert_eq!(failing[0]["labels"]["tool"], "fail", "{failing:?}");
    let denied = preview("mcp_denied_calls >= 1 in 5m").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["labels"]["tool"], "publish");
    let calls = preview("mcp_tool_calls >= 1").await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(preview("mcp_tool_latency_p95_seconds >= 0").await.len(), 3);
    let dir = s.stop().await;
    assert_audit_verifies(dir.path());
}

/// Also: a client of the earlier protocol (a session opened with
/// `initialize`, no Mcp-Method headers) is decided from the body alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answering_upstream_is_filtered_and_recorded_too() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(true).await;
    let (_a, _id, key) = kb_agent(&s, &upstream).await;
    let url = s.url("/mcp/kb");
    let steps = tokio::task::spawn_blocking(move || {
        sdk_in(
            &[("MCP_ERA", "legacy")],
            &url,
            &key,
            &["tools", r#"call:search:{"query":"q"}"#, "prompts"],
        )
    })
    .await
    .unwrap();
    assert_eq!(steps[0], json!(["fail", "search", "slow"]));
    assert_eq!(
        steps[1]["text"],
        json!(["3 documents match 'q'"]),
        "{}",
        steps[1]
    );
    assert_eq!(steps[2], json!(["summarize"]));
    settle().await;
    assert_eq!(records(&s, "mcp.tool_call.result")[0].1["result"], "ok");
    s.stop().await;
}

/// A raw Streamable HTTP POST of `body` to the gateway with `credential`.
pub(crate) async fn rpc(
    s: &TestServer,
    name: &str,
    credential: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut r = client()
        .post(s.url(&format!("/mcp/{name}")))
        .bearer_auth(credential)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(sid) = session {
        r = r.header("mcp-session-id", sid);
    }
    r.send().await.unwrap()
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

fn call(id: i64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": args}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_applies_to_the_next_message_of_an_open_session() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(false).await;
    let (a, id, key) = kb_agent(&s, &upstream).await;
    let flag = tempfile::tempdir().unwrap();
    let go = flag.path().join("go");
    let child = Command::new("python3")
        .args([
            &format!("{}/tests/mcp/client_gateway.py", env!("CARGO_MANIFEST_DIR")),
            &s.url("/mcp/kb"),
            &key,
            r#"call:search:{"query":"before"}"#,
            &format!("wait:{}", go.display()),
            r#"call:search:{"query":"after"}"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A session of its own with its GET event stream held open.
    let init = rpc(&s, "kb", &key, None, initialize()).await;
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&s, "kb", &key, Some(&sid), initialized).await;
    let stream = client()
        .get(s.url("/mcp/kb"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let held = tokio::spawn(async move { stream.text().await });
    // Once the first call is through, quarantine the agent mid-session.
    for _ in 0..200 {
        if records(&s, "mcp.tool_call").len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(records(&s, "mcp.tool_call").len(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !held.is_finished(),
        "the event stream stays open until then"
    );
    let res = a
        .send(
            &s,
            reqwest::Method::POST,
            &format!("/api/v1/agents/{id}/quarantine"),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    std::fs::write(&go, b"").unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    // The SDK ends the session on the 401 (its key is revoked): the second
    // call never reaches the upstream.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("match 'after'"), "{stdout}");
    let calls = records(&s, "mcp.tool_call");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let refused = records(&s, "auth.bearer");
    assert!(refused.iter().any(|(o, _)| o == "failure"), "{refused:?}");
    // The open event stream is cut too, within seconds (the guard here is
    // far above the re-check interval, only against a hang).
    tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the open event stream ended after the quarantine")
        .unwrap()
        .ok();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_per_server_and_per_tool_answer_with_when_to_retry() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(true).await;
    let a = Setup::new(&s).await;
    a.server(
        &s,
        "kb",
        &upstream.url,
        json!({"calls_per_minute": 3, "tools": {"slow": {"calls_per_minute": 1}}}),
    )
    .await;
    a.role(&s, "kb_caller", &["mcp:call"]).await;
    let (id, key) = a.agent(&s, "limited").await;
    a.assign(&s, &id, "kb_caller", Some(("mcp_tool", "kb/*")))
        .await;
    let init = rpc(&s, "kb", &key, None, initialize()).await;
    assert_eq!(init.status(), 200);
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let sid = Some(sid.as_str());
    // The tool's own limit: one a minute.
    let r = rpc(&s, "kb", &key, sid, call(2, "slow", json!({"steps": 0}))).await;
    assert_eq!(r.json::<Value>().await.unwrap()["result"]["isError"], false);
    let r = rpc(&s, "kb", &key, sid, call(3, "slow", json!({"steps": 0}))).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], 3);
    assert_eq!(body["error"]["code"], -32029, "{body}");
    assert_eq!(
        body["error"]["data"]["limit"],
        "tools.slow.calls_per_minute"
    );
    assert_eq!(body["error"]["data"]["retry_after_seconds"], 60);
    // The server's limit: three a minute in all (the refused call did not
    // count).
    for i in 4..6 {
        let r = rpc(
            &s,
            "kb",
            &key,
            sid,
            call(i, "search", json!({"query": "q"})),
        )
        .await;
        assert!(r.json::<Value>().await.unwrap().get("result").is_some());
    }
    let r = rpc(
        &s,
        "kb",
        &key,
        sid,
        call(6, "search", json!({"query": "q"})),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32029, "{body}");
    assert_eq!(body["error"]["data"]["limit"], "calls_per_minute");
    assert_eq!(body["error"]["data"]["retry_after_seconds"], 20);
    // Listing is not a call: still allowed.
    let r = rpc(
        &s,
        "kb",
        &key,
        sid,
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
    )
    .await;
    assert!(r.json::<Value>().await.unwrap().get("result").is_some());
    let limited: Vec<_> = records(&s, "mcp.tool_call")
        .into_iter()
        .filter(|(_, d)| d["limited"] == true)
        .collect();
    assert_eq!(limited.len(), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_scope_is_asked_to_step_up_and_sessions_end_with_delete() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(true).await;
    let (a, id, key) = kb_agent(&s, &upstream).await;
    let res = crate::oauth::token(
        &s,
        &id,
        &key,
        &[("scope", "mcp:call"), ("resource", &s.url("/mcp/kb"))],
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // A token for agentry's own API is not one for the server.
    let own = crate::oauth::token(&s, &id, &key, &[]).await;
    let own = own.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = rpc(&s, "kb", &own, None, initialize()).await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}\"",
            s.url("/.well-known/oauth-protected-resource/mcp/kb")
        )),
        "{challenge}"
    );

    let init = rpc(&s, "kb", &token, None, initialize()).await;
    assert_eq!(init.status(), 200);
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let r = rpc(
        &s,
        "kb",
        &token,
        Some(&sid),
        call(2, "search", json!({"query": "q"})),
    )
    .await;
    assert!(r.json::<Value>().await.unwrap().get("result").is_some());
    // The agent holds mcp:read on kb://readme, the token does not carry it.
    let read = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                      "params": {"uri": "kb://readme"}});
    let r = rpc(&s, "kb", &token, Some(&sid), read).await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"mcp:call mcp:read\""),
        "{challenge}"
    );
    let read = records(&s, "mcp.resource_read");
    assert_eq!(read[0].1["decision"], "step_up");

    // Mcp-Method must match the body.
    let r = client()
        .post(s.url("/mcp/kb"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .header("mcp-method", "tools/list")
        .json(&call(4, "search", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32020);

    // Another principal allowed the same tool cannot use this session: to
    // it the session does not exist.
    let (other, other_key) = a.agent(&s, "other-agent").await;
    a.assign(&s, &other, "kb_user", Some(("mcp_tool", "kb/search")))
        .await;
    let r = rpc(
        &s,
        "kb",
        &other_key,
        Some(&sid),
        call(6, "search", json!({"query": "q"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = client()
        .get(s.url("/mcp/kb"))
        .bearer_auth(&other_key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let foreign = records(&s, "mcp.message");
    assert!(
        foreign
            .iter()
            .any(|(o, d)| o == "denied" && d["session_id"] == sid.as_str()),
        "{foreign:?}"
    );
    // Its own session works.
    let init = rpc(&s, "kb", &other_key, None, initialize()).await;
    assert_eq!(init.status(), 200);

    // DELETE ends the session upstream; the session is then unknown there.
    let r = client()
        .delete(s.url("/mcp/kb"))
        .bearer_auth(&token)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = rpc(
        &s,
        "kb",
        &token,
        Some(&sid),
        call(5, "search", json!({"query": "q"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_proxied_server_gets_an_mcp_probe_that_follows_it() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(false).await;
    let a = Setup::new(&s).await;
    let id = a.server(&s, "kb", &upstream.url, json!({})).await;
    let list = get_json(&a.c, &s, "/api/v1/instances").await;
    let probe = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["mcp_server_id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no probe in {list}"));
    assert_eq!(probe["kind"], "mcp");
    assert_eq!(probe["url"], upstream.url);
    assert!(probe["agent_id"].is_null());
    // Checked every 5 s from now on: initialize + ping make it healthy.
    let path = format!("/api/v1/instances/{}", probe["id"].as_str().unwrap());
    let res = a
        .send(
            &s,
            reqwest::Method::PATCH,
            &path,
            json!({"interval_seconds": 5}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mut seen = Value::Null;
    for _ in 0..60 {
        seen = get_json(&a.c, &s, &path).await;
        if seen["state"] == "healthy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(seen["state"], "healthy", "{seen}");
    // As an alert series: the server's name stands for the agent.
    let res = a
        .send(
            &s,
            reqwest::Method::POST,
            "/api/v1/alert-rules/preview",
            json!({"expression": "agent_health == 'healthy'"}),
        )
        .await;
    let matches = res.json::<Value>().await.unwrap()["matches"].clone();
    assert_eq!(
        matches[0]["labels"]["agent_type"], "mcp_server",
        "{matches}"
    );
    assert_eq!(matches[0]["labels"]["agent"], "kb", "{matches}");

    // The probe follows the server: renamed and disabled with it, gone
    // when it is no longer proxied.
    let server_path = format!("/api/v1/mcp-servers/{id}");
    let put = |body: Value| a.send(&s, reqwest::Method::PUT, &server_path, body);
    let res = put(json!({"name": "kb2", "upstream_url": upstream.url, "enabled": false})).await;
    assert_eq!(res.status(), 200);
    let seen = get_json(&a.c, &s, &path).await;
    assert_eq!(seen["name"], "kb2");
    assert_eq!(seen["enabled"], false);
    assert_eq!(seen["interval_seconds"], 5, "the admin's tuning stays");
    let res = put(json!({"name": "kb2", "uri": "https://kb.example.com/mcp"})).await;
    assert_eq!(res.status(), 200);
    let res = a.send(&s, reqwest::Method::GET, &path, json!(null)).await;
    assert_eq!(res.status(), 404);

    // An agent's own mcp instance needs a URL.
    let agent = create_agent(&s, &a.c, &a.csrf, "mcp-owner", "planner").await;
    let res = a
        .send(
            &s,
            reqwest::Method::POST,
            "/api/v1/instances",
            json!({"agent_id": agent, "name": "m", "kind": "mcp"}),
        )
        .await;
    let p = expect_problem(res, 422).await;
    assert!(p["errors"]["url"].as_str().unwrap().contains("mcp"), "{p}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_takes_agentrys_tokens_gets_one_exchanged_for_each_caller() {
    let s = TestServer::start().await;
    // The upstream is a stock SDK server that itself verifies agentry's
    // tokens for its own URI (and knowledge:read).
    let downstream = crate::mcp_sdk::SdkServer::start(&s.url(""), "knowledge:read").await;
    let a = Setup::new(&s).await;
    let body =
        json!({"name": "kb-direct", "uri": downstream.url, "scopes_supported": ["knowledge:read"]});
    let res = a
        .send(&s, reqwest::Method::POST, "/api/v1/mcp-servers", body)
        .await;
    assert_eq!(res.status(), 201);
    let (front_agent, _) = a.agent(&s, "front-gateway").await;
    a.role(&s, "delegator", &["token:exchange"]).await;
    a.assign(
        &s,
        &front_agent,
        "delegator",
        Some(("mcp_server", "kb-direct")),
    )
    .await;
    // Without an agent, no exchange: refused with the field named.
    let res = a
        .send(
            &s,
            reqwest::Method::POST,
            "/api/v1/mcp-servers",
            json!({"name": "front", "upstream_url": downstream.url,
                   "upstream_token_exchange": downstream.url}),
        )
        .await;
    let p = expect_problem(res, 422).await;
    assert!(p["errors"]["upstream_token_exchange"].is_string(), "{p}");
    a.server(
        &s,
        "front",
        &downstream.url,
        json!({"agent_id": front_agent, "upstream_token_exchange": downstream.url}),
    )
    .await;
    a.role(&s, "front_user", &["mcp:call", "knowledge:read"])
        .await;
    let (caller, key) = a.agent(&s, "front-caller").await;
    a.assign(&s, &caller, "front_user", None).await;
    let res = crate::oauth::token(&s, &caller, &key, &[("resource", &s.url("/mcp/front"))]).await;
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let url = s.url("/mcp/front");
    let (u, t) = (url.clone(), token.clone());
    let steps = tokio::task::spawn_blocking(move || {
        sdk(
            &u,
            &t,
            &[
                r#"call:search:{"query":"q"}"#,
                r#"call:search:{"query":"r"}"#,
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        steps[0]["text"],
        json!(["3 documents match 'q'"]),
        "{}",
        steps[0]
    );
    assert_eq!(
        steps[1]["text"],
        json!(["3 documents match 'r'"]),
        "{}",
        steps[1]
    );
    // One exchange served the whole session (the SDK's messages and both
    // calls), acting as the gateway's agent for the caller.
    let exchanges = records(&s, "oauth.exchange");
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].0, "success");

    // An API key has no token to exchange: the session is refused, saying
    // why.
    let out = Command::new("python3")
        .args([
            &format!("{}/tests/mcp/client_gateway.py", env!("CARGO_MANIFEST_DIR")),
            &url,
            &key,
            "tools",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not an API key"), "{stderr}");
    s.stop().await;
}
