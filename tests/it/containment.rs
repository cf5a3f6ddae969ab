//! Containment holds everywhere: decisions about disabled or quarantined
//! principals, tokens after a re-enable, introspection, agent names.

use serde_json::{json, Value};

use crate::support::*;

struct Admin {
    c: reqwest::Client,
    csrf: String,
}

impl Admin {
    async fn new(s: &TestServer) -> Admin {
        let (c, csrf) = admin(s).await;
        Admin { c, csrf }
    }

    /// An agent holding `role` (none when empty) and one API key.
    async fn agent(&self, s: &TestServer, name: &str, role: &str) -> (String, String) {
        let id = create_agent(s, &self.c, &self.csrf, name, "planner").await;
        if !role.is_empty() {
            post(
                &self.c,
                &self.csrf,
                s,
                "/api/v1/role-assignments",
                json!({"subject": {"type": "agent", "id": id}, "role": role}),
            )
            .await;
        }
        let key = create_agent_key(s, &self.c, &self.csrf, &id).await;
        (id, key)
    }

    async fn patch_enabled(&self, s: &TestServer, kind: &str, id: &str, enabled: bool) {
        let res = self
            .c
            .patch(s.url(&format!("/api/v1/{kind}s/{id}")))
            .header("x-csrf-token", &self.csrf)
            .json(&json!({"enabled": enabled}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "PATCH {kind} enabled={enabled}");
    }

    async fn check(&self, s: &TestServer, kind: &str, id: &str, permission: &str) -> Value {
        post(
            &self.c,
            &self.csrf,
            s,
            "/api/v1/authz/check",
            json!({"subject": {"type": kind, "id": id}, "permission": permission}),
        )
        .await
    }

    async fn check_batch(&self, s: &TestServer, kind: &str, id: &str, permission: &str) -> Value {
        let v = post(
            &self.c,
            &self.csrf,
            s,
            "/api/v1/authz/check-batch",
            json!({"checks": [
                {"subject": {"type": kind, "id": id}, "permission": permission},
                {"permission": "user:manage"},
            ]}),
        )
        .await;
        assert_eq!(v["results"][1]["allowed"], true, "the admin's own check");
        v["results"][0].clone()
    }
}

async fn token(s: &TestServer, id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(s.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn access_token(s: &TestServer, id: &str, secret: &str) -> String {
    let res = token(s, id, secret).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Introspects `t` authenticated as client `id` with `secret`.
async fn introspect(s: &TestServer, id: &str, secret: &str, t: &str) -> Value {
    let res = client()
        .post(s.url("/oauth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", t)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn decisions_about_disabled_or_quarantined_subjects_are_denials() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let (agent, _) = a.agent(&s, "svc-agent", "agent_service").await;
    let (other, _) = a.agent(&s, "svc-other", "agent_service").await;
    let allowed = a.check(&s, "agent", &agent, "knowledge:read").await;
    assert_eq!(allowed["allowed"], true, "{allowed}");

    // Quarantined: denied by check and check-batch, whoever asks.
    let res =
        a.c.post(s.url(&format!("/api/v1/agents/{agent}/quarantine")))
            .header("x-csrf-token", &a.csrf)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    for d in [
        a.check(&s, "agent", &agent, "knowledge:read").await,
        a.check_batch(&s, "agent", &agent, "knowledge:read").await,
    ] {
        assert_eq!(d["allowed"], false, "{d}");
        assert_eq!(d["reason"], "subject is disabled (quarantined)");
        assert_eq!(d["granted_by"], json!([]));
    }

    // Disabled (not quarantined).
    a.patch_enabled(&s, "agent", &other, false).await;
    for d in [
        a.check(&s, "agent", &other, "knowledge:read").await,
        a.check_batch(&s, "agent", &other, "knowledge:read").await,
    ] {
        assert_eq!(d["allowed"], false, "{d}");
        assert_eq!(d["reason"], "subject is disabled");
    }
    // Enabled again: allowed again (the role is still assigned).
    a.patch_enabled(&s, "agent", &other, true).await;
    assert_eq!(
        a.check(&s, "agent", &other, "knowledge:read").await["allowed"],
        true
    );

    // A disabled user, even one holding system_admin's `*`.
    let u = create_user(&s, &a.c, &a.csrf, "ops-admin", "a long password 123").await;
    let uid = u["id"].as_str().unwrap();
    post(
        &a.c,
        &a.csrf,
        &s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "user", "id": uid}, "role": "system_admin"}),
    )
    .await;
    assert_eq!(
        a.check(&s, "user", uid, "audit:read").await["allowed"],
        true
    );
    a.patch_enabled(&s, "user", uid, false).await;
    for d in [
        a.check(&s, "user", uid, "audit:read").await,
        a.check_batch(&s, "user", uid, "audit:read").await,
    ] {
        assert_eq!(d["allowed"], false, "{d}");
        assert_eq!(d["reason"], "subject is disabled");
    }

    // A subject that does not exist is named as such.
    let d = a
        .check(&s, "agent", "no-such-agent", "knowledge:read")
        .await;
    assert_eq!(d["allowed"], false);
    assert_eq!(d["reason"], "there is no agent with id no-such-agent");

    // Each denial is in the audit log with its reason.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'authz.decision' AND outcome = 'denied'
             AND reason LIKE 'subject is disabled%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 6);
    s.stop().await;
}

#[tokio::test]
async fn re_enabling_does_not_resurrect_old_tokens() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let (id, secret) = a.agent(&s, "svc-agent", "agent_service").await;
    let old = access_token(&s, &id, &secret).await;
    assert_eq!(me_with_bearer(&s, &client(), &old).await, 200);
    assert_eq!(introspect(&s, &id, &secret, &old).await["active"], true);

    a.patch_enabled(&s, "agent", &id, false).await;
    assert_eq!(me_with_bearer(&s, &client(), &old).await, 401);
    // The token instant is in whole seconds: wait for the next one so the
    // new token is not issued in the same second as the disable.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    a.patch_enabled(&s, "agent", &id, true).await;
    assert_eq!(
        me_with_bearer(&s, &client(), &old).await,
        401,
        "a token issued before the disable stays void"
    );
    assert_eq!(
        introspect(&s, &id, &secret, &old).await,
        json!({"active": false})
    );
    // The API key was not revoked by a plain disable: a new token works.
    let new = access_token(&s, &id, &secret).await;
    assert_eq!(me_with_bearer(&s, &client(), &new).await, 200);
    assert_eq!(introspect(&s, &id, &secret, &new).await["active"], true);

    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let reason: String = conn
        .query_row(
            "SELECT reason FROM audit_log WHERE action = 'auth.bearer' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "token_voided");
    s.stop().await;
}

#[tokio::test]
async fn introspection_is_not_an_oracle() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let (victim, victim_secret) = a.agent(&s, "victim", "agent_service").await;
    let (nosy, nosy_secret) = a.agent(&s, "nosy", "agent_service").await;
    let t = access_token(&s, &victim, &victim_secret).await;

    // The token's own client sees it.
    let own = introspect(&s, &victim, &victim_secret, &t).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["sub"], victim.as_str());

