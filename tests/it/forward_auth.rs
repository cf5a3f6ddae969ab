//! Forward auth (SPEC §14) with a real nginx from the Debian package:
//! `auth_request` to `/api/v1/authz/forward` in front of a stock SDK MCP
//! server, deciding each message from the `Mcp-Method` / `Mcp-Name`
//! headers the official SDK client sends.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::gateway::{records, sdk, Setup, Upstream};
use crate::support::*;

/// nginx on a free loopback port, stopped when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_bin() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// The README's snippet, on loopback ports, in a scratch directory.
fn config(dir: &std::path::Path, port: u16, agentry: &str, upstream: &str) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};

        location = /_agentry {{
            internal;
            proxy_pass {agentry}/api/v1/authz/forward;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Method $request_method;
        }}

        location /mcp {{
            auth_request /_agentry;
            auth_request_set $agentry_subject $upstream_http_x_agentry_subject;
            auth_request_set $agentry_challenge $upstream_http_www_authenticate;
            add_header WWW-Authenticate $agentry_challenge always;
            proxy_set_header Authorization "";
            proxy_set_header X-Agentry-Subject $agentry_subject;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_pass {upstream};
        }}
    }}
}}
"#
    )
}

impl Nginx {
    async fn start(agentry: &str, upstream: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, agentry, upstream)).unwrap();
        let mut child = Command::new(nginx_bin())
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx from the Debian package (tests/run.sh installs it)");
        for _ in 0..100 {
            // Connected, and to this nginx: another process may have taken
            // the port first, and then this one has exited.
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                && child.try_wait().ok().flatten().is_none()
            {
                return Nginx {
                    child,
                    port,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not start on port {port}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_decides_each_message_from_its_headers() {
    let s = TestServer::start().await;
    let upstream = Upstream::start(false).await;
    let nginx = Nginx::start(&s.url(""), &upstream.url).await;
    let uri = format!("http://127.0.0.1:{}/mcp", nginx.port);
    let a = Setup::new(&s).await;
    // Registered by the URI clients use: nginx's.
    let res = a
        .send(
            &s,
            reqwest::Method::POST,
            "/api/v1/mcp-servers",
            json!({"name": "kb", "uri": uri}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    a.role(&s, "kb_user", &["mcp:call"]).await;
    let (agent, key) = a.agent(&s, "kb-agent").await;
    a.assign(&s, &agent, "kb_user", Some(("mcp_tool", "kb/search")))
        .await;

    // Without a credential: nginx passes agentry's 401 and its challenge.
    let res = client()
        .post(&uri)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-method", "initialize")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource/mcp/kb"),
        "{challenge}"
    );
    let metadata = get_json(
        &client(),
        &s,
        "/.well-known/oauth-protected-resource/mcp/kb",
    )
    .await;
    assert_eq!(metadata["resource"], uri);

    // The stock SDK client through nginx: search is allowed, publish is
    // refused by nginx on agentry's word (403, decided from Mcp-Name).
    let url = uri.clone();
    let steps = tokio::task::spawn_blocking(move || {
        sdk(
            &url,
            &key,
            &[
                r#"call:search:{"query":"q"}"#,
                r#"call:publish:{"title":"t"}"#,
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
    // nginx answers the refused POST 403 itself; the SDK reports it as
    // the call's error.
    assert!(steps[1].get("error").is_some(), "{}", steps[1]);

    let calls = records(&s, "mcp.tool_call");
    let seen: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|(_, d)| {
            (
                d["name"].as_str().unwrap(),
                d["decision"].as_str().unwrap(),
                d["via"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("search", "allowed", "forward_auth"),
            ("publish", "denied", "forward_auth")
        ]
    );
    assert!(calls[0].1.get("arguments_sha256").is_none());
    drop(nginx);
    s.stop().await;
}

#[tokio::test]
async fn forward_auth_needs_the_forwarded_headers_and_a_registered_uri() {
    let s = TestServer::start().await;
    let a = Setup::new(&s).await;
    let (_agent, key) = a.agent(&s, "fa-agent").await;
    let c = client();
    let url = s.url("/api/v1/authz/forward");
    // No X-Forwarded-Proto: 400 naming it.
    let res = c.get(&url).bearer_auth(&key).send().await.unwrap();
    let p = expect_problem(res, 400).await;
    assert!(
        p["detail"].as_str().unwrap().contains("X-Forwarded-Proto"),
        "{p}"
    );
    // A URL no server has: 404.
    let res = c
        .get(&url)
        .bearer_auth(&key)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "mcp.example.com")
        .header("x-original-uri", "/mcp")
        .send()
        .await
        .unwrap();
    expect_problem(res, 404).await;
    // Registered: no credential is 401 with the challenge; an agent
    // without any role on it is 403 with the reason, and recorded.
    let body = json!({"name": "ext", "uri": "https://mcp.example.com/mcp"});
    let res = a
        .send(&s, reqwest::Method::POST, "/api/v1/mcp-servers", body)
        .await;
    assert_eq!(res.status(), 201);
    let ask = |cred: Option<&str>| {
        let mut r = c
            .post(&url)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "MCP.example.com:443")
            .header("x-forwarded-uri", "/mcp?x=1")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "search");
        if let Some(k) = cred {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let res = ask(None).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("resource_metadata="));
    let res = ask(Some(&key)).await.unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32003, "{body}");
    assert_eq!(records(&s, "mcp.tool_call")[0].1["decision"], "denied");
    // Envoy's form: the original path after the endpoint's.
    let res = c
        .get(s.url("/api/v1/authz/forward/mcp"))
        .bearer_auth(&key)
        .header("x-forwarded-proto", "https")
        .header("host", "mcp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "{}", res.text().await.unwrap());
    s.stop().await;
}
