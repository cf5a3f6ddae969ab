//! Alert triage in headless Chromium: alerts grouped by rule with counts
//! per state, a label filter, acknowledge and silence on each row, how long
//! each has fired, silenced ones marked; a silence form previews what it
//! would mute and saves nothing.

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{
    browser, click_css, count, element_text, screenshot, sign_in, start_driver, text_until,
    type_into,
};
use crate::support::*;

#[tokio::test]
async fn chromium_triages_alerts_grouped_by_rule() {
    let s = TestServer::start_with(|c| c.alerting.evaluation_interval_seconds = 1).await;
    let (c, csrf) = admin(&s).await;
    let mut metrics = Vec::new();
    for instance in ["eu-1", "eu-2", "us-1"] {
        metrics.push(json!({"name": "error_rate", "value": 0.5,
            "labels": {"agent": "planner", "instance": instance}}));
    }
    metrics.push(json!({"name": "queue_depth", "value": 900, "labels": {"agent": "indexer"}}));
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/metrics",
        json!({"metrics": metrics}),
    )
    .await;
    for (name, expr) in [
        ("planner_errors", "error_rate{agent=\"planner\"} > 0.2"),
        ("queue_backlog", "queue_depth > 500"),
    ] {
        post(
            &c,
            &csrf,
            &s,
            "/api/v1/alert-rules",
            json!({"name": name, "expression": expr, "severity": "major"}),
        )
        .await;
    }
    firing_alerts(&c, &s, 4).await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    b.goto(&s.url("/alerts")).await.unwrap();
    text_until(&b, "alerts-total", |t| {
        t.contains("4 firing alerts in 2 rules")
    })
    .await;
    assert_eq!(count(&b, "tbody.group").await, 2);
    let head = element_text(&b, "alerts-table").await;
    assert!(head.contains("planner_errors 3 firing"), "{head}");
    assert!(head.contains("queue_backlog 1 firing"), "{head}");
    // How long each has fired, kept as a duration with the start on hover.
    let state = b
        .find(Locator::Css("tr.alert-row td:nth-child(1)"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        state.starts_with("firing for ") && state.ends_with(" s"),
        "{state}"
    );
    let since = b
        .find(Locator::Css("tr.alert-row time[data-for]"))
        .await
        .unwrap();
    assert!(since
        .attr("title")
        .await
        .unwrap()
        .unwrap()
        .starts_with("since 20"));
    assert_eq!(count(&b, "button[data-action=ack]").await, 4);
    screenshot(&b, "alerts-triage.png").await;

    // A label filter narrows to one alert and is kept by the row actions.
    type_into(&b, "f-labels", "instance=\"eu-2\"").await;
    click_css(&b, "#label-filter button[type=submit]").await;
    text_until(&b, "alerts-total", |t| {
        t.starts_with("1 firing alert matching")
    })
    .await;
    assert_eq!(count(&b, "tr.alert-row").await, 1);
    click_css(&b, "button[data-action=ack]").await;
    text_until(&b, "alerts-table", |t| t.contains("admin")).await;
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/alerts");
    assert!(url.query().unwrap().contains("labels=instance"), "{url}");
    assert_eq!(count(&b, "button[data-action=ack]").await, 0);

    // Silence that row from the list: it is marked silenced, and stays listed.
    click_css(&b, "details.row-silence summary").await;
    let comment = b
        .find(Locator::Css("details.row-silence input[name=comment]"))
        .await
        .unwrap();
    comment.send_keys("deploy of eu-2").await.unwrap();
    click_css(&b, "button[data-action=silence]").await;
    text_until(&b, "alerts-table", |t| t.contains("silenced")).await;
    assert_eq!(count(&b, "tr.alert-row.muted").await, 1);
    let silences: Value = get_json(&c, &s, "/api/v1/silences").await;
    assert_eq!(silences["items"].as_array().unwrap().len(), 1);
    assert_eq!(silences["items"][0]["comment"], "deploy of eu-2");

    // The alert's page draws its states over time; the rule's page, each
    // alert's over the last 24 hours.
    b.goto(&s.url("/alerts?state=firing")).await.unwrap();
    click_css(&b, "tr.alert-row a[href^='/alerts/']").await;
    text_until(&b, "alert-states", |_| true).await;
    assert!(
        b.find_all(Locator::Css("#alert-states rect.firing"))
            .await
            .unwrap()
            .len()
            == 1,
        "one firing span"
    );
    b.goto(&s.url("/alert-rules/planner_errors")).await.unwrap();
    assert_eq!(count(&b, "#rule-states tr").await, 3);
    assert_eq!(count(&b, "#rule-states rect.firing").await, 3);

    // A filter that does not read says why and filters nothing.
    b.goto(&s.url("/alerts?labels=instance%20eu-2"))
        .await
        .unwrap();
    text_until(&b, "labels-error", |t| t.contains("matcher 1")).await;
    text_until(&b, "alerts-total", |t| t.starts_with("4 firing")).await;

    // The silence form previews the alerts it would mute; nothing is saved.
    b.goto(&s.url("/silences")).await.unwrap();
    type_into(
        &b,
        "f-matchers",
        "alertname=\"planner_errors\"\nagent=\"planner\"",
    )
    .await;
    click_css(&b, "#preview-silence").await;
    text_until(&b, "silence-preview", |t| {
        t.contains("Would silence 3 active alerts")
    })
    .await;
    let preview = element_text(&b, "silence-preview").await;
    assert!(preview.contains("already silenced"), "{preview}");
    assert!(!preview.contains("queue_backlog"), "{preview}");
    let silences: Value = get_json(&c, &s, "/api/v1/silences").await;
    assert_eq!(
        silences["items"].as_array().unwrap().len(),
        1,
        "a preview saved a silence"
    );
    screenshot(&b, "silence-preview.png").await;
    s.stop().await;
}
