//! Every page in headless Chromium at desktop and phone size, in the light
//! and the dark theme: no horizontal page overflow at 390×844, the phone
//! menu opens and reaches the navigation, a dark background when the system
//! prefers dark, form borders with ≥ 3:1 contrast, relative times with the
//! exact UTC time on hover. A screenshot of each for people to look at.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{browser_with, screenshot, sign_in, start_driver};
use crate::support::*;

/// What the walk visits: (screenshot name, path).
async fn populate(s: &TestServer) -> Vec<(String, String)> {
    let (c, csrf) = admin(s).await;
    let user = create_user(s, &c, &csrf, "dana", "a long enough password 1").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let agent = create_agent(s, &c, &csrf, "planner-eu-west-1-production", "planner").await;
    create_agent_key(s, &c, &csrf, &agent).await;
    let inst = post(
        &c,
        &csrf,
        s,
        "/api/v1/instances",
        json!({"agent_id": agent, "name": "planner-eu-west-1", "kind": "http",
               "url": "http://127.0.0.1:9/health", "enabled": false}),
    )
    .await;
    let inst_id = inst["id"].as_str().unwrap().to_string();
    let now = agentry::db::now_ms();
    {
        let conn = rusqlite::Connection::open(s.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        for k in 0..40i64 {
            conn.execute(
                "INSERT INTO check_results (instance_id, at, ok, latency_ms, error) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![inst_id, now - k * 60_000, k % 7 != 3, 20 + (k % 5) * 9,
                    if k % 7 == 3 { Some("connection refused") } else { None }],
            )
            .unwrap();
        }
    }
    let mcp = post(
        &c,
        &csrf,
        s,
        "/api/v1/mcp-servers",
        json!({"name": "tickets", "upstream_url": "http://10.1.2.3:9000/mcp"}),
    )
    .await;
    let mcp_id = mcp["id"].as_str().unwrap().to_string();
    post(
        &c,
        &csrf,
        s,
        "/api/v1/metrics",
        json!({"metrics": [{"name": "error_rate", "value": 0.5,
            "labels": {"agent": "planner", "instance": "eu-1"}}]}),
    )
    .await;
    post(
        &c,
        &csrf,
        s,
        "/api/v1/channels",
        json!({"name": "ops-webhook", "type": "webhook",
               "settings": {"url": "https://hooks.example.com/agentry"}}),
    )
    .await;
    post(
        &c,
        &csrf,
        s,
        "/api/v1/alert-rules",
        json!({"name": "planner_errors", "expression": "error_rate{agent=\"planner\"} > 0.2",
               "severity": "major", "channels": ["ops-webhook"],
               "annotations": {"summary": "Error rate of {{ $labels.agent }} is {{ $value }}"}}),
    )
    .await;
    let ends = agentry::timefmt::rfc3339(now + 3_600_000);
    let silence = post(
        &c,
        &csrf,
        s,
        "/api/v1/silences",
        json!({"matchers": [{"name": "alertname", "op": "=", "value": "shard_lag"}],
               "ends_at": ends, "comment": "shard migration"}),
    )
    .await;
    let silence_id = silence["id"].as_str().unwrap().to_string();
    // The alert fires within a few evaluations.
    let alert_id = firing_alerts(&c, s, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A trace with a long-named, nested, failed span, and a long log line.
    let t = "5b8efff798038103d269b633813fc60c";
    let start = (now as i128 - 60_000) * 1_000_000;
    let span = |id: &str, parent: &str, name: &str, code: i64| {
        json!({"traceId": t, "spanId": id, "parentSpanId": parent, "name": name, "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 80_000_000).to_string(),
            "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": name}}],
            "status": {"code": code}})
    };
    post(&c, &csrf, s, "/v1/traces", json!({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "planner"}}]}, "scopeSpans": [{"spans": [
        span("0000000000000001", "", "plan_a_very_long_workflow_name_that_does_not_fit", 1),
        span("0000000000000002", "0000000000000001", "tools/call search_the_entire_knowledge_base", 0),
        span("0000000000000003", "0000000000000002", "a_deeply_nested_call", 2)]}]}]})).await;
    post(&c, &csrf, s, "/v1/logs", json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "planner"}}]}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": start.to_string(), "severityNumber": 17, "traceId": t,
         "body": {"stringValue": "connection refused: ".repeat(12)}}]}]}]})).await;
    // A call waiting for approval, with long arguments.
    let rule = post(
        &c,
        &csrf,
        s,
        "/api/v1/approval-rules",
        json!({"name": "workflow-deletes", "server": "workflows", "tools": "delete_*",
               "approver_role": "system_admin"}),
    )
    .await;
    let rule_id = rule["id"].as_str().unwrap().to_string();
    let asker = agentry::identity::Principal {
        kind: agentry::identity::PrincipalKind::Agent,
        id: agent.clone(),
        name: "planner".into(),
    };
    let asked = crate::approvals::ask(
        s,
        asker,
        json!({"workflow": "nightly-".repeat(20),
        "steps": [{"name": "drop", "target": "a-very-long-table-name-".repeat(6)}]}),
        &rule_id,
    )
    .await;
    let agentry::approvals::requests::Asked::Wait { approval_id, .. } = asked else {
        panic!("a pending request");
    };
    let audit: Value = get_json(&c, s, "/api/v1/audit?limit=1").await;
    let seq = audit["items"][0]["seq"].as_i64().unwrap();
    [
        ("dashboard", "/".to_string()),
        ("users", "/users".into()),
        ("user", format!("/users/{user_id}")),
        ("agents", "/agents".into()),
        ("agent", format!("/agents/{agent}")),
        ("roles", "/roles".into()),
        ("role", "/roles/system_admin".into()),
        ("access", "/access".into()),
        ("mcp-servers", "/mcp-servers".into()),
        ("mcp-server", format!("/mcp-servers/{mcp_id}")),
        ("oauth-clients", "/oauth-clients".into()),
        ("monitors", "/monitors".into()),
        ("monitor", format!("/monitors/{inst_id}")),
        ("alerts", "/alerts".into()),
        ("alert", format!("/alerts/{alert_id}")),
        ("alert-rules", "/alert-rules".into()),
        ("alert-rule", "/alert-rules/planner_errors".into()),
        ("alert-rule-new", "/alert-rules/new".into()),
        ("silences", "/silences".into()),
        ("silence", format!("/silences/{silence_id}")),
        ("channels", "/channels".into()),
        ("channel-new", "/channels/new".into()),
        ("escalation-policies", "/escalation-policies".into()),
        ("notifications", "/notifications".into()),
        ("signing-keys", "/signing-keys".into()),
        ("encryption-keys", "/encryption-keys".into()),
        ("audit", "/audit".into()),
        (
            "series",
            "/series?name=error_rate&labels=agent%3D%22planner%22&threshold=0.2".into(),
        ),
        ("audit-record", format!("/audit/{seq}")),
        ("connected-apps", "/account/apps".into()),
        ("traces", "/traces".into()),
        ("trace", format!("/traces/{t}")),
        ("logs", "/logs".into()),
        ("account", "/account".into()),
        ("add-factor", "/account/second-factor".into()),
        ("approvals", "/approvals".into()),
        ("approval", format!("/approvals/{approval_id}")),
        ("approval-rules", "/approval-rules".into()),
        ("approval-rule", format!("/approval-rules/{rule_id}")),
        ("approval-rule-new", "/approval-rules/new".into()),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p))
    .collect()
}

