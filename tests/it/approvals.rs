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

/// Asks for approval of `delete_workflow` with `arguments` as `who`,
/// straight through the domain (the gateway's part comes later).
pub(crate) async fn ask(
    s: &TestServer,
    who: agentry::identity::Principal,
    arguments: Value,
    rule_id: &str,
) -> agentry::approvals::requests::Asked {
    let app = &s.running().app;
    let rule = {
        let id = rule_id.to_string();
        app.db
            .read(move |c| agentry::db::approvals::get_rule(c, &id))
            .await
            .unwrap()
            .unwrap()
    };
    let digest = agentry::mcp::message::arguments_digest(&arguments);
    let asker = agentry::approvals::requests::Asker {
        principal: &who,
        client_id: Some("test-client"),
    };
    let held = agentry::approvals::requests::Held {
        server: "workflows",
        tool: "delete_workflow",
        arguments: &arguments,
        digest: &digest,
    };
    app.approvals()
        .ask(
            &agentry::audit::Context::system("test"),
            &asker,
            &held,
            &rule,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn approvers_see_and_decide_requests_and_an_approval_is_used_once() {
    use agentry::approvals::requests::Asked;
    use agentry::identity::{Principal, PrincipalKind};
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let rule = post(
        &c,
        &csrf,
        &s,
        "/api/v1/approval-rules",
        rule("workflow-deletes"),
    )
    .await;
    let rule_id = rule["id"].as_str().unwrap().to_string();
    let ann = create_user(&s, &c, &csrf, "ann", "ann's long password").await;
    let ann_id = ann["id"].as_str().unwrap().to_string();
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "user", "id": ann_id}, "role": "workflow_manager"}),
    )
    .await;
    create_user(&s, &c, &csrf, "bob", "bob's long password").await;
    let agent = create_agent(&s, &c, &csrf, "cleaner", "worker").await;
    let requester = Principal {
        kind: PrincipalKind::Agent,
        id: agent.clone(),
        name: "cleaner".into(),
    };

    let args = json!({"workflow": "nightly", "force": true});
    let Asked::Wait {
        approval_id,
        new: true,
        ..
    } = ask(&s, requester.clone(), args.clone(), &rule_id).await
    else {
        panic!("a new request");
    };
    // A retry of the identical call joins it; other arguments do not.
    assert!(
        matches!(ask(&s, requester.clone(), args.clone(), &rule_id).await,
        Asked::Wait { approval_id: ref j, new: false, .. } if *j == approval_id)
    );
    let other = ask(
        &s,
        requester.clone(),
        json!({"workflow": "other"}),
        &rule_id,
    )
    .await;
    assert!(matches!(other, Asked::Wait { new: true, .. }));

    // ann (the approver role) sees the exact call; bob sees nothing.
    let a = client();
    let acsrf = login(&s, &a, "ann", "ann's long password").await;
    let pending = get_json(&a, &s, "/api/v1/approvals").await;
    let mine = items(&pending)
        .iter()
        .find(|r| r["id"] == approval_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["arguments"], args);
    assert_eq!(mine["rule_name"], "workflow-deletes");
    let b = client();
    let bcsrf = login(&s, &b, "bob", "bob's long password").await;
    assert!(items(&get_json(&b, &s, "/api/v1/approvals").await).is_empty());
    expect_problem(
        b.get(s.url(&format!("/api/v1/approvals/{approval_id}")))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    expect_problem(
        b.post(s.url(&format!("/api/v1/approvals/{approval_id}/approve")))
            .header("x-csrf-token", &bcsrf)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // ann approves (once); the call then goes ahead once.
    let res = a
        .post(s.url(&format!("/api/v1/approvals/{approval_id}/approve")))
        .header("x-csrf-token", &acsrf)
        .json(&json!({"reason": "planned cleanup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["state"], "approved");
    assert_eq!(v["reason"], "planned cleanup");
    expect_problem(
        a.post(s.url(&format!("/api/v1/approvals/{approval_id}/deny")))
            .header("x-csrf-token", &acsrf)
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
    assert_eq!(
        ask(&s, requester.clone(), args.clone(), &rule_id).await,
        Asked::Proceed {
            approval_id: approval_id.clone()
        }
    );
    assert!(
        matches!(
            ask(&s, requester.clone(), args.clone(), &rule_id).await,
            Asked::Wait { new: true, .. }
        ),
        "used once: the next identical call asks again"
    );

    // Four eyes: ann's own request is not hers to approve.
    let ann_principal = Principal {
        kind: PrincipalKind::User,
        id: ann_id.clone(),
        name: "ann".into(),
    };
    let Asked::Wait {
        approval_id: own, ..
    } = ask(&s, ann_principal, json!({"workflow": "ann's"}), &rule_id).await
    else {
        panic!()
    };
    let seen = get_json(&a, &s, &format!("/api/v1/approvals/{own}")).await;
    assert_eq!(seen["principal_id"], ann_id.as_str());
    expect_problem(
        a.post(s.url(&format!("/api/v1/approvals/{own}/approve")))
            .header("x-csrf-token", &acsrf)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    // The admin (approval:manage) may deny it.
    let res = c
        .post(s.url(&format!("/api/v1/approvals/{own}/deny")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Every step is on the audit trail, arguments never.
    for action in ["approval.request", "approval.approve", "approval.deny"] {
        assert!(
            !items(&get_json(&c, &s, &format!("/api/v1/audit?action={action}")).await).is_empty(),
            "{action}"
        );
    }
    let export = c
        .get(s.url("/api/v1/audit/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !export.contains("nightly"),
        "arguments stay out of the audit trail"
    );
    s.stop().await;
}

/// `POST /api/v1/authz/check` with `credential` (an agent's key).
async fn check(s: &TestServer, credential: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(s.url("/api/v1/authz/check"))
        .bearer_auth(credential)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_decision_api_answers_approval_required_until_a_person_approves_once() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/roles",
        json!({"name": "cleaner_role", "permissions": ["workflow:delete", "workflow:read"]}),
    )
    .await;
    let mut body = rule("workflow-deletes");
    body["permission"] = json!("workflow:delete");
    post(&c, &csrf, &s, "/api/v1/approval-rules", body).await;
    let agent = create_agent(&s, &c, &csrf, "cleaner", "worker").await;
    let key = create_agent_key(&s, &c, &csrf, &agent).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "agent", "id": agent}, "role": "cleaner_role"}),
    )
    .await;
    let ann = create_user(&s, &c, &csrf, "ann", "ann's long password").await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "user", "id": ann["id"]}, "role": "workflow_manager"}),
    )
    .await;
    let a = client();
    let acsrf = login(&s, &a, "ann", "ann's long password").await;

    let args = json!({"workflow": "nightly", "force": true});
    let digest = agentry::mcp::message::arguments_digest(&args);
    let question = |extra: Value| {
        let mut q = json!({"permission": "workflow:delete",
                           "resource": {"type": "workflow", "id": "nightly"}});
        for (k, v) in extra.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    };

    // A permission no rule holds is answered as before.
    let v: Value = check(&s, &key, json!({"permission": "workflow:read"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowed"], true);
    assert!(v.get("approval_required").is_none(), "{v}");

    // Held: without arguments there is nothing to bind an approval to.
    let v: Value = check(&s, &key, question(json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["allowed"].clone(), v["approval_required"].clone()),
        (json!(false), json!(true))
    );
    assert!(v.get("approval_id").is_none(), "{v}");

    // With the arguments: a request, which the same digest joins.
    let v: Value = check(&s, &key, question(json!({"arguments": args})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["approval_required"], true, "{v}");
    let id = v["approval_id"].as_str().unwrap().to_string();
    let v: Value = check(&s, &key, question(json!({"arguments_digest": digest})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["approval_id"], id.as_str());
    assert_eq!(v["allowed"], false);

    // The requester polls its request; ann sees the arguments.
    let mine: Value = reqwest::Client::new()
        .get(s.url(&format!("/api/v1/approvals/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["state"], "pending");
    assert!(
        mine["arguments"].is_null(),
        "the requester is not shown the sealed arguments"
    );
    let seen = get_json(&a, &s, &format!("/api/v1/approvals/{id}")).await;
    assert_eq!(seen["arguments"], args);
    assert_eq!(seen["tool"], "workflow:delete");
    assert_eq!(seen["server"], "workflow/nightly");

    // Approved: the next identical check is allowed, once.
    let res = a
        .post(s.url(&format!("/api/v1/approvals/{id}/approve")))
        .header("x-csrf-token", &acsrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let other = json!({"workflow": "other"});
    let v: Value = check(&s, &key, question(json!({"arguments": other})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowed"], false, "other arguments are not covered");
    let v: Value = check(&s, &key, question(json!({"arguments_digest": digest})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["allowed"].clone(), v["approval_id"].clone()),
        (json!(true), json!(id))
    );
    let v: Value = check(&s, &key, question(json!({"arguments_digest": digest})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowed"], false, "used once");
    assert_ne!(v["approval_id"], json!(id));
    let used: Value = reqwest::Client::new()
        .get(s.url(&format!("/api/v1/approvals/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(used["state"], "used");

    // One principal may have 20 requests waiting: the 21st distinct call
    // makes none (approvers are not flooded).
    let before = items(&get_json(&a, &s, "/api/v1/approvals?state=pending").await).len();
    let mut last = Value::Null;
    for n in 0..(21 - before) {
        last = check(&s, &key, question(json!({"arguments": {"n": n}})))
            .await
            .json()
            .await
            .unwrap();
    }
    assert_eq!(last["approval_required"], true, "{last}");
    assert!(last.get("approval_id").is_none(), "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("already"),
        "{last}"
    );
    assert_eq!(
        items(&get_json(&a, &s, "/api/v1/approvals?state=pending").await).len(),
        20
    );

    // Malformed digests are refused with the field named.
    for bad in [
        json!({"arguments_digest": "ABC"}),
        json!({"arguments_digest": "0".repeat(64), "arguments": args}),
    ] {
        let problem = expect_problem(check(&s, &key, question(bad)).await, 422).await;
        assert!(
            problem["errors"]["arguments_digest"].is_string(),
            "{problem}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn approval_rules_are_kept_from_their_page_with_refusals_at_the_fields() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let page = get_text(&c, &s, "/approval-rules/new").await;
    let token = form_csrf(&page);
    let form = |name: &str, timeout: &str, role: &str| {
        vec![
            ("csrf_token", token.clone()),
            ("name", name.to_string()),
            ("server", "workflows".to_string()),
            ("tools", "delete_*".to_string()),
            ("approver_role", role.to_string()),
            ("timeout_seconds", timeout.to_string()),
            ("channels", "".to_string()),
        ]
    };
    let send =
        |body: Vec<(&'static str, String)>, path: &str| c.post(s.url(path)).form(&body).send();
    // Refused: the fields say why, nothing is stored.
    for (body, field) in [
        (
            form("deletes", "soon", "workflow_manager"),
            "timeout_seconds",
        ),
        (form("deletes", "5", "workflow_manager"), "timeout_seconds"),
        (form("deletes", "300", "nobody_holds_this"), "approver_role"),
        (form("Not A Name", "300", "workflow_manager"), "name"),
    ] {
        let res = send(body, "/approval-rules").await.unwrap();
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("id=\"error-{field}\"")), "{field}");
    }
    assert!(items(&get_json(&c, &s, "/api/v1/approval-rules").await).is_empty());
    // Made, changed (a new version), listed, deleted.
    let res = send(
        form("deletes", "300", "workflow_manager"),
        "/approval-rules",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 303);
    let at = res.headers()["location"].to_str().unwrap().to_string();
    let res = send(form("deletes", "600", "workflow_manager"), &at)
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let rules = get_json(&c, &s, "/api/v1/approval-rules").await;
    let rule = &items(&rules)[0];
    assert_eq!(
        (rule["version"].clone(), rule["timeout_seconds"].clone()),
        (json!(2), json!(600))
    );
    assert!(get_text(&c, &s, "/approval-rules")
        .await
        .contains("delete_*"));
    let res = send(
        form("deletes", "300", "workflow_manager"),
        "/approval-rules",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422, "the name is taken");
    let res = send(vec![("csrf_token", token.clone())], &format!("{at}/delete"))
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(items(&get_json(&c, &s, "/api/v1/approval-rules").await).is_empty());

    // Without approval:manage the pages are refused; a forged token too.
    create_user(&s, &c, &csrf, "bob", "bob's long password").await;
    let b = client();
    login(&s, &b, "bob", "bob's long password").await;
    let res = b.get(s.url("/approval-rules")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = c
        .post(s.url("/approval-rules"))
        .form(&[("csrf_token", "forged"), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Anyone signed in has the Approvals page; an unknown request is not found.
    assert!(get_text(&b, &s, "/approvals")
        .await
        .contains("No call waits for approval"));
    let res = b.get(s.url("/approvals/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    s.stop().await;
}