    // An unrelated agent learns nothing, with client credentials or with
    // its own bearer token.
    assert_eq!(
        introspect(&s, &nosy, &nosy_secret, &t).await,
        json!({"active": false})
    );
    let nosy_token = access_token(&s, &nosy, &nosy_secret).await;
    let res = client()
        .post(s.url("/oauth/introspect"))
        .bearer_auth(&nosy_token)
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"active": false}));

    // A holder of token:introspect sees it.
    post(
        &a.c,
        &a.csrf,
        &s,
        "/api/v1/roles",
        json!({"name": "introspector", "permissions": ["token:introspect"]}),
    )
    .await;
    post(
        &a.c,
        &a.csrf,
        &s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "agent", "id": nosy}, "role": "introspector"}),
    )
    .await;
    let seen = introspect(&s, &nosy, &nosy_secret, &t).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["sub"], victim.as_str());
    // So does an administrator's session (system_admin holds `*`).
    let res =
        a.c.post(s.url("/oauth/introspect"))
            .header("x-csrf-token", &a.csrf)
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
    // The API document says who may introspect what.
    let doc = get_json(&client(), &s, "/api/v1/openapi.json").await;
    let introspect = doc["paths"]["/oauth/introspect"]["post"].to_string();
    assert!(introspect.contains("token:introspect"), "{introspect}");
    s.stop().await;
}

