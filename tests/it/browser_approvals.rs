//! Approving a held call in headless Chromium: the dashboard shows the
//! waiting call first, with its arguments; a reason typed and Approve
//! pressed, the MCP SDK client's held call completes.

use std::time::Duration;

use crate::approvals_gateway::Scene;
use crate::browser::{browser, screenshot, sign_in, start_driver, text_until, type_into};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_approves_a_held_call_from_the_dashboard() {
    let sc = Scene::start(300, &[]).await;
    let held = sc.client(&sc.key, &[r#"call:delete_workflow:{"workflow":"nightly"}"#]);
    let id = sc.pending(1).await[0]["id"].as_str().unwrap().to_string();

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &sc.s).await;
    b.goto(&sc.s.url("/")).await.unwrap();
    text_until(&b, "pending-approvals", |t| {
        t.contains("agent cleaner asks to call delete_workflow on kb") && t.contains("\"nightly\"")
    })
    .await;
    screenshot(&b, "approval-dashboard.png").await;
    type_into(&b, &format!("reason-{id}"), "planned cleanup").await;
    b.find(fantoccini::Locator::Id(&format!("approve-{id}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The request's page: approved by the admin, and the call went ahead.
    text_until(&b, "outcome", |t| t.contains("approved by admin")).await;
    let out = tokio::time::timeout(Duration::from_secs(20), held)
        .await
        .expect("the held call ends")
        .unwrap();
    assert_eq!(out["steps"][0]["text"][0], "deleted nightly");
    b.refresh().await.unwrap();
    text_until(&b, "state", |t| t == "used").await;
    text_until(&b, "reason", |t| t == "planned cleanup").await;
    let facts = crate::browser::element_text(&b, "request").await;
    assert!(
        facts.contains("Decided") && !facts.contains("Expires"),
        "{facts}"
    );
    screenshot(&b, "approval-decided.png").await;
    b.close().await.unwrap();
    sc.s.stop().await;
}
