//! Names, not ids, and agent and user pages as hubs, in headless Chromium:
//! a role is assigned by typing a name (an unknown one is refused by name),
//! assignments read as names, a denied check offers the roles that would
//! grant it, and an agent's page shows and changes its roles, effective
//! permissions, monitors, open alerts and recent audit events.

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{
    browser, click_css, element_text, screenshot, sign_in, start_driver, text_until, type_into,
};
use crate::support::*;

#[tokio::test]
async fn chromium_uses_names_and_the_agent_and_user_hubs() {
    let s = TestServer::start_with(|c| c.alerting.evaluation_interval_seconds = 1).await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "search-bot", "retriever").await;
    let dana = create_user(&s, &c, &csrf, "dana", "a long enough password 3").await;
    let dana_id = dana["id"].as_str().unwrap().to_string();
    for (name, perms) in [
        ("kb_reader", json!(["kb:read"])),
        ("kb_writer", json!(["kb:write"])),
    ] {
        post(
            &c,
            &csrf,
            &s,
            "/api/v1/roles",
            json!({"name": name, "permissions": perms}),
        )
        .await;
    }
    post(&c, &csrf, &s, "/api/v1/instances",
        json!({"agent_id": agent, "name": "search-bot-health", "kind": "heartbeat", "enabled": false})).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/metrics",
        json!({"metrics": [{"name": "error_rate", "value": 0.9,
        "labels": {"agent": "search-bot"}}]}),
    )
    .await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/alert-rules",
        json!({"name": "search_errors", "expression": "error_rate{agent=\"search-bot\"} > 0.5",
               "severity": "minor"}),
    )
    .await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;

    // A role assigned by name: the picker offers the names, the table shows them.
    b.goto(&s.url("/roles/kb_reader")).await.unwrap();
    let offered = b
        .execute(
            "return [...document.querySelectorAll('#agent-names option')].map(o => o.value)",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        offered.as_array().unwrap().contains(&json!("search-bot")),
        "{offered}"
    );
    type_into(&b, "f-subject_id", "ghost-bot").await;
    click_css(&b, "#assign-role button").await;
    text_until(&b, "assign-role", |t| {
        t.contains("no agent named “ghost-bot”")
    })
    .await;
    assert!(element_text(&b, "assignments-table")
        .await
        .contains("Not assigned"));
    b.find(Locator::Id("f-subject_id"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    type_into(&b, "f-subject_id", "search-bot").await;
    click_css(&b, "#assign-role button").await;
    text_until(&b, "assignments-table", |t| t.contains("agent search-bot")).await;
    let table = element_text(&b, "assignments-table").await;
    assert!(!table.contains(&agent), "an id shown: {table}");

    // A denied check offers the roles that grant the permission.
    b.goto(&s.url("/access?subject_type=user&subject_id=dana&permission=kb:write"))
        .await
        .unwrap();
    text_until(&b, "decision", |t| t.starts_with("Denied")).await;
    let offer = element_text(&b, "grant-via").await;
    assert!(
        offer.contains("Assign kb_writer to dana") && !offer.contains("kb_reader"),
        "{offer}"
    );
    // Least privilege: the role that grants everything is not suggested.
    assert!(!offer.contains("system_admin"), "{offer}");
    let reason = element_text(&b, "decision").await;
    assert!(
        reason.contains("user dana ") && !reason.contains(&dana_id),
        "{reason}"
    );
    screenshot(&b, "access-grant-via.png").await;
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, "#grant-via button").await;
    text_until(&b, "assignments-table", |t| t.contains("user dana")).await;
    b.goto(&s.url("/access?subject_type=user&subject_id=dana&permission=kb:write"))
        .await
        .unwrap();
    text_until(&b, "decision", |t| t.starts_with("Allowed")).await;

    // The agent's hub.
    firing_alerts(&c, &s, 1).await;
    b.goto(&s.url(&format!("/agents/{agent}"))).await.unwrap();
    text_until(&b, "hub-roles", |t| {
        t.contains("kb_reader") && t.contains("everything")
    })
    .await;
    text_until(&b, "hub-effective", |t| {
        t.contains("kb:read") && t.contains("kb_reader")
    })
    .await;
    text_until(&b, "hub-monitors", |t| t.contains("search-bot-health")).await;
    text_until(&b, "hub-alerts", |t| t.contains("search_errors")).await;
    text_until(&b, "hub-audit", |t| t.contains("role_assignment.create")).await;
    // Assign a scoped role here, then remove it (asked first).
    type_into(&b, "f-hub-role", "kb_writer").await;
    b.find(Locator::Css("#hub-assign input[name=resource_type]"))
        .await
        .unwrap()
        .send_keys("kb")
        .await
        .unwrap();
    b.find(Locator::Css("#hub-assign input[name=resource_pattern]"))
        .await
        .unwrap()
        .send_keys("public-*")
        .await
        .unwrap();
    click_css(&b, "#hub-assign button").await;
    text_until(&b, "hub-roles", |t| {
        t.contains("kb_writer") && t.contains("public-*")
    })
    .await;
    // Scoped grants are not "everywhere".
    assert!(!element_text(&b, "hub-effective").await.contains("kb:write"));
    screenshot(&b, "agent-hub.png").await;
    b.execute("window.confirm = () => false;", vec![])
        .await
        .unwrap();
    click_css(&b, "#hub-roles tr:nth-child(2) form button").await;
    assert!(element_text(&b, "hub-roles").await.contains("kb_writer"));
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    let rows = b
        .find_all(Locator::Css("#hub-roles tbody tr"))
        .await
        .unwrap();
    for r in rows {
        if r.text().await.unwrap().contains("kb_writer") {
            r.find(Locator::Css("form button"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            break;
        }
    }
    text_until(&b, "hub-roles", |t| !t.contains("kb_writer")).await;

    // A new key is shown once, with a copy button that says what it did.
    b.goto(&s.url(&format!("/agents/{agent}"))).await.unwrap();
    click_css(&b, "#create-key button").await;
    text_until(&b, "new-key", |t| t.starts_with("agk_")).await;
    let copy = b
        .find(Locator::Css("button[data-copy=new-key]"))
        .await
        .unwrap();
    assert!(
        copy.is_displayed().await.unwrap(),
        "the copy button is shown"
    );
    copy.click().await.unwrap();
    text_until(&b, "new-key-copied", |t| !t.is_empty()).await;
    let said = element_text(&b, "new-key-copied").await;
    assert!(
        said == "Copied." || said.starts_with("Copying was refused"),
        "{said}"
    );

    // The audit log names its targets, linked to their pages.
    b.goto(&s.url("/audit?action=agent.create")).await.unwrap();
    text_until(&b, "audit-table", |t| t.contains("agent search-bot")).await;
    let href = b
        .find(Locator::LinkText("agent search-bot"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(href.as_deref(), Some(format!("/agents/{agent}").as_str()));

    // The big lists search on the server and say how many match.
    create_agent(&s, &c, &csrf, "indexer-7", "indexer").await;
    b.goto(&s.url("/agents")).await.unwrap();
    text_until(&b, "agents-total", |t| t == "2 agents").await;
    b.find(Locator::Id("agents-search"))
        .await
        .unwrap()
        .send_keys("SEARCH")
        .await
        .unwrap();
    click_css(&b, "form.list-tools button").await;
    text_until(&b, "agents-total", |t| {
        t.starts_with("1 agent match “SEARCH”")
    })
    .await;
    assert!(element_text(&b, "agents-table")
        .await
        .contains("search-bot"));
    assert!(!element_text(&b, "agents-table").await.contains("indexer-7"));
    b.goto(&s.url("/users?q=nobody-like-this")).await.unwrap();
    text_until(&b, "users-total", |t| t.starts_with("0 users match")).await;
    b.goto(&s.url("/users?q=dan")).await.unwrap();
    text_until(&b, "users-total", |t| t.starts_with("1 user match")).await;

    // The user's hub.
    b.goto(&s.url(&format!("/users/{dana_id}"))).await.unwrap();
    text_until(&b, "hub-roles", |t| t.contains("kb_writer")).await;
    text_until(&b, "hub-effective", |t| t.contains("kb:write")).await;
    assert!(b.find(Locator::Id("hub-monitors")).await.is_err());
    screenshot(&b, "user-hub.png").await;
    s.stop().await;
}
