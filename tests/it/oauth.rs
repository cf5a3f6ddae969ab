//! OAuth 2.0 client credentials, JWTs, JWKS, rotation, introspection,
//! revocation — checked with third-party clients and hostile tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::*;

/// An agent holding `role`, and one API key (its client secret).
pub(crate) async fn agent_with_role(s: &TestServer, role: &str) -> (String, String) {
    let (c, csrf) = admin(s).await;
    let a: Value = c
        .post(s.url("/api/v1/agents"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": format!("agent-{role}"), "agent_type": "planner"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = a["id"].as_str().unwrap().to_string();
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "INSERT INTO role_assignments (id, role, agent_id, created_at) VALUES (?1, ?2, ?3, 0)",
        [format!("ra-{id}").as_str(), role, id.as_str()],
    )
    .unwrap();
    let k: Value = c
        .post(s.url(&format!("/api/v1/agents/{id}/keys")))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (id, k["key"].as_str().unwrap().to_string())
}

pub(crate) async fn token(
    s: &TestServer,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    client()
        .post(s.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn access_token(s: &TestServer, id: &str, secret: &str) -> String {
    let res = token(s, id, secret, &[]).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn me(s: &TestServer, token: &str) -> reqwest::StatusCode {
    client()
        .get(s.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

fn python_client(s: &TestServer, id: &str, secret: &str, method: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oauth_client.py");
    let out = std::process::Command::new("python3")
        .args([script, &s.base, id, secret, method])
        .output()
        .expect("python3 with tests/requirements.txt (the test script installs them)");
    assert!(
        out.status.success(),
        "oauth_client.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_clients_obtain_and_verify_tokens_across_a_rotation() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    for method in ["client_secret_basic", "client_secret_post"] {
        let r = tokio::task::block_in_place(|| python_client(&s, &id, &secret, method));
        assert_eq!(r["token_type"], "Bearer");
        assert_eq!(r["me_status"], 200);
        assert_eq!(r["claims"]["sub"], id.as_str());
        assert_eq!(r["claims"]["iss"], s.base.as_str());
        assert_eq!(r["claims"]["scope"], "knowledge:read metrics:report");
        for claim in ["exp", "iat", "nbf", "jti", "aud"] {
            assert!(!r["claims"][claim].is_null(), "{claim} missing");
        }
        assert_eq!(r["expires_in"], 900);
    }
    let before =
        tokio::task::block_in_place(|| python_client(&s, &id, &secret, "client_secret_basic"));
    let old_token = before["access_token"].as_str().unwrap().to_string();

    // Rotate: the old token keeps working until it expires; the old key is
    // still published; new tokens use the new key.
    let (c, csrf) = admin(&s).await;
    let keys: Value = c
        .post(s.url("/api/v1/signing-keys/rotate"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["items"].as_array().unwrap().len(), 2);
    assert_eq!(keys["items"][0]["status"], "active");
    assert_eq!(keys["items"][1]["status"], "retired");
    assert_eq!(me(&s, &old_token).await, 200);
    let jwks: Value = get_json(&client(), &s, "/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let after =
        tokio::task::block_in_place(|| python_client(&s, &id, &secret, "client_secret_basic"));
    assert_ne!(after["kid"], before["kid"]);
    assert_eq!(after["me_status"], 200);
    s.stop().await;
}

#[tokio::test]
async fn a_revoked_token_fails_introspection_and_the_api() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let t = access_token(&s, &id, &secret).await;
    let intro = |t: String| {
        let (s, id, secret) = (&s, id.clone(), secret.clone());
        async move {
            client()
                .post(s.url("/oauth/introspect"))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let active = intro(t.clone()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], id.as_str());
    let res = client()
        .post(s.url("/oauth/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(intro(t.clone()).await, json!({"active": false}));
    assert_eq!(me(&s, &t).await, 401);
    // Introspection needs an authenticated caller.
    let res = client()
        .post(s.url("/oauth/introspect"))
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let err = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        (status, body["error"].as_str().unwrap().to_string(), www)
    };
    let (st, e, www) = err(token(&s, &id, "agk_0000000000000000_wrong", &[]).await).await;
    assert_eq!((st, e.as_str()), (401, "invalid_client"));
    assert!(www.unwrap().starts_with("Basic"));
    let (st, e, _) = err(token(&s, "someone-else", &secret, &[]).await).await;
    assert_eq!((st, e.as_str()), (401, "invalid_client"));
    let res = client()
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(err(res).await.1, "unsupported_grant_type");
    let res = client()
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("scope", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(err(res).await.1, "invalid_request");
    assert_eq!(
        err(token(&s, &id, &secret, &[("scope", "user:manage")]).await)
            .await
            .1,
        "invalid_scope"
    );
    assert_eq!(
        err(token(&s, &id, &secret, &[("scope", "bad scope\u{7f}")]).await)
            .await
            .1,
        "invalid_scope"
    );
    assert_eq!(
        err(token(&s, &id, &secret, &[("resource", "not a uri")]).await)
            .await
            .1,
        "invalid_target"
    );
    let res = client()
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(err(res).await.1, "invalid_request");
    let res = client()
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(err(res).await.1, "invalid_request");
    // Both Basic and form credentials at once.
    let res = client()
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(err(res).await.1, "invalid_request");
    // Scope narrowing: only what is held is granted.
    let ok: Value = token(&s, &id, &secret, &[("scope", "knowledge:read user:manage")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ok["scope"], "knowledge:read");
    s.stop().await;
}

/// Re-signs nothing: builds a token from parts to attack the verifier.
fn forge(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

#[tokio::test]
async fn hostile_tokens_are_refused_401_and_audited() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let good = access_token(&s, &id, &secret).await;
    assert_eq!(me(&s, &good).await, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    let mut elevated = claims.clone();
    elevated["scope"] = json!("*");
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = json!("ffffffffffffffff");
    let wrong_aud = {
        // A token for a registered MCP server is not one for agentry's API.
        let (c, csrf) = admin(&s).await;
        let server = json!({"name": "kb", "uri": "https://mcp.example.com/"});
        post(&c, &csrf, &s, "/api/v1/mcp-servers", server).await;
        let res = token(
            &s,
            &id,
            &secret,
            &[("resource", "https://mcp.example.com/")],
        )
        .await;
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let cases = [
        (
            forge(json!({"alg": "none", "typ": "JWT"}), &claims, ""),
            "unsupported_algorithm",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": header["kid"]}),
                &claims,
                parts[2],
            ),
            "unsupported_algorithm",
        ),
        (forge(unknown_kid, &claims, parts[2]), "unknown_kid"),
        (forge(header.clone(), &elevated, parts[2]), "bad_signature"),
        (wrong_aud, "wrong_audience"),
        ("a.b.c".to_string(), "malformed_token"),
    ];
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    for (t, reason) in cases {
        assert_eq!(me(&s, &t).await, 401, "{reason}");
        let last: String = conn
            .query_row("SELECT reason FROM audit_log WHERE action = 'auth.bearer' ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(last, reason);
    }
    s.stop().await;
}

#[tokio::test]
async fn disabled_and_quarantined_agents_lose_their_tokens() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let (c, csrf) = admin(&s).await;
    let t = access_token(&s, &id, &secret).await;
    let patch = |enabled: bool| {
        c.patch(s.url(&format!("/api/v1/agents/{id}")))
            .header("x-csrf-token", &csrf)
            .json(&json!({"enabled": enabled}))
            .send()
    };
    assert_eq!(patch(false).await.unwrap().status(), 200);
    assert_eq!(me(&s, &t).await, 401);
    assert_eq!(patch(true).await.unwrap().status(), 200);
    assert_eq!(
        me(&s, &t).await,
        401,
        "a token issued before a disable stays void once re-enabled"
    );
    let res = c
        .post(s.url(&format!("/api/v1/agents/{id}/quarantine")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(patch(true).await.unwrap().status(), 200);
    assert_eq!(
        me(&s, &t).await,
        401,
        "tokens issued before a quarantine stay void"
    );
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let last: String = conn
        .query_row(
            "SELECT reason FROM audit_log WHERE action = 'auth.bearer' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, "token_voided");
    s.stop().await;
}

#[tokio::test]
async fn a_token_grants_only_its_scope() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "system_admin").await;
    let res = token(&s, &id, &secret, &[("scope", "audit:read")]).await;
    let t = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |path: &str| client().get(s.url(path)).bearer_auth(&t).send();
    assert_eq!(get("/api/v1/audit/head").await.unwrap().status(), 200);
    assert_eq!(get("/api/v1/agents").await.unwrap().status(), 403);
    let me: Value = get("/api/v1/me").await.unwrap().json().await.unwrap();
    assert_eq!(me["permissions"], json!(["audit:read"]));
    let meta: Value = get_json(&client(), &s, "/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["issuer"], s.base.as_str());
    assert!(meta["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
    for k in [
        "token_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let url = meta[k].as_str().unwrap();
        assert!(url.starts_with(&s.base), "{k}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_cli_rotates_the_signing_key_and_the_server_follows() {
    let s = TestServer::start().await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let old = access_token(&s, &id, &secret).await;
    let data = s.running().app.config.data_dir.clone();
    let out = command()
        .env("AGENTRY_DATA_DIR", &data)
        .args(["keys", "rotate-signing"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The scheduled housekeeping (run here directly) picks the new key up.
    agentry::scheduler::housekeeping(&s.running().app).await;
    let jwks: Value = get_json(&client(), &s, "/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let new = access_token(&s, &id, &secret).await;
    let kid = |t: &str| {
        let h: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        h["kid"].as_str().unwrap().to_string()
    };
    assert_ne!(kid(&old), kid(&new));
    assert_eq!(me(&s, &old).await, 200);
    assert_eq!(me(&s, &new).await, 200);
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_log WHERE action = 'signing_key.rotate' AND actor_name = 'cli'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    s.stop().await;
}

#[tokio::test]
async fn oauth_endpoints_are_rate_limited_per_ip() {
    let s = TestServer::start_with(|c| c.tokens.rate_limit_per_minute = 3).await;
    let (id, secret) = agent_with_role(&s, "agent_service").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = token(&s, &id, &secret, &[]).await;
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
            statuses.push(429);
        } else {
            statuses.push(res.status().as_u16());
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    s.stop().await;
}

#[tokio::test]
async fn the_signing_key_rotates_on_schedule() {
    let s = TestServer::start_with(|c| c.tokens.signing_key_rotation_days = 30).await;
    let app = &s.running().app;
    // A fresh key is not due.
    agentry::scheduler::rotate_signing_key_if_due(app).await;
    assert_eq!(app.signing_keys.entries().len(), 1);
    // Age it past the rotation period.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "UPDATE signing_keys SET created_at = created_at - 31 * 86400000",
        [],
    )
    .unwrap();
    app.signing_keys.reload(&app.db).await.unwrap();
    agentry::scheduler::rotate_signing_key_if_due(app).await;
    let entries = app.signing_keys.entries();
    assert_eq!(entries.len(), 2);
    assert!(entries[0].retired_at.is_none() && entries[1].retired_at.is_some());
    // The retired key leaves the JWKS once its tokens have expired.
    conn.execute(
        "UPDATE signing_keys SET publish_until = 1 WHERE retired_at IS NOT NULL",
        [],
    )
    .unwrap();
    app.signing_keys.reload(&app.db).await.unwrap();
    let jwks: Value = get_json(&client(), &s, "/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    s.stop().await;
}