#[tokio::test]
async fn a_client_holding_nothing_gets_invalid_scope_not_an_empty_token() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let (id, secret) = a.agent(&s, "no-roles", "").await;
    let res = token(&s, &id, &secret).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope", "{body}");
    s.stop().await;
}

#[test]
fn a_sign_in_with_control_characters_in_the_name_leaves_one_escaped_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("agentry.log");
    let mut child = command()
        .current_dir(dir.path())
        .env("AGENTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("AGENTRY_SYSTEMD__NOTIFY", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let forged =
        "2026-12-01T00:00:00.000000Z  INFO agentry::web::ui::login: login succeeded user=admin";
    let name = format!("mallory\n{forged}\r\n\u{1b}[2J\u{1b}[31mred");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&base).await;
        let c = client();
        let res = post_login_at(&base, &c, &name, "not the password").await;
        assert_ne!(res.status(), 303, "the sign-in must fail");
    });
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains("mallory")).collect();
    assert_eq!(lines.len(), 1, "{logged}");
    assert!(
        lines[0].contains("login failed") && lines[0].contains("mallory\\n2026-12-01"),
        "{}",
        lines[0]
    );
    assert!(
        !logged.lines().any(|l| l.starts_with("2026-12-01T00:00:00")),
        "a forged line reached the log:\n{logged}"
    );
    assert!(
        !logged.contains('\u{1b}'),
        "an escape sequence reached the log"
    );
    assert!(!logged.contains('\r'), "a carriage return reached the log");
}

#[tokio::test]
async fn agent_names_are_unique_ignoring_case() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let first = create_agent(&s, &a.c, &a.csrf, "svc-agent", "planner").await;
    let send = |body: Value| {
        a.c.post(s.url("/api/v1/agents"))
            .header("x-csrf-token", &a.csrf)
            .json(&body)
            .send()
    };
    for name in ["SVC-AGENT", "Svc-Agent", "svc-agent"] {
        let res = send(json!({"name": name, "agent_type": "planner"}))
            .await
            .unwrap();
        let p = expect_problem(res, 409).await;
        assert!(
            p["detail"].as_str().unwrap().contains("already exists"),
            "{p}"
        );
    }
    // A rename onto another agent's name in other case is refused too.
    let second = create_agent(&s, &a.c, &a.csrf, "other", "planner").await;
    let res =
        a.c.patch(s.url(&format!("/api/v1/agents/{second}")))
            .header("x-csrf-token", &a.csrf)
            .json(&json!({"name": "SVC-agent"}))
            .send()
            .await
            .unwrap();
    expect_problem(res, 409).await;
    // Renaming an agent to its own name in another case is fine.
    let res =
        a.c.patch(s.url(&format!("/api/v1/agents/{first}")))
            .header("x-csrf-token", &a.csrf)
            .json(&json!({"name": "SVC-Agent"}))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn a_heartbeat_instance_at_the_minimum_interval_takes_the_defaults() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let agent = create_agent(&s, &a.c, &a.csrf, "planner-1", "planner").await;
    let i = post(
        &a.c,
        &a.csrf,
        &s,
        "/api/v1/instances",
        json!({"agent_id": agent, "name": "beat", "kind": "heartbeat", "interval_seconds": 5}),
    )
    .await;
    assert_eq!(i["interval_seconds"], 5, "{i}");
    // An http instance still needs its timeout below the interval.
    let res =
        a.c.post(s.url("/api/v1/instances"))
            .header("x-csrf-token", &a.csrf)
            .json(&json!({"agent_id": agent, "name": "web", "kind": "http",
                      "url": "http://127.0.0.1:9/health", "interval_seconds": 5}))
            .send()
            .await
            .unwrap();
    let p = expect_problem(res, 422).await;
    assert!(p["errors"]["timeout_ms"].is_string(), "{p}");
    s.stop().await;
}
