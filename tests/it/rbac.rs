//! Roles, assignments and the decision API.

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

    async fn send(
        &self,
        s: &TestServer,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = self
            .c
            .request(method, s.url(path))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn post(&self, s: &TestServer, path: &str, body: Value) -> reqwest::Response {
        self.send(s, reqwest::Method::POST, path, Some(body)).await
    }

    async fn agent(&self, s: &TestServer, name: &str) -> String {
        let res = self
            .post(
                s,
                "/api/v1/agents",
                json!({"name": name, "agent_type": "planner"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn assign(
        &self,
        s: &TestServer,
        agent: &str,
        role: &str,
        scope: Option<Value>,
    ) -> reqwest::Response {
        let mut body = json!({"subject": {"type": "agent", "id": agent}, "role": role});
        if let Some(sc) = scope {
            body["scope"] = sc;
        }
        self.post(s, "/api/v1/role-assignments", body).await
    }

    async fn check(
        &self,
        s: &TestServer,
        agent: &str,
        permission: &str,
        resource: Option<Value>,
    ) -> Value {
        let mut body = json!({"subject": {"type": "agent", "id": agent}, "permission": permission});
        if let Some(r) = resource {
            body["resource"] = r;
        }
        let res = self.post(s, "/api/v1/authz/check", body).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

#[tokio::test]
async fn seeded_roles_grant_exactly_what_the_spec_says() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let mut agents = std::collections::HashMap::new();
    for role in [
        "workflow_manager",
        "workflow_operator",
        "workflow_viewer",
        "agent_service",
        "validation_service",
        "auditor",
    ] {
        let id = a.agent(&s, &role.replace('_', "-")).await;
        assert_eq!(a.assign(&s, &id, role, None).await.status(), 201);
        agents.insert(role, id);
    }
    let d = a
        .check(&s, &agents["workflow_manager"], "workflow:execute", None)
        .await;
    assert_eq!(d["allowed"], true);
    assert_eq!(
        d["granted_by"],
        json!(["workflow_manager", "workflow_operator"])
    );
    let d = a
        .check(&s, &agents["workflow_manager"], "results:view", None)
        .await;
    assert_eq!(
        d["granted_by"],
        json!(["workflow_manager", "workflow_operator", "workflow_viewer"])
    );
    let cases = [
        ("workflow_manager", "agent:manage", true),
        ("workflow_manager", "audit:read", false),
        ("workflow_operator", "workflow:restart", true),
        ("workflow_operator", "workflow:delete", false),
        ("workflow_viewer", "workflow:execute", false),
        ("workflow_viewer", "workflow:status", true),
        ("agent_service", "metrics:report", true),
        ("agent_service", "telemetry:write", true),
        ("agent_service", "telemetry:read", false),
        ("agent_service", "workflow:view", false),
        ("agent_service", "workflow:update_status", true),
        ("validation_service", "code:analyze", true),
        ("validation_service", "knowledge:write", false),
        ("auditor", "audit:read", true),
        ("auditor", "user:manage", false),
    ];
    for (role, permission, allowed) in cases {
        let d = a.check(&s, &agents[role], permission, None).await;
        assert_eq!(d["allowed"], allowed, "{role} {permission}: {d}");
        if !allowed {
            assert!(d["reason"].as_str().unwrap().contains(permission));
            assert_eq!(d["granted_by"], json!([]));
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn wildcards_scopes_and_changes_visible_to_the_next_check() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let res = a
        .post(
            &s,
            "/api/v1/roles",
            json!({"name": "kb_all", "permissions": ["knowledge:*"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = a.agent(&s, "kb").await;
    assert_eq!(a.assign(&s, &id, "kb_all", None).await.status(), 201);
    assert_eq!(
        a.check(&s, &id, "knowledge:read", None).await["allowed"],
        true
    );
    assert_eq!(
        a.check(&s, &id, "knowledge:write", None).await["allowed"],
        true
    );
    assert_eq!(
        a.check(&s, &id, "knowledgebase:read", None).await["allowed"],
        false
    );
    assert_eq!(
        a.check(&s, &id, "workflow:view", None).await["allowed"],
        false
    );

    // A role edit is visible to the very next check.
    let res = a
        .send(
            &s,
            reqwest::Method::PUT,
            "/api/v1/roles/kb_all",
            Some(json!({"name": "kb_all", "permissions": ["knowledge:*", "workflow:view"]})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        a.check(&s, &id, "workflow:view", None).await["allowed"],
        true
    );

    // Scoped: workflows billing-* only.
    let scoped = a.agent(&s, "billing-bot").await;
    let res = a
        .assign(
            &s,
            &scoped,
            "workflow_operator",
            Some(json!({"resource_type": "workflow", "resource_pattern": "billing-*"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let on = |t: &str, id: &str| Some(json!({"type": t, "id": id}));
    assert_eq!(
        a.check(&s, &scoped, "workflow:execute", on("workflow", "billing-1"))
            .await["allowed"],
        true
    );
    let d = a
        .check(&s, &scoped, "workflow:execute", on("workflow", "payroll-1"))
        .await;
    assert_eq!(d["allowed"], false);
    assert!(d["reason"].as_str().unwrap().contains("scoped"), "{d}");
    assert_eq!(
        a.check(&s, &scoped, "workflow:execute", on("report", "billing-1"))
            .await["allowed"],
        false
    );
    assert_eq!(
        a.check(&s, &scoped, "workflow:execute", None).await["allowed"],
        false
    );
    // Removing the assignment removes the grant at once.
    let list: Value =
        a.c.get(s.url(&format!(
            "/api/v1/role-assignments?subject_type=agent&subject_id={scoped}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let aid = list["items"][0]["id"].as_str().unwrap();
    assert_eq!(list["items"][0]["scope"]["resource_pattern"], "billing-*");
    let res = a
        .send(
            &s,
            reqwest::Method::DELETE,
            &format!("/api/v1/role-assignments/{aid}"),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        a.check(&s, &scoped, "workflow:execute", on("workflow", "billing-1"))
            .await["allowed"],
        false
    );
    s.stop().await;
}

#[tokio::test]
async fn the_role_graph_stays_acyclic_and_roles_in_use_stay() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    for (name, inherits) in [
        ("ra", json!([])),
        ("rb", json!(["ra"])),
        ("rc", json!(["rb"])),
    ] {
        let res = a
            .post(
                &s,
                "/api/v1/roles",
                json!({"name": name, "permissions": ["x:y"], "inherits": inherits}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let put = |name: &'static str, inherits: Value| {
        let (a, s) = (&a, &s);
        async move {
            a.send(
                s,
                reqwest::Method::PUT,
                &format!("/api/v1/roles/{name}"),
                Some(json!({"name": name, "inherits": inherits})),
            )
            .await
        }
    };
    let p = expect_problem(put("ra", json!(["rc"])).await, 422).await;
    assert!(
        p["errors"]["inherits"]
            .as_str()
            .unwrap()
            .contains("ra → rc → rb → ra"),
        "{p}"
    );
    let p = expect_problem(put("ra", json!(["ra"])).await, 422).await;
    assert!(p["errors"]["inherits"].as_str().unwrap().contains("itself"));
    let p = expect_problem(put("ra", json!(["nope"])).await, 422).await;
    assert!(p["errors"]["inherits"].as_str().unwrap().contains("nope"));
    for bad in [
        json!({"name": "Bad", "permissions": []}),
        json!({"name": "ok_name", "permissions": ["not a pattern"]}),
        json!({"name": "ok_name", "extra": 1}),
    ] {
        let res = a.post(&s, "/api/v1/roles", bad).await;
        assert!(res.status() == 422, "{}", res.status());
    }
    expect_problem(
        a.post(&s, "/api/v1/roles", json!({"name": "ra"})).await,
        409,
    )
    .await;

    // In use: inherited by rb.
    let p = expect_problem(
        a.send(&s, reqwest::Method::DELETE, "/api/v1/roles/ra", None)
            .await,
        409,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("rb"), "{p}");
    // In use: assigned.
    let id = a.agent(&s, "holder").await;
    assert_eq!(a.assign(&s, &id, "rc", None).await.status(), 201);
    let p = expect_problem(
        a.send(&s, reqwest::Method::DELETE, "/api/v1/roles/rc", None)
            .await,
        409,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("assignment"), "{p}");
    // System roles: not deletable, grants fixed, description editable.
    expect_problem(
        a.send(&s, reqwest::Method::DELETE, "/api/v1/roles/auditor", None)
            .await,
        409,
    )
    .await;
    let res = a
        .send(
            &s,
            reqwest::Method::PUT,
            "/api/v1/roles/auditor",
            Some(json!({"name": "auditor", "permissions": ["*"]})),
        )
        .await;
    expect_problem(res, 422).await;
    let res = a
        .send(&s, reqwest::Method::PUT, "/api/v1/roles/auditor", Some(json!({"name": "auditor", "description": "Reads the trail", "permissions": ["audit:read"]})))
        .await;
    assert_eq!(res.status(), 200);
    // An unused custom role goes.
    let res = a.post(&s, "/api/v1/roles", json!({"name": "temp"})).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        a.send(&s, reqwest::Method::DELETE, "/api/v1/roles/temp", None)
            .await
            .status(),
        204
    );
    s.stop().await;
}

#[tokio::test]
async fn checks_batches_permissions_and_their_audit() {
    let s = TestServer::start_with(|c| {
        c.authz.audit_decisions = agentry::config::AuditDecisions::Denials
    })
    .await;
    let a = Admin::new(&s).await;
    let id = a.agent(&s, "svc").await;
    assert_eq!(a.assign(&s, &id, "agent_service", None).await.status(), 201);
    let key: Value = a
        .post(&s, &format!("/api/v1/agents/{id}/keys"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let agent = client();
    // The caller asks about itself without authz:check.
    let res = agent
        .post(s.url("/api/v1/authz/check-batch"))
        .bearer_auth(&key)
        .json(&json!({"checks": [
            {"permission": "metrics:report"},
            {"permission": "workflow:view"},
            {"permission": "knowledge:read", "resource": {"type": "kb", "id": "docs"}}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    let allowed: Vec<bool> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, vec![true, false, true]);
    // Asking about someone else needs authz:check.
    let res = agent
        .post(s.url("/api/v1/authz/check"))
        .bearer_auth(&key)
        .json(
            &json!({"subject": {"type": "user", "id": "someone"}, "permission": "metrics:report"}),
        )
        .send()
        .await
        .unwrap();
    expect_problem(res, 403).await;
    // Limits and validation.
    let many: Vec<Value> = (0..1001).map(|_| json!({"permission": "a:b"})).collect();
    let res = agent
        .post(s.url("/api/v1/authz/check-batch"))
        .bearer_auth(&key)
        .json(&json!({"checks": many}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 422).await;
    let res = agent
        .post(s.url("/api/v1/authz/check-batch"))
        .bearer_auth(&key)
        .json(&json!({"checks": []}))
        .send()
        .await
        .unwrap();
    expect_problem(res, 422).await;
    let res = agent
        .post(s.url("/api/v1/authz/check-batch"))
        .bearer_auth(&key)
        .json(&json!({"checks": [{"permission": "ok:fine"}, {"permission": "NOT OK"}]}))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, 422).await;
    assert!(p["errors"]["checks[1].permission"].is_string(), "{p}");
    // Denials only were recorded.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let (denied, allowed): (i64, i64) = conn
        .query_row(
            "SELECT SUM(outcome = 'denied'), SUM(outcome = 'success') FROM audit_log WHERE action = 'authz.decision'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((denied, allowed), (1, 0));
    // Effective permissions with their role paths.
    let eff: Value =
        a.c.get(s.url(&format!("/api/v1/principals/agent/{id}/permissions")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let perms = eff["permissions"].as_array().unwrap();
    assert!(perms.iter().any(
        |p| p["permission"] == "metrics:report" && p["granted_by"] == json!(["agent_service"])
    ));
    expect_problem(
        a.c.get(s.url("/api/v1/principals/robot/x/permissions"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    expect_problem(
        a.c.get(s.url("/api/v1/principals/agent/nobody/permissions"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn every_decision_is_audited_by_default() {
    let s = TestServer::start().await;
    let a = Admin::new(&s).await;
    let id = a.agent(&s, "audited").await;
    a.check(&s, &id, "x:y", None).await;
    assert_eq!(a.assign(&s, &id, "auditor", None).await.status(), 201);
    a.check(&s, &id, "audit:read", None).await;
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'authz.decision'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
    s.stop().await;
}
