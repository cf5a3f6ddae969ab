//! The official MCP Python SDK against agentry: a stock `MCPServer` whose
//! `TokenVerifier` trusts agentry's JWKS, and a stock client that signs a
//! user in through agentry with `OAuthClientProvider`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

fn script(name: &str) -> String {
    format!("{}/tests/mcp/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A stock SDK MCP server on a free loopback port, stopped when dropped.
pub(crate) struct SdkServer {
    child: Child,
    pub url: String,
}

impl Drop for SdkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SdkServer {
    /// [`Self::start`] for `s`, requiring `knowledge:read`, registered in
    /// agentry as `knowledge-base` supporting that scope.
    pub(crate) async fn registered(s: &TestServer) -> SdkServer {
        SdkServer::registered_for(s, &["knowledge:read"]).await
    }

    /// [`Self::registered`] with the server supporting `scopes` in agentry.
    pub(crate) async fn registered_for(s: &TestServer, scopes: &[&str]) -> SdkServer {
        let mcp = SdkServer::start(&s.url(""), "knowledge:read").await;
        let (c, csrf) = admin(s).await;
        let kb = json!({"name": "knowledge-base", "uri": mcp.url, "scopes_supported": scopes});
        post(&c, &csrf, s, "/api/v1/mcp-servers", kb).await;
        mcp
    }

    /// Starts `tests/mcp/server.py` trusting `issuer`, requiring `scope`.
    pub(crate) async fn start(issuer: &str, scope: &str) -> SdkServer {
        let (child, url) = serve("server.py", |port| {
            vec![issuer.to_string(), port.to_string(), scope.to_string()]
        })
        .await;
        SdkServer { child, url }
    }
}

/// Starts `tests/mcp/<name>` with the arguments `args` makes of the port
/// `0`: the fixture binds a free loopback port itself and names it on its
/// first line (`PORT <n>`), so no other test can take the port in between.
/// Waits until it accepts connections; returns the process (the caller
/// stops it) and `http://127.0.0.1:<port>/mcp`.
pub(crate) async fn serve(name: &str, args: impl FnOnce(u16) -> Vec<String>) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new("python3")
        .arg(script(name))
        .args(args(0))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with tests/requirements.txt (tests/run.sh installs them)");
    let stdout = child.stdout.take().expect("piped stdout");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let Some(port) = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse::<u16>().ok())
    else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{name} did not say its port (first line {line:?})");
    };
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, format!("http://127.0.0.1:{port}/mcp"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{name} did not start on port {port}");
}

fn run_client(args: &[&str]) -> Value {
    run_script("client_code.py", args)
}

pub(crate) fn run_script(name: &str, args: &[&str]) -> Value {
    run_script_with(name, args, &[])
}

