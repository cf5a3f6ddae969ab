//! The MCP gateway (SPEC §14) with real parts: the official MCP Python
//! SDK client through `/mcp/{name}` to a stock SDK `MCPServer` upstream
//! that has no authentication of its own.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::mcp_sdk::run_script;
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
        let port = free_port();
        let mut args = vec![
            format!("{}/tests/mcp/upstream.py", env!("CARGO_MANIFEST_DIR")),
            port.to_string(),
        ];
        if json {
            args.push("json".into());
        }
        let child = Command::new("python3")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with tests/requirements.txt (tests/run.sh installs them)");
        let up = Upstream {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        for _ in 0..150 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return up;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the upstream MCP server did not start on port {port}");
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

/// Runs `tests/mcp/client_gateway.py` against `url` with `credential`.
pub(crate) fn sdk(url: &str, credential: &str, steps: &[&str]) -> Vec<Value> {
    let mut args = vec![url, credential];
    args.extend_from_slice(steps);
    let out = run_script("client_gateway.py", &args);
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
    let dir = s.stop().await;
    assert_audit_verifies(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answering_upstream_is_filtered_and_recorded_too() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(true).await;
    let (_a, _id, key) = kb_agent(&s, &upstream).await;
    let url = s.url("/mcp/kb");
    let steps = tokio::task::spawn_blocking(move || {
        sdk(
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