async fn eval(b: &fantoccini::Client, js: &str) -> Value {
    b.execute(js, vec![]).await.unwrap()
}

/// Walks every page in one theme at both sizes, checking what each size
/// promises, and returns the page background seen.
async fn walk(s: &TestServer, pages: &[(String, String)], theme: &str) -> String {
    let driver = start_driver().await;
    let mut args = vec!["--window-size=1280,900"];
    if theme == "dark" {
        args.push("--force-dark-mode");
    }
    let b = browser_with(&driver, &args).await;
    sign_in(&b, s).await;
    let dark = eval(
        &b,
        "return matchMedia('(prefers-color-scheme: dark)').matches",
    )
    .await;
    assert_eq!(dark, json!(theme == "dark"), "the emulated system theme");
    let background = eval(&b, "return getComputedStyle(document.body).backgroundColor").await;
    for (w, h, size) in [(1280u32, 900u32, "desktop"), (390, 844, "phone")] {
        b.set_window_size(w, h).await.unwrap();
        let inner = eval(&b, "return window.innerWidth").await;
        // Headless Chromium may keep a few pixels of window frame.
        assert!(inner.as_u64().unwrap() <= u64::from(w), "{inner}");
        for (name, path) in pages {
            b.goto(&s.url(path)).await.unwrap();
            b.wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("footer.footer"))
                .await
                .unwrap();
            let status = eval(&b, "return document.title").await;
            assert!(
                !status.as_str().unwrap().starts_with("Error"),
                "{path}: {status}"
            );
            let over = eval(
                &b,
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            )
            .await;
            assert!(
                over.as_i64().unwrap() <= 0,
                "{path} at {size}: the page is {over} px wider than the screen"
            );
            screenshot(&b, &format!("page-{name}-{size}-{theme}.png")).await;
        }
    }
    // On the phone the navigation is a menu that opens without JavaScript.
    b.goto(&s.url("/")).await.unwrap();
    let shown = "return getComputedStyle(document.querySelector('.topbar nav')).display";
    assert_eq!(eval(&b, shown).await, json!("none"));
    b.find(Locator::Css("label.nav-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_ne!(eval(&b, shown).await, json!("none"));
    screenshot(&b, &format!("menu-phone-{theme}.png")).await;
    b.find(Locator::LinkText("Monitors"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("monitors-table"))
        .await
        .unwrap();
    b.close().await.unwrap();
    background.as_str().unwrap().to_string()
}

/// WCAG relative luminance of a CSS `rgb(r, g, b)` colour.
fn luminance(css: &str) -> f64 {
    let n: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|v| v.trim().parse::<f64>().unwrap() / 255.0)
        .map(|c| {
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
        .collect();
    0.2126 * n[0] + 0.7152 * n[1] + 0.0722 * n[2]
}

fn contrast(a: &str, b: &str) -> f64 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[tokio::test]
async fn every_page_fits_a_phone_in_both_themes() {
    let s = TestServer::start_with(|c| c.alerting.evaluation_interval_seconds = 1).await;
    let pages = populate(&s).await;
    let light = walk(&s, &pages, "light").await;
    let dark = walk(&s, &pages, "dark").await;
    assert!(luminance(&light) > 0.8, "light background {light}");
    assert!(luminance(&dark) < 0.05, "dark background {dark}");
    s.stop().await;
}

#[tokio::test]
async fn forms_are_legible_and_times_are_relative_with_the_exact_time_on_hover() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_user(&s, &c, &csrf, "erin", "a long enough password 2").await;
    for theme in ["light", "dark"] {
        // A driver each: a profile keeps the session cookie.
        let driver = start_driver().await;
        let mut args = vec!["--window-size=1280,900"];
        if theme == "dark" {
            args.push("--force-dark-mode");
        }
        let b = browser_with(&driver, &args).await;
        sign_in(&b, &s).await;
        b.goto(&s.url("/users")).await.unwrap();
        let colours = eval(
            &b,
            "const i = document.querySelector('main input[type=text], main input[type=password]');
            const card = i.closest('.card') || document.body;
            return [getComputedStyle(i).borderTopColor, getComputedStyle(card).backgroundColor]",
        )
        .await;
        let (border, card) = (colours[0].as_str().unwrap(), colours[1].as_str().unwrap());
        let ratio = contrast(border, card);
        assert!(
            ratio >= 3.0,
            "{theme}: form border {border} on {card}: {ratio:.2}:1"
        );
        // The user created a moment ago: "just now", exact time in the title.
        let time = b.find(Locator::Css("#users-table time")).await.unwrap();
        let text = time.text().await.unwrap();
        let title = time.attr("title").await.unwrap().unwrap();
        assert!(text == "just now" || text.ends_with(" s ago"), "{text}");
        assert!(
            title.ends_with(" UTC") && title.starts_with("20"),
            "{title}"
        );
        b.close().await.unwrap();
    }
    s.stop().await;
}