/// [`run_script`] with environment variables set for the script.
pub(crate) fn run_script_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new("python3")
        .arg(script(name))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_signs_a_user_in_and_calls_a_protected_tool() {
    let s = TestServer::start().await;
    let mcp = SdkServer::registered(&s).await;

    let (base, url) = (s.base.clone(), mcp.url.clone());
    let out = tokio::task::block_in_place(|| run_client(&[&base, &url, "admin", ADMIN_PASSWORD]));
    assert_eq!(out["first"]["tools"], json!(["search", "publish"]), "{out}");
    assert_eq!(out["first"]["text"], "3 documents match 'runbooks'");
    assert_eq!(out["first"]["is_error"], false);
    assert_eq!(out["consent_shown"], true);
    // PKCE S256 and the resource indicator were on the authorization URL.
    let authorize = out["authorize_url"].as_str().unwrap();
    assert!(
        authorize.starts_with(&format!("{base}/oauth/authorize?")),
        "{authorize}"
    );
    assert!(authorize.contains("code_challenge_method=S256"));
    assert!(authorize.contains("resource="));
    // The second session ran on a refreshed token, with a rotated refresh
    // token, and without sending the user to agentry again.
    assert_eq!(out["second"]["text"], "3 documents match 'runbooks'");
    assert_eq!(out["refreshed"], true, "{out}");
    assert_eq!(out["refresh_rotated"], true);
    assert_eq!(out["consents"], 1, "{out}");
    assert_eq!(out["authorize_urls"].as_array().unwrap().len(), 1);
    assert_eq!(token_grants(&s, "refresh_token"), 1);
    assert_eq!(token_grants(&s, "authorization_code"), 1);

    // The token: the user, for the MCP server, with what the server supports.
    let claims = claims_of(out["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], mcp.url.as_str());
    assert_eq!(claims["sub_type"], "user");
    assert_eq!(claims["scope"], "knowledge:read");
    assert_eq!(claims["client_id"], out["client_id"]);

    // The client registered dynamically and shows so.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let registration: String = conn
        .query_row(
            "SELECT registration FROM oauth_clients WHERE id = ?1",
            [out["client_id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(registration, "dynamic");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_steps_up_after_insufficient_scope() {
    let s = TestServer::start().await;
    let mcp = SdkServer::registered_for(&s, &["knowledge:read", "knowledge:write"]).await;

    let (base, url) = (s.base.clone(), mcp.url.clone());
    let out = tokio::task::block_in_place(|| {
        run_client(&["--step-up", &base, &url, "admin", ADMIN_PASSWORD])
    });
    // The first token carried what the server's metadata asked for; the
    // call to `publish` was refused with a scope challenge, the SDK sent
    // the user back to agentry for the union, the user consented again,
    // and the retried call went through on the new token.
    let step_up = &out["step_up"];
    assert_eq!(step_up["text"], "published 'on-call handbook'", "{out}");
    assert_eq!(step_up["is_error"], false);
    assert_eq!(step_up["new_token"], true);
    assert_eq!(out["consents"], 2, "{out}");
    let urls = out["authorize_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2, "{out}");
    assert_eq!(token_grants(&s, "authorization_code"), 2);
    assert_eq!(token_grants(&s, "refresh_token"), 1);
    assert!(!urls[0].as_str().unwrap().contains("knowledge%3Awrite"));
    assert!(
        urls[1].as_str().unwrap().contains("knowledge%3Awrite"),
        "{out}"
    );
    let claims = claims_of(out["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "knowledge:read knowledge:write");
    assert_eq!(claims["aud"], mcp.url.as_str());

    // Two consents on record: the first grant and the wider one.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let scopes: Vec<String> = conn
        .prepare("SELECT scope FROM oauth_grants ORDER BY created_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(scopes, ["knowledge:read", "knowledge:read knowledge:write"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_credentials_provider_reaches_a_protected_tool() {
    let s = TestServer::start().await;
    let issuer = s.url("");
    let mcp = SdkServer::registered(&s).await;
    // agent_service holds knowledge:read.
    let (id, secret) = crate::oauth::agent_with_role(&s, "agent_service").await;
    let url = mcp.url.clone();
    let out = tokio::task::block_in_place(|| {
        run_script(
            "client_machine.py",
            &["secret", &url, &issuer, &id, &secret],
        )
    });
    assert_eq!(out["text"], "3 documents match 'incidents'", "{out}");
    let claims = claims_of(out["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], mcp.url.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["sub_type"], "agent");
    assert_eq!(claims["scope"], "knowledge:read");
    s.stop().await;
}

/// How many tokens agentry issued with `grant_type`, from the audit log.
fn token_grants(s: &TestServer, grant_type: &str) -> i64 {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'oauth.token' AND outcome = 'success' \
         AND json_extract(details, '$.grant_type') = ?1",
        [grant_type],
        |r| r.get(0),
    )
    .unwrap()
}

/// The claims of a JWT, unverified (the tests check what they say).
pub(crate) fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_identifies_itself_with_a_client_id_metadata_document() {
    let s = TestServer::start_with(|c| c.oauth.allow_http_loopback_client_ids = true).await;
    let mcp = SdkServer::registered(&s).await;
    let doc = crate::oauth_code::serve_document(|url| {
        json!({"client_id": url, "client_name": "SDK document client",
               "redirect_uris": ["http://127.0.0.1:33418/callback"],
               "grant_types": ["authorization_code", "refresh_token"],
               "token_endpoint_auth_method": "none"})
    })
    .await;
    let (base, url, d) = (s.base.clone(), mcp.url.clone(), doc.clone());
    let out =
        tokio::task::block_in_place(|| run_client(&[&base, &url, "admin", ADMIN_PASSWORD, &d]));
    assert_eq!(
        out["first"]["text"], "3 documents match 'runbooks'",
        "{out}"
    );
    assert_eq!(out["client_id"], doc.as_str());
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let (registration, name): (String, String) = conn
        .query_row(
            "SELECT registration, name FROM oauth_clients WHERE id = ?1",
            [&doc],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (registration.as_str(), name.as_str()),
        ("metadata_document", "SDK document client")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastmcp_jwt_verifier_accepts_agentrys_tokens_for_its_audience_only() {
    let s = TestServer::start().await;
    let issuer = s.url("");
    let (c, csrf) = admin(&s).await;
    let kb = json!({"name": "kb", "uri": "https://kb.example.com/mcp", "scopes_supported": ["knowledge:read"]});
    post(&c, &csrf, &s, "/api/v1/mcp-servers", kb).await;
    let (id, secret) = crate::oauth::agent_with_role(&s, "agent_service").await;
    let res = crate::oauth::token(
        &s,
        &id,
        &secret,
        &[("resource", "https://kb.example.com/mcp")],
    )
    .await;
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let verify = |audience: &str| {
        let (t, i, a) = (token.clone(), issuer.clone(), audience.to_string());
        tokio::task::block_in_place(move || run_script("fastmcp_verify.py", &[&t, &i, &a]))
    };
    let ok = verify("https://kb.example.com/mcp");
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["scopes"], json!(["knowledge:read"]));
    assert_eq!(ok["client_id"], id.as_str());
    // Addressed to another server: refused.
    assert_eq!(verify("https://other.example.com/mcp")["valid"], false);
    s.stop().await;
}
