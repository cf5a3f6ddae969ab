//! A monitor's history in headless Chromium: the check bar marks failures,
//! the range switch changes the buckets, the uptimes are shown.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{
    browser, count, element_text, screenshot, sign_in, start_driver, text_until, texts,
};
use crate::support::*;

#[tokio::test]
async fn chromium_shows_a_monitors_check_bar_by_range() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "bar", "planner").await;
    let res = c
        .post(s.url("/api/v1/instances"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"agent_id": agent, "name": "bar", "kind": "http",
                      "url": "http://127.0.0.1:9/h", "enabled": false,
                      "degraded_latency_ms": 150}))
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
    // The latency chart: labelled axes from 0 ms, the degraded threshold,
    // the failed minutes marked, the p95 line drawn.
    let axis: Vec<String> = texts(&b, "#latency-chart .axis.y text").await;
    assert_eq!(axis.first().map(String::as_str), Some("0 ms"), "{axis:?}");
    assert_eq!(axis.last().map(String::as_str), Some("200 ms"), "{axis:?}");
    assert_eq!(count(&b, "#latency-chart .axis.x text").await, 7);
    let threshold = texts(&b, "#latency-chart .threshold text").await;
    assert_eq!(threshold, ["degraded above 150 ms"]);
    assert_eq!(count(&b, "#latency-chart rect.failed").await, 10);
    assert!(count(&b, "#latency-chart .line.p95 polyline").await >= 1);
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
    // 24 hours by the hour: the ten failed minutes fall in one or two hours.
    let marks = count(&b, "#latency-chart rect.failed").await;
    assert!((1..=2).contains(&marks), "{marks}");

    // The monitors list: a 24-hour bar and the uptime on the row, state first.
    b.goto(&s.url("/monitors")).await.unwrap();
    text_until(&b, "monitors-table", |t| t.contains("80.00 %")).await;
    let first = texts(&b, "#monitors-table thead th").await;
    assert_eq!(first[0], "State");
    let row = "#monitors-table tbody tr:first-child";
    // A mark per run of hours that went the same way: the hours without
    // checks are one, the hours with failures among passes another.
    assert!(count(&b, &format!("{row} svg.check-bar rect")).await <= 3);
    assert_eq!(
        count(&b, &format!("{row} svg.check-bar rect.none")).await,
        1
    );
    assert!(count(&b, &format!("{row} svg.check-bar rect.partial")).await >= 1);
    // (A title is not rendered text: read what tooltips would show.) The
    // ten failures are told, whichever hours they fell in.
    let tips = b
        .execute(
            &format!("return [...document.querySelectorAll('{row} svg.check-bar title')].map(t => t.textContent)"),
            vec![],
        )
        .await
        .unwrap();
    let mut failed = 0;
    for tip in tips.as_array().unwrap() {
        let tip = tip.as_str().unwrap();
        assert!(tip.contains(" UTC"), "{tip}");
        if let Some((_, counts)) = tip.split_once(": ") {
            if let Some((n, _)) = counts.split_once(" of ") {
                failed += n.parse::<u32>().unwrap();
            }
        }
    }
    assert_eq!(failed, 10, "{tips}");
    // Search narrows the list as one types, and the server does the same.
    b.find(Locator::Css("input[type=search]"))
        .await
        .unwrap()
        .send_keys("nothing-like-it")
        .await
        .unwrap();
    text_until(&b, "monitors-shown", |t| t == "0 of 1 shown").await;
    b.goto(&s.url("/monitors?q=ba")).await.unwrap();
    text_until(&b, "monitors-total", |t| t.starts_with("1 of 1")).await;
    screenshot(&b, "monitors-list.png").await;

    // The dashboard: sparklines on a labelled scale from zero; it refreshes
    // its regions in place (no navigation) and says when.
    b.goto(&s.url("/")).await.unwrap();
    text_until(&b, "instances-table", |t| t.contains("0–50 ms")).await;
    assert!(texts(&b, "#instances-table .scale")
        .await
        .contains(&"0–100 %".to_string()));
    let every = b
        .execute(
            "return document.querySelector('[data-refresh]').getAttribute('data-refresh')",
            vec![],
        )
        .await
        .unwrap();
    assert!(every.as_str().unwrap().parse::<u32>().unwrap() <= 30);
    b.execute(
        "window.stayedHere = true; document.getElementById('updated').textContent = 'old';",
        vec![],
    )
    .await
    .unwrap();
    b.execute_async(
        "const done = arguments[0]; window.agentry.refreshLive().then(() => done(true));",
        vec![],
    )
    .await
    .unwrap();
    let updated = element_text(&b, "updated").await;
    assert!(updated.starts_with("Updated just now"), "{updated}");
    let same = b
        .execute("return window.stayedHere === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        same,
        json!(true),
        "the page was reloaded rather than refreshed in place"
    );
    // Sorting by a column, by clicking its heading.
    click_heading(&b, "#instances-table", "Instance").await;
    let sorted = b
        .execute(
            "return document.querySelector('#instances-table th[aria-sort=ascending]').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(sorted, json!("Instance"));
    s.stop().await;
}

async fn click_heading(b: &fantoccini::Client, table: &str, name: &str) {
    for th in b
        .find_all(Locator::Css(&format!("{table} thead th")))
        .await
        .unwrap()
    {
        if th.text().await.unwrap() == name {
            th.click().await.unwrap();
            return;
        }
    }
    panic!("no heading {name} in {table}");
}
