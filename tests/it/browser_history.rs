//! A monitor's history in headless Chromium: the check bar marks failures,
//! the range switch changes the buckets, the uptimes are shown.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{browser, element_text, screenshot, sign_in, start_driver, text_until};
use crate::support::*;

async fn count(b: &fantoccini::Client, css: &str) -> usize {
    b.find_all(Locator::Css(css)).await.unwrap().len()
}

#[tokio::test]
async fn chromium_shows_a_monitors_check_bar_by_range() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "bar", "planner").await;
    let res = c
        .post(s.url("/api/v1/instances"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"agent_id": agent, "name": "bar", "kind": "http",
                      "url": "http://127.0.0.1:9/h", "enabled": false}))
        .send()
        .await
        .unwrap();
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A check a minute for the last 50 minutes; the ten most recent failed.
    let now = agentry::db::now_ms();
    {
        let mut conn = rusqlite::Connection::open(s.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let tx = conn.transaction().unwrap();
        for k in 0..50i64 {
            tx.execute(
                "INSERT INTO check_results (instance_id, at, ok, latency_ms) VALUES (?1, ?2, ?3, 20)",
                rusqlite::params![id, now - k * 60_000, k >= 10],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    b.goto(&s.url(&format!("/monitors/{id}?range=1h")))
        .await
        .unwrap();
    text_until(&b, "uptime", |t| t.contains("80.00 %")).await;
    assert_eq!(count(&b, "#check-bar rect").await, 60);
    assert_eq!(count(&b, "#check-bar rect.fail").await, 10);
    assert_eq!(count(&b, "#check-bar rect.ok").await, 40);
    b.execute(
        "document.getElementById('history').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&b, "monitor-history-1h.png").await;
    // 24 hours, by the hour: the same checks in fewer, wider marks.
    b.find(Locator::LinkText("24h"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&b, "ranges", |t| t.contains("1h")).await;
    for _ in 0..50 {
        if count(&b, "#check-bar rect").await == 24 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&b, "#check-bar rect").await, 24);
    assert!(
        count(&b, "#check-bar rect.partial").await + count(&b, "#check-bar rect.fail").await >= 1
    );
    let uptime = element_text(&b, "uptime").await;
    assert!(uptime.contains("80.00 %"), "{uptime}");
    b.execute(
        "document.getElementById('history').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&b, "monitor-history-24h.png").await;
    s.stop().await;
}
