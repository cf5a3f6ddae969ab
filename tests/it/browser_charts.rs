//! The metrics page and the audit activity chart in headless Chromium: a
//! rule opens its series with its threshold, lines on a labelled scale with
//! a legend, the range switch, a bad filter said; the audit log's activity
//! bars link to the records they count; preset and date ranges filter.

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{
    browser, click_css, count, element_text, screenshot, sign_in, start_driver, text_until, texts,
};
use crate::support::*;

#[tokio::test]
async fn chromium_plots_series_and_audit_activity() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    // A sample a minute for the last hour from two instances.
    let now = agentry::db::now_ms();
    let mut samples = Vec::new();
    for k in 1..=60i64 {
        let at = agentry::timefmt::rfc3339(now - k * 60_000);
        for (instance, base) in [("eu-1", 0.1), ("eu-2", 0.3)] {
            samples.push(
                json!({"name": "error_rate", "value": base + (k % 5) as f64 * 0.01,
                "labels": {"agent": "planner", "instance": instance}, "timestamp": at}),
            );
        }
    }
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/metrics",
        json!({"metrics": samples}),
    )
    .await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/alert-rules",
        json!({"name": "planner_errors", "expression": "error_rate{agent=\"planner\"} > 20%",
               "severity": "minor"}),
    )
    .await;
    // A refused sign-in, for the activity chart.
    let stranger = client();
    post_login(&s, &stranger, "admin", "not the password").await;

    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;

    // From the rule to its series, with the threshold drawn.
    b.goto(&s.url("/alert-rules/planner_errors")).await.unwrap();
    click_css(&b, "#plot-rule").await;
    text_until(&b, "series-legend", |t| t.contains("instance=\"eu-2\"")).await;
    assert_eq!(
        count(&b, "#series-legend li.s0, #series-legend li.s1").await,
        2
    );
    // Reporters by name.
    assert!(element_text(&b, "series-legend")
        .await
        .contains("} from admin"));
    let threshold = element_text(&b, "series-chart").await;
    assert!(threshold.contains("planner_errors"), "{threshold}");
    assert_eq!(
        count(&b, "#series-chart .threshold line").await,
        1,
        "the threshold line"
    );
    let labels = texts(&b, "#series-chart .axis.y text").await;
    assert_eq!(labels.first().map(String::as_str), Some("0"), "{labels:?}");
    assert_eq!(labels.last().map(String::as_str), Some("0.5"), "{labels:?}");
    assert_eq!(count(&b, "#series-chart polyline").await, 2);
    text_until(&b, "series-count", |t| t.starts_with("2 series match")).await;
    screenshot(&b, "series.png").await;
    // The range switch: the last hour, every line still there.
    b.find(Locator::LinkText("1h"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&b, "ranges", |t| t.contains("24h")).await;
    assert_eq!(count(&b, "#series-chart polyline").await, 2);
    // A date range and a bad label filter.
    b.goto(&s.url("/series?name=error_rate&labels=instance%20eu-1"))
        .await
        .unwrap();
    text_until(&b, "series-error", |t| t.contains("labels: matcher 1")).await;
    b.goto(&s.url("/series?name=error_rate&labels=instance%3D%22eu-1%22&from=2h"))
        .await
        .unwrap();
    text_until(&b, "series-count", |t| t.starts_with("1 series match")).await;
    // The navigation reaches it.
    b.goto(&s.url("/")).await.unwrap();
    b.find(Locator::LinkText("Metrics"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&b, "series-form", |_| true).await;

    // Audit activity: the refused sign-in is a failure bar linked to it.
    b.goto(&s.url("/audit")).await.unwrap();
    text_until(&b, "audit-activity", |t| t.contains("last 24 hours")).await;
    assert!(count(&b, "#audit-activity rect.success").await >= 1);
    screenshot(&b, "audit-activity.png").await;
    let link = b
        .find(Locator::Css("#audit-activity a:has(rect.failure)"))
        .await
        .unwrap();
    link.click().await.unwrap();
    text_until(&b, "audit-table", |t| t.contains("auth.login")).await;
    let url = b.current_url().await.unwrap();
    assert!(url.query().unwrap().contains("outcome=failure"), "{url}");
    let outcomes = element_text(&b, "audit-table").await;
    assert!(!outcomes.contains("success"), "{outcomes}");
    // Presets and dates.
    b.goto(&s.url("/audit")).await.unwrap();
    b.find(Locator::LinkText("24 hours"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&b, "audit-table", |t| t.contains("auth.login")).await;
    b.goto(&s.url("/audit?until=2020-01-01")).await.unwrap();
    text_until(&b, "audit-table", |t| !t.contains("auth.login")).await;
    assert!(b.find(Locator::Id("filter-error")).await.is_err());
    s.stop().await;
}
