//! Traces and logs in headless Chromium: the trace list filters, a trace
//! opens as a waterfall in tree order with a failed span marked and its
//! attributes a click away; the logs page searches, links to the trace,
//! and follows new records in place.

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{
    browser, click_css, count, screenshot, sign_in, start_driver, text_until, texts,
};
use crate::support::*;

fn export(now_ns: i128) -> Value {
    let t = "5b8efff798038103d269b633813fc60c";
    let span = |id: &str, parent: Option<&str>, name: &str, from: i128, to: i128, code: i64| {
        let mut s = json!({"traceId": t, "spanId": id, "name": name, "kind": 2,
            "startTimeUnixNano": (now_ns + from * 1_000_000).to_string(),
            "endTimeUnixNano": (now_ns + to * 1_000_000).to_string(),
            "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": name}}],
            "status": {"code": code, "message": if code == 2 { "upstream timed out" } else { "" }}});
        if let Some(p) = parent {
            s["parentSpanId"] = json!(p);
        }
        s
    };
    json!({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "planner"}}]},
    "scopeSpans": [{"spans": [
        span("0000000000000001", None, "plan_trip", 0, 120, 1),
        span("0000000000000002", Some("0000000000000001"), "search_flights", 10, 60, 0),
        span("0000000000000003", Some("0000000000000002"), "call_airline", 15, 55, 2),
        span("0000000000000004", Some("0000000000000001"), "book", 70, 110, 0),
    ]}]}]})
}

fn logs(now_ns: i128, body: &str, severity: i64) -> Value {
    json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "planner"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": now_ns.to_string(),
            "severityNumber": severity, "body": {"stringValue": body},
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000003"}]}]}]})
}

#[tokio::test]
async fn chromium_lists_traces_draws_a_waterfall_and_follows_logs() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let now = agentry::db::now_ms() as i128 * 1_000_000 - 60_000_000_000;
    post(&c, &csrf, &s, "/v1/traces", export(now)).await;
    post(
        &c,
        &csrf,
        &s,
        "/v1/logs",
        logs(now, "airline API refused the search", 17),
    )
    .await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;

    b.goto(&s.url("/traces?status=error")).await.unwrap();
    assert_eq!(
        count(&b, "#traces-table tbody tr a").await,
        0,
        "the root did not fail"
    );
    b.goto(&s.url("/traces")).await.unwrap();
    let rows = texts(&b, "#traces-table tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("plan_trip") && rows[0].contains("1 failed"),
        "{rows:?}"
    );
    screenshot(&b, "traces-list").await;
    click_css(&b, "#traces-table tbody a").await;
    text_until(&b, "waterfall", |t| t.contains("call_airline")).await;
    // Tree order: each span under its parent.
    let names = texts(&b, "#waterfall .span-name summary").await;
    let order: Vec<&str> = names
        .iter()
        .map(|n| n.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        ["plan_trip", "search_flights", "call_airline", "book"]
    );
    assert_eq!(count(&b, "#waterfall tr.span-row.error").await, 1);
    assert_eq!(count(&b, "#waterfall svg.span-bar rect").await, 4);
    assert!(count(&b, "#waterfall .depth-2").await == 1);
    // Attributes and the status message a click away.
    click_css(&b, "tr.span-row.error summary").await;
    let opened = b
        .find(Locator::Css("tr.span-row.error details"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        opened.contains("upstream timed out") && opened.contains("gen_ai.tool.name"),
        "{opened}"
    );
    screenshot(&b, "trace-waterfall").await;

    // The trace's log records, and back to the trace from the log.
    click_css(&b, "#trace-logs").await;
    text_until(&b, "logs-table", |t| t.contains("airline API refused")).await;
    b.goto(&s.url("/logs?q=refus&severity=error"))
        .await
        .unwrap();
    text_until(&b, "logs-table", |t| t.contains("airline API refused")).await;
    b.goto(&s.url("/logs?q=nothing-like-this")).await.unwrap();
    text_until(&b, "logs-table", |t| t.contains("No log records match")).await;
    b.goto(&s.url("/logs?severity=loud")).await.unwrap();
    text_until(&b, "filter-error", |t| t.contains("severity")).await;

    // Follow: a record sent after the page opened appears in place.
    b.goto(&s.url("/logs")).await.unwrap();
    click_css(&b, "#follow").await;
    text_until(&b, "updated", |t| t.contains("Following")).await;
    b.execute("window.stayedHere = true;", vec![])
        .await
        .unwrap();
    let later = agentry::db::now_ms() as i128 * 1_000_000;
    post(
        &c,
        &csrf,
        &s,
        "/v1/logs",
        logs(later, "booking confirmed", 9),
    )
    .await;
    text_until(&b, "logs-table", |t| t.contains("booking confirmed")).await;
    let stayed = b
        .execute("return window.stayedHere === true;", vec![])
        .await
        .unwrap();
    assert_eq!(stayed, json!(true), "refreshed in place, not reloaded");
    screenshot(&b, "logs-follow").await;
    click_css(&b, "#logs-table a[href^='/traces/']").await;
    text_until(&b, "waterfall", |t| t.contains("plan_trip")).await;
    s.stop().await;
}
