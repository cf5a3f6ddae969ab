//! Approval rules (SPEC §18) through the API: written, read, versioned,
//! refused with the field named, guarded by approval:manage, audited.

use serde_json::{json, Value};

use crate::support::*;

fn rule(name: &str) -> Value {
    json!({
        "name": name,
        "server": "workflows",
        "tools": "delete_*",
        "approver_role": "workflow_manager",
        "timeout_seconds": 120,
    })
}

#[tokio::test]
async fn approval_rules_are_written_versioned_and_checked() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let created = post(
        &c,
        &csrf,
        &s,
        "/api/v1/approval-rules",
        rule("workflow-deletes"),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["version"], 1);
    assert_eq!(created["channels"], json!([]));
    let got = get_json(&c, &s, &format!("/api/v1/approval-rules/{id}")).await;
    assert_eq!(got["tools"], "delete_*");
    assert_eq!(
        items(&get_json(&c, &s, "/api/v1/approval-rules").await).len(),
        1
    );

    // A change is a new version.
    let mut changed = rule("workflow-deletes");
    changed["tools"] = json!("delete_workflow");
    let put_res = put(
        &c,
        &csrf,
        &s,
        &format!("/api/v1/approval-rules/{id}"),
        changed,
    )
    .await;
    assert_eq!(put_res["version"], 2);

    // Refusals name the field; nothing is stored.
    let send = |body: Value| {
        c.post(s.url("/api/v1/approval-rules"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    expect_problem(send(rule("workflow-deletes")).await.unwrap(), 409).await;
    for (field, patch) in [
        ("approver_role", json!({"approver_role": "no_such_role"})),
        ("channels", json!({"channels": ["nowhere"]})),
        ("escalation_policy", json!({"escalation_policy": "nobody"})),
        ("timeout_seconds", json!({"timeout_seconds": 5})),
        ("tools", json!({"tools": ""})),
        ("server", json!({"server": "Not A Server"})),
        ("permission", json!({"permission": "nope"})),
    ] {
        let mut body = rule("another");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let problem = expect_problem(send(body).await.unwrap(), 422).await;
        assert!(problem["errors"][field].is_string(), "{field}: {problem}");
    }
    let unknown = c.post(s.url("/api/v1/approval-rules")).header("x-csrf-token", &csrf)
        .json(&json!({"name": "x", "server": "*", "tools": "*", "approver_role": "auditor", "colour": "red"}))
        .send().await.unwrap();
    expect_problem(unknown, 422).await;
    assert_eq!(
        items(&get_json(&c, &s, "/api/v1/approval-rules").await).len(),
        1
    );

    // Not found, and not allowed without approval:manage.
    for res in [
        c.get(s.url("/api/v1/approval-rules/nope"))
            .send()
            .await
            .unwrap(),
        c.delete(s.url("/api/v1/approval-rules/nope"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    ] {
        expect_problem(res, 404).await;
    }
    create_user(&s, &c, &csrf, "bob", "bob's long password").await;
    let b = client();
    login(&s, &b, "bob", "bob's long password").await;
    expect_problem(
        b.get(s.url("/api/v1/approval-rules")).send().await.unwrap(),
        403,
    )
    .await;

    // Deleted, and every step is on the audit trail.
    let res = c
        .delete(s.url(&format!("/api/v1/approval-rules/{id}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for action in [
        "approval_rule.create",
        "approval_rule.update",
        "approval_rule.delete",
    ] {
        let records = get_json(&c, &s, &format!("/api/v1/audit?action={action}")).await;
        assert!(!items(&records).is_empty(), "{action}");
    }
    s.stop().await;
}
