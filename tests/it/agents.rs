//! Agents, API keys and Bearer authentication.

use serde_json::{json, Value};

use crate::support::*;

async fn create_agent(s: &TestServer, c: &reqwest::Client, csrf: &str, name: &str) -> Value {
    let res = c
        .post(s.url("/api/v1/agents"))
        .header("x-csrf-token", csrf)
        .json(&json!({"name": name, "agent_type": "planner", "description": "plans"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn create_key(
    s: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    agent_id: &str,
    body: Value,
) -> reqwest::Response {
    c.post(s.url(&format!("/api/v1/agents/{agent_id}/keys")))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn new_key(s: &TestServer, c: &reqwest::Client, csrf: &str, agent_id: &str) -> String {
    let res = create_key(s, c, csrf, agent_id, json!({"name": "k"})).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["key"].as_str().unwrap().to_string()
}

/// `GET /api/v1/me` with a raw Authorization header value.
async fn me_with(s: &TestServer, authorization: &str) -> reqwest::Response {
    client()
        .get(s.url("/api/v1/me"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

fn last_bearer_reason(s: &TestServer) -> String {
    let c = rusqlite::Connection::open(s.db_path()).unwrap();
    c.query_row(
        "SELECT reason FROM audit_log WHERE action = 'auth.bearer' ORDER BY seq DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn agent_crud_and_validation() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let a = create_agent(&s, &c, &csrf, "orchestrator-1").await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(a["agent_type"], "planner");
    assert_eq!(a["enabled"], true);
    let dup = c
        .post(s.url("/api/v1/agents"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "orchestrator-1", "agent_type": "planner"}))
        .send()
        .await
        .unwrap();
    expect_problem(dup, 409).await;
    for bad in [
        json!({"name": "x", "agent_type": "Planner"}),
        json!({"name": "x", "agent_type": "9lives"}),
        json!({"name": "bad name", "agent_type": "custom_type"}),
    ] {
        let res = c
            .post(s.url("/api/v1/agents"))
            .header("x-csrf-token", &csrf)
            .json(&bad)
            .send()
            .await
            .unwrap();
        expect_problem(res, 422).await;
    }
    let custom = c
        .post(s.url("/api/v1/agents"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "kb", "agent_type": "knowledge_base_v2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(custom.status(), 201);
    let patched: Value = c
        .patch(s.url(&format!("/api/v1/agents/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"description": "new", "agent_type": "orchestrator"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["agent_type"], "orchestrator");
    let list: Value = get_json(&c, &s, "/api/v1/agents?limit=1").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["next_cursor"].is_string());
    let res = c
        .delete(s.url(&format!("/api/v1/agents/{id}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_problem(
        c.get(s.url(&format!("/api/v1/agents/{id}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn keys_are_shown_once_and_authenticate_the_agent() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let a = create_agent(&s, &c, &csrf, "planner-7").await;
    let id = a["id"].as_str().unwrap();
    let res = create_key(&s, &c, &csrf, id, json!({"name": "ci"})).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let key_id = created["id"].as_str().unwrap();
    assert!(key.starts_with(&format!("agk_{key_id}_")));
    assert_eq!(key.len(), 4 + 16 + 1 + 43);
    assert!(
        created["expires_at"].is_string(),
        "keys default to the maximum lifetime"
    );
    let listed: Value = get_json(&c, &s, &format!("/api/v1/agents/{id}/keys")).await;
    assert_eq!(listed["items"][0]["id"], key_id);
    assert!(
        !listed.to_string().contains(&key[21..]),
        "the secret is never listed"
    );

    let me: Value = me_with(&s, &format!("Bearer {key}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["principal"]["type"], "agent");
    assert_eq!(me["principal"]["name"], "planner-7");
    // The scheme is case-insensitive (RFC 7235).
    assert_eq!(me_with(&s, &format!("bearer {key}")).await.status(), 200);
    // Used keys show when they were last used.
    let listed: Value = get_json(&c, &s, &format!("/api/v1/agents/{id}/keys")).await;
    assert!(listed["items"][0]["last_used_at"].is_string());
    // Without agent:manage an agent cannot manage agents; with a role it gets its grants.
    let res = client()
        .get(s.url("/api/v1/agents"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(res, 403).await;
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "INSERT INTO role_assignments (id, role, agent_id, created_at) VALUES ('r1', 'agent_service', ?1, 0)",
        [id],
    )
    .unwrap();
    // A change made behind the appliance's back (role assignments get
    // their API with RBAC) must mark its cached view stale.
    s.running().app.audit.changed();
    let me: Value = me_with(&s, &format!("Bearer {key}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"][0], "agent_service");
    assert!(me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("metrics:report")));
    // Bearer calls need no CSRF token.
    let res = client()
        .post(s.url(&format!("/api/v1/agents/{id}/keys")))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 403).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_refused_401_and_audited() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let a = create_agent(&s, &c, &csrf, "target").await;
    let id = a["id"].as_str().unwrap().to_string();
    let key = new_key(&s, &c, &csrf, &id).await;
    let (head, secret) = key.split_at(21);
    let wrong_secret = format!(
        "{head}{}",
        if secret.starts_with('A') { "B" } else { "A" }.to_string() + &secret[1..]
    );
    let unknown = format!("agk_0000000000000000_{secret}");
    let ten_kb = format!("Bearer {}", "x".repeat(10 * 1024));
    let cases = [
        (format!("Bearer {wrong_secret}"), "wrong_secret"),
        (format!("Bearer {unknown}"), "unknown_key"),
        (key.clone(), "malformed_authorization_header"),
        (
            "Basic YWRtaW46cGFzc3dvcmQ=".to_string(),
            "malformed_authorization_header",
        ),
        ("Bearer".to_string(), "malformed_authorization_header"),
        ("Bearer garbage".to_string(), "unrecognised_credential"),
        ("Bearer agk_garbage".to_string(), "malformed_key"),
        (ten_kb, "unrecognised_credential"),
    ];
    for (header, reason) in cases {
        let res = me_with(&s, &header).await;
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        expect_problem(res, 401).await;
        assert_eq!(
            last_bearer_reason(&s),
            reason,
            "{}",
            &header[..header.len().min(40)]
        );
    }

    // Expired.
    let expiring = new_key(&s, &c, &csrf, &id).await;
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.execute(
        "UPDATE api_keys SET expires_at = 1 WHERE id = ?1",
        [&expiring[4..20]],
    )
    .unwrap();
    expect_problem(me_with(&s, &format!("Bearer {expiring}")).await, 401).await;
    assert_eq!(last_bearer_reason(&s), "key_expired");

    // Revoked.
    let res = c
        .delete(s.url(&format!("/api/v1/agents/{id}/keys/{}", &key[4..20])))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_problem(me_with(&s, &format!("Bearer {key}")).await, 401).await;
    assert_eq!(last_bearer_reason(&s), "key_revoked");

    // Disabled agent.
    let live = new_key(&s, &c, &csrf, &id).await;
    assert_eq!(me_with(&s, &format!("Bearer {live}")).await.status(), 200);
    let res = c
        .patch(s.url(&format!("/api/v1/agents/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    expect_problem(me_with(&s, &format!("Bearer {live}")).await, 401).await;
    assert_eq!(last_bearer_reason(&s), "owner_disabled");
    s.stop().await;
}

#[tokio::test]
async fn quarantine_disables_and_revokes_and_is_reversible() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let a = create_agent(&s, &c, &csrf, "rogue").await;
    let id = a["id"].as_str().unwrap().to_string();
    let k1 = new_key(&s, &c, &csrf, &id).await;
    let k2 = new_key(&s, &c, &csrf, &id).await;
    let res = c
        .post(s.url(&format!("/api/v1/agents/{id}/quarantine")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"reason": "exfiltration suspected"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["keys_revoked"], 2);
    assert_eq!(q["agent"]["enabled"], false);
    for k in [&k1, &k2] {
        expect_problem(me_with(&s, &format!("Bearer {k}")).await, 401).await;
    }
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let reason: String = conn
        .query_row(
            "SELECT reason FROM audit_log WHERE action = 'agent.quarantine'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "exfiltration suspected");
    // Re-enable and issue a new key: the agent works again; old keys stay dead.
    let res = c
        .patch(s.url(&format!("/api/v1/agents/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let k3 = new_key(&s, &c, &csrf, &id).await;
    assert_eq!(me_with(&s, &format!("Bearer {k3}")).await.status(), 200);
    expect_problem(me_with(&s, &format!("Bearer {k1}")).await, 401).await;
    s.stop().await;
}

#[tokio::test]
async fn key_lifetime_is_capped() {
    let s = TestServer::start_with(|c| c.api_keys.max_lifetime_days = 30).await;
    let (c, csrf) = admin(&s).await;
    let a = create_agent(&s, &c, &csrf, "short-lived").await;
    let id = a["id"].as_str().unwrap();
    let p = expect_problem(
        create_key(&s, &c, &csrf, id, json!({"expires_in_days": 31})).await,
        422,
    )
    .await;
    assert!(p["errors"]["expires_in_days"]
        .as_str()
        .unwrap()
        .contains("30"));
    expect_problem(
        create_key(&s, &c, &csrf, id, json!({"expires_in_days": 0})).await,
        422,
    )
    .await;
    expect_problem(
        create_key(&s, &c, &csrf, id, json!({"expires_in_days": -1})).await,
        422,
    )
    .await;
    expect_problem(
        create_key(&s, &c, &csrf, id, json!({"name": "x".repeat(200)})).await,
        422,
    )
    .await;
    expect_problem(
        create_key(&s, &c, &csrf, "no-such-agent", json!({})).await,
        404,
    )
    .await;
    let ok = create_key(&s, &c, &csrf, id, json!({"expires_in_days": 7})).await;
    assert_eq!(ok.status(), 201);
    s.stop().await;
}

#[tokio::test]
async fn users_have_personal_keys_and_no_key_is_stored_in_plaintext() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let u = create_user(&s, &c, &csrf, "gina", "gina's long password").await;
    let uid = u["id"].as_str().unwrap();
    let g = client();
    let gcsrf = login(&s, &g, "gina", "gina's long password").await;
    let res = g
        .post(s.url(&format!("/api/v1/users/{uid}/keys")))
        .header("x-csrf-token", &gcsrf)
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let ukey = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let me: Value = me_with(&s, &format!("Bearer {ukey}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["principal"]["name"], "gina");
    // Another user's keys are out of reach without user:manage.
    let admin_id = {
        let me: Value = get_json(&c, &s, "/api/v1/me").await;
        me["principal"]["id"].as_str().unwrap().to_string()
    };
    expect_problem(
        g.get(s.url(&format!("/api/v1/users/{admin_id}/keys")))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    let a = create_agent(&s, &c, &csrf, "secretive").await;
    let akey = new_key(&s, &c, &csrf, a["id"].as_str().unwrap()).await;
    assert_eq!(me_with(&s, &format!("Bearer {akey}")).await.status(), 200);
    let export = c
        .get(s.url("/api/v1/audit/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let db = s.db_path();
    let _dir = s.stop().await;
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    let file = String::from_utf8_lossy(&bytes);
    for k in [&ukey, &akey] {
        let secret = &k[21..];
        assert!(
            !file.contains(secret),
            "a key secret is in the data directory"
        );
        assert!(
            !export.contains(secret),
            "a key secret is in the audit trail"
        );
    }
}

#[tokio::test]
async fn bearer_use_is_recorded_once_a_minute_and_failures_are_counted() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let a = create_agent(&s, &c, &csrf, "counted").await;
    let key = new_key(&s, &c, &csrf, a["id"].as_str().unwrap()).await;
    for _ in 0..5 {
        assert_eq!(me_with(&s, &format!("Bearer {key}")).await.status(), 200);
    }
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let successes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.bearer' AND outcome = 'success'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(successes, 1, "five calls in a minute, one record");
    for _ in 0..3 {
        me_with(&s, "Bearer agk_garbage").await;
    }
    post_login(&s, &client(), "admin", "wrong password!!").await;
    let page = c
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"failed-1m\">4<"), "{page}");
    assert!(page.contains("id=\"locked-accounts\">0<"));
    s.stop().await;
}
