//! Alerting end to end: real receivers on loopback (an SMTP server, Slack-,
//! PagerDuty- and webhook-format HTTP receivers), real rule evaluation on a
//! one-second interval (set by config), rules shortened through the API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::monitoring::{Reply as StubReply, Stub};
use crate::support::receivers::{HttpReceiver, Reply, SmtpServer};
use crate::support::*;

/// Evaluation every second and quick retries: durations shortened by
/// configuration, not by special code paths.
pub(crate) fn fast(c: &mut agentry::Config) {
    c.alerting.evaluation_interval_seconds = 1;
    c.alerting.retry_initial_ms = 100;
    c.alerting.retry_max_seconds = 1;
    c.alerting.delivery_timeout_ms = 2000;
}

/// Changes a seeded rule's expression (keeps the rest).
async fn set_expression(c: &reqwest::Client, csrf: &str, s: &TestServer, name: &str, expr: &str) {
    let mut rule = get_json(c, s, &format!("/api/v1/alert-rules/{name}")).await;
    let obj = rule.as_object_mut().unwrap();
    obj.remove("created_at");
    obj.remove("updated_at");
    obj.insert("expression".into(), json!(expr));
    put(c, csrf, s, &format!("/api/v1/alert-rules/{name}"), rule).await;
}

/// Waits until `GET path` satisfies `ok`, returning the last answer.
pub(crate) async fn until(
    c: &reqwest::Client,
    s: &TestServer,
    path: &str,
    secs: u64,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = get_json(c, s, path).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out on {path}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An agent allowed to report metrics, and its API key.
pub(crate) async fn reporter(
    s: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    name: &str,
) -> String {
    let id = create_agent(s, c, csrf, name, "worker").await;
    post(
        c,
        csrf,
        s,
        "/api/v1/role-assignments",
        json!({"subject": {"type": "agent", "id": id}, "role": "agent_service"}),
    )
    .await;
    create_agent_key(s, c, csrf, &id).await
}

pub(crate) async fn report(s: &TestServer, key: &str, name: &str, labels: Value, value: f64) {
    let res = client()
        .post(s.url("/api/v1/metrics"))
        .bearer_auth(key)
        .json(
            &json!({"metrics": [{"name": name, "value": value, "labels": labels,
            "timestamp": agentry::timefmt::rfc3339(agentry::db::now_ms())}]}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

pub(crate) async fn webhook_channel(
    c: &reqwest::Client,
    csrf: &str,
    s: &TestServer,
    name: &str,
    url: &str,
) -> Value {
    post(
        c,
        csrf,
        s,
        "/api/v1/channels",
        json!({"name": name, "type": "webhook", "settings": {"url": url, "secret": "a webhook signing secret"}}),
    )
    .await
}

#[actix_web::test]
async fn agent_down_reaches_email_slack_and_pagerduty_then_resolves() {
    let s = TestServer::start_with(fast).await;
    let (c, csrf) = admin(&s).await;
    let smtp = SmtpServer::start();
    let slack = HttpReceiver::start().await;
    let pd = HttpReceiver::start().await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/channels",
        json!({"name": "email", "type": "email", "settings": {
        "smtp_host": smtp.host(), "smtp_port": smtp.port(), "tls": "none",
        "from": "agentry@example.com", "to": ["oncall@example.com"]}}),
    )
    .await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/channels",
        json!({"name": "slack", "type": "slack",
        "settings": {"url": slack.url("/services/T000/B000/XXXX")}}),
    )
    .await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/channels",
        json!({"name": "pagerduty", "type": "pagerduty",
        "settings": {"routing_key": "R0UT1NGKEY", "url": pd.url("/v2/enqueue")}}),
    )
    .await;
    // The seeded rule, with its duration shortened from 2 minutes.
    set_expression(
        &c,
        &csrf,
        &s,
        "agent_down",
        "agent_health == 'unhealthy' for 2s",
    )
    .await;

    let stub = Stub::start(StubReply(500, "down", 0)).await;
    let agent = create_agent(&s, &c, &csrf, "planner", "planner").await;
    crate::monitoring::create(
        &c,
        &csrf,
        &s,
        json!({"agent_id": agent, "name": "inst-1", "kind": "http",
        "url": stub.url, "interval_seconds": 5, "timeout_ms": 1000,
        "failure_threshold": 1, "success_threshold": 1}),
    )
    .await;

    let mail = smtp.wait_for(1, Duration::from_secs(30)).await;
    let subject = mail[0].header("subject").unwrap();
    assert!(
        subject.contains("[FIRING:critical] agent_down planner/inst-1"),
        "{subject}"
    );
    let body = mail[0].body_text();
    assert!(
        body.contains("Agent planner instance inst-1 is unhealthy"),
        "{body}"
    );
    let alerts = get_json(&c, &s, "/api/v1/alerts?state=firing").await;
    let alert = &items(&alerts)[0];
    assert_eq!(alert["rule"], "agent_down");
    assert_eq!(alert["labels"]["instance"], "inst-1");
    // Fired no earlier than 2 s after it started pending.
    let since = agentry::timefmt::parse_rfc3339(alert["active_since"].as_str().unwrap()).unwrap();
    let fired = agentry::timefmt::parse_rfc3339(alert["fired_at"].as_str().unwrap()).unwrap();
    assert!(fired - since >= 2000, "fired after {} ms", fired - since);
    let fingerprint = alert["fingerprint"].as_str().unwrap().to_string();

    let got = slack.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].json()["text"].as_str().unwrap().contains("[FIRING]"));
    let got = pd.wait_for(1, Duration::from_secs(10)).await;
    let trigger = got[0].json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], fingerprint.as_str());
    assert_eq!(trigger["payload"]["severity"], "critical");

    // The instance recovers: everyone told it fired is told it resolved.
    stub_recovers(&stub);
    let got = pd.wait_for(2, Duration::from_secs(30)).await;
    let resolve = got[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], fingerprint.as_str());
    let got = slack.wait_for(2, Duration::from_secs(10)).await;
    assert!(got[1].json()["text"]
        .as_str()
        .unwrap()
        .contains("[RESOLVED]"));
    let mail = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(mail[1].header("subject").unwrap().contains("[RESOLVED]"));
    // Each notification its own idempotency key.
    assert_ne!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );

    let detail = get_json(
        &c,
        &s,
        &format!("/api/v1/alerts/{}", alert["id"].as_str().unwrap()),
    )
    .await;
    let kinds: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(&kinds[..2], &["pending", "firing"], "{kinds:?}");
    assert!(kinds.contains(&"resolved"), "{kinds:?}");
    let log = get_json(
        &c,
        &s,
        &format!(
            "/api/v1/notifications?alert_id={}",
            alert["id"].as_str().unwrap()
        ),
    )
    .await;
    assert!(
        items(&log).iter().all(|n| n["status"] == "delivered"),
        "{log}"
    );
    assert_eq!(items(&log).len(), 6, "3 firing + 3 resolved: {log}");
}

fn stub_recovers(stub: &Stub) {
    stub.set(StubReply(200, "ok", 0));
}

#[actix_web::test]
async fn an_acknowledged_alert_stops_escalating() {
    let s = TestServer::start_with(fast).await;
    let (c, csrf) = admin(&s).await;
    let first = HttpReceiver::start().await;
    let second = HttpReceiver::start().await;
    webhook_channel(&c, &csrf, &s, "first-line", &first.url("/hook")).await;
    webhook_channel(&c, &csrf, &s, "second-line", &second.url("/hook")).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/escalation-policies",
        json!({"name": "quick",
        "steps": [{"after_seconds": 0, "channels": ["@rule"]},
                  {"after_seconds": 4, "channels": ["second-line"]}],
        "repeat_seconds": 60}),
    )
    .await;
    let key = reporter(&s, &c, &csrf, "queue-worker").await;
    report(&s, &key, "queue_depth", json!({"queue": "ingest"}), 50.0).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/alert-rules",
        json!({"name": "queue_backlog",
        "expression": "queue_depth > 10", "severity": "major",
        "channels": ["first-line"], "escalation_policy": "quick",
        "annotations": {"summary": "{{ $labels.queue }} holds {{ $value }}"}}),
    )
    .await;

    let got = first.wait_for(1, Duration::from_secs(15)).await;
    let body = got[0].json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(
        body["alerts"][0]["annotations"]["summary"],
        "ingest holds 50"
    );
    assert_eq!(body["alerts"][0]["labels"]["agent"], "queue-worker");
    let alerts = get_json(&c, &s, "/api/v1/alerts?state=firing").await;
    let id = items(&alerts)[0]["id"].as_str().unwrap().to_string();
    let acked = post(
        &c,
        &csrf,
        &s,
        &format!("/api/v1/alerts/{id}/ack"),
        json!({}),
    )
    .await;
    assert_eq!(acked["acknowledged_by"], "admin");
    // A second acknowledgement is a conflict, not a change.
    let res = c
        .post(s.url(&format!("/api/v1/alerts/{id}/ack")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    expect_problem(res, 409).await;

    // The first line hears of the acknowledgement; the second step (due
    // 4 s after firing) never runs.
    let got = first.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[1].json()["alerts"][0]["annotations"]["acknowledged"],
        "true"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        second.requests().is_empty(),
        "escalated after acknowledgement"
    );
    assert_eq!(first.requests().len(), 2);
    let detail = get_json(&c, &s, &format!("/api/v1/alerts/{id}")).await;
    let steps = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .count();
    assert_eq!(steps, 1, "{detail}");
}

#[actix_web::test]
async fn a_silenced_alert_is_not_notified_but_its_resolution_is() {
    let s = TestServer::start_with(fast).await;
    let (c, csrf) = admin(&s).await;
    let hook = HttpReceiver::start().await;
    webhook_channel(&c, &csrf, &s, "ops", &hook.url("/hook")).await;
    let key = reporter(&s, &c, &csrf, "shard-worker").await;
    report(&s, &key, "lag_seconds", json!({"shard": "a"}), 100.0).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/alert-rules",
        json!({"name": "shard_lag",
        "expression": "lag_seconds > 30", "severity": "warning", "channels": ["ops"]}),
    )
    .await;
    let got = hook.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["alerts"][0]["labels"]["shard"], "a");

    // Silence the rule; a second shard starts lagging while it holds.
    let ends = agentry::timefmt::rfc3339(agentry::db::now_ms() + 3_600_000);
    let silence = post(
        &c,
        &csrf,
        &s,
        "/api/v1/silences",
        json!({
        "matchers": [{"name": "alertname", "op": "=", "value": "shard_lag"}],
        "ends_at": ends, "comment": "shard migration"}),
    )
    .await;
    assert_eq!(silence["created_by"], "admin");
    assert_eq!(silence["status"], "active");
    report(&s, &key, "lag_seconds", json!({"shard": "b"}), 100.0).await;
    let alerts = until(&c, &s, "/api/v1/alerts?state=firing", 15, |v| {
        items(v).len() == 2
    })
    .await;
    let b = items(&alerts)
        .iter()
        .find(|a| a["labels"]["shard"] == "b")
        .unwrap()
        .clone();
    until(
        &c,
        &s,
        &format!("/api/v1/alerts/{}", b["id"].as_str().unwrap()),
        10,
        |v| {
            v["suppressed_by"]
                .as_str()
                .is_some_and(|x| x.starts_with("silence:"))
        },
    )
    .await;

    // Shard a recovers while silenced: its resolution is still sent.
    report(&s, &key, "lag_seconds", json!({"shard": "a"}), 1.0).await;
    let got = hook.wait_for(2, Duration::from_secs(15)).await;
    let resolved = got[1].json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["labels"]["shard"], "a");
    // Shard b was never told, so its resolution goes nowhere either.
    report(&s, &key, "lag_seconds", json!({"shard": "b"}), 1.0).await;
    until(&c, &s, "/api/v1/alerts?state=firing", 15, |v| {
        items(v).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.requests().len(), 2, "the silenced alert was notified");
}

#[actix_web::test]
async fn eleven_failed_logins_in_a_minute_fire_security_breach() {
    let s = TestServer::start_with(|c| {
        fast(c);
        c.login.rate_limit_per_minute = 100;
    })
    .await;
    let (c, csrf) = admin(&s).await;
    let team = HttpReceiver::start().await;
    webhook_channel(&c, &csrf, &s, "security_team", &team.url("/security")).await;
    for i in 0..10 {
        let res = post_login(&s, &client(), &format!("intruder{i}"), "wrong password").await;
        assert_ne!(res.status(), 303);
    }
    // Ten is not more than ten.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(team.requests().is_empty(), "fired at ten attempts");
    let res = post_login(&s, &client(), "intruder10", "wrong password").await;
    assert_ne!(res.status(), 303);
    let got = team.wait_for(1, Duration::from_secs(15)).await;
    let body = got[0].json();
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "security_breach");
    assert_eq!(body["alerts"][0]["labels"]["severity"], "critical");
    assert!(
        body["alerts"][0]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("11 failed"),
        "{body}"
    );
}

#[actix_web::test]
async fn a_receiver_that_is_down_gets_the_notification_when_it_returns() {
    let s = TestServer::start_with(fast).await;
    let (c, csrf) = admin(&s).await;
    let mut hook = HttpReceiver::start().await;
    webhook_channel(&c, &csrf, &s, "ops", &hook.url("/hook")).await;
    hook.stop().await;
    let key = reporter(&s, &c, &csrf, "flaky").await;
    report(&s, &key, "errors_total", json!({}), 5.0).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/alert-rules",
        json!({"name": "errors",
        "expression": "errors_total > 1", "severity": "minor", "channels": ["ops"]}),
    )
    .await;
    // Attempts pile up with growing waits while the receiver is down.
    let log = until(&c, &s, "/api/v1/notifications", 20, |v| {
        items(v)
            .first()
            .is_some_and(|n| n["attempts"].as_i64().unwrap() >= 3)
    })
    .await;
    let n = &items(&log)[0];
    assert_eq!(n["status"], "pending");
    assert!(
        n["last_error"].as_str().unwrap().contains("connect")
            || n["last_error"].as_str().unwrap().contains("refused"),
        "{n}"
    );
    hook.restart().await;
    let got = hook.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].header("idempotency-key"), n["id"].as_str());
    until(&c, &s, "/api/v1/notifications", 10, |v| {
        items(v)[0]["status"] == "delivered"
    })
    .await;

    // A 500 is retried too; a 400 fails at once and is shown as failed.
    hook.set_reply(Reply::status(400).body("bad payload"));
    let channel = get_json(&c, &s, "/api/v1/channels").await;
    let id = items(&channel)[0]["id"].as_str().unwrap().to_string();
    let test = post(
        &c,
        &csrf,
        &s,
        &format!("/api/v1/channels/{id}/test"),
        json!({}),
    )
    .await;
    assert_eq!(test["status"], "failed");
    assert!(
        test["last_error"].as_str().unwrap().contains("400"),
        "{test}"
    );
    let failed = get_json(&c, &s, "/api/v1/notifications?status=failed").await;
    assert_eq!(items(&failed).len(), 1);
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("agentry_notifications{status=\"failed\"} 1"),
        "{metrics}"
    );
}

/// Starts the real binary on `port` over `dir` with fast alerting.
fn spawn_server(dir: &std::path::Path, port: u16) -> std::process::Child {
    spawn_agentry(
        dir,
        port,
        &[
            ("AGENTRY_ALERTING__EVALUATION_INTERVAL_SECONDS", "1"),
            ("AGENTRY_ALERTING__RETRY_INITIAL_MS", "100"),
            ("AGENTRY_ALERTING__RETRY_MAX_SECONDS", "1"),
        ],
    )
}

/// `kill -9` while deliveries are in flight: after a restart every queued
/// notification arrives; the ones that were cut off arrive again with the
/// same idempotency key.
#[actix_web::test]
async fn notifications_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let hook = HttpReceiver::start().await;
    // Slow answers keep the first attempts in flight when the process dies.
    hook.set_reply(Reply::status(200).delay(Duration::from_secs(5)));
    let mut child = spawn_server(dir.path(), port);
    wait_ready(&base).await;
    let c = client();
    let csrf = login_at(&base, &c, "admin", ADMIN_PASSWORD).await;
    let call = |path: &str| format!("{base}{path}");
    let res = c
        .post(call("/api/v1/channels"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "ops", "type": "webhook", "settings": {"url": hook.url("/hook")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let agent: Value = c
        .post(call("/api/v1/agents"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "batch", "agent_type": "worker"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = agent["id"].as_str().unwrap();
    let res = c
        .post(call("/api/v1/role-assignments"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"subject": {"type": "agent", "id": id}, "role": "agent_service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let key: Value = c
        .post(call(&format!("/api/v1/agents/{id}/keys")))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let now = agentry::timefmt::rfc3339(agentry::db::now_ms());
    let samples: Vec<Value> = (0..3)
        .map(|i| json!({"name": "backlog", "value": 100, "labels": {"job": format!("job-{i}")}, "timestamp": now}))
        .collect();
    let res = client()
        .post(call("/api/v1/metrics"))
        .bearer_auth(&key)
        .json(&json!({"metrics": samples}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let res = c.post(call("/api/v1/alert-rules")).header("x-csrf-token", &csrf)
        .json(&json!({"name": "backlog", "expression": "backlog > 10", "severity": "minor", "channels": ["ops"]}))
        .send().await.unwrap();
    assert_eq!(res.status(), 201);

    hook.wait_for(3, Duration::from_secs(20)).await;
    std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let before: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(before.len(), 3);

    hook.set_reply(Reply::status(200));
    let mut child = spawn_server(dir.path(), port);
    wait_ready(&base).await;
    // The session survives the restart (sessions are stored).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let log = loop {
        let v: Value = c
            .get(call("/api/v1/notifications"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if items(&v).len() == 3 && items(&v).iter().all(|n| n["status"] == "delivered") {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered after restart: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ids: std::collections::BTreeSet<String> = items(&log)
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let got = hook.requests();
    let keys: std::collections::BTreeSet<String> = got
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(keys, ids, "every notification arrived, under its own key");
    assert_eq!(got.len(), 6, "each cut-off attempt was repeated once");
    for k in &before {
        let same: Vec<_> = got
            .iter()
            .filter(|r| r.header("idempotency-key") == Some(k.as_str()))
            .collect();
        assert_eq!(same.len(), 2);
        assert_eq!(
            same[0].body, same[1].body,
            "a repeat carries the same payload"
        );
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[actix_web::test]
async fn seeds_validation_and_secrets() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let rules = get_json(&c, &s, "/api/v1/alert-rules").await;
    let names: Vec<&str> = items(&rules)
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "agent_down",
            "high_error_rate",
            "mcp_tool_errors",
            "resource_exhaustion",
            "security_breach",
            "workflow_failure"
        ]
    );
    // The gateway's example rule is seeded disabled, and parses.
    let mcp = get_json(&c, &s, "/api/v1/alert-rules/mcp_tool_errors").await;
    assert_eq!(mcp["enabled"], false, "{mcp}");
    assert_eq!(mcp["expression"], "mcp_tool_error_rate > 5% for 5 minutes");
    let breach = get_json(&c, &s, "/api/v1/alert-rules/security_breach").await;
    assert_eq!(
        breach["expression"],
        "failed_auth_attempts > 10 in 1 minute"
    );
    assert_eq!(
        breach["channels"],
        json!(["slack", "email", "pagerduty", "security_team"])
    );
    assert_eq!(breach["escalation_policy"], "immediate");
    let policies = get_json(&c, &s, "/api/v1/escalation-policies").await;
    let names: Vec<&str> = items(&policies)
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["immediate", "standard"]);
    assert_eq!(items(&policies)[0]["repeat_seconds"], 300);

    let send = |path: &'static str, body: Value| {
        let c = c.clone();
        let csrf = csrf.clone();
        let url = s.url(path);
        async move {
            c.post(url)
                .header("x-csrf-token", csrf)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // A parse error names the column.
    let p = expect_problem(
        send(
            "/api/v1/alert-rules",
            json!({"name": "typo", "expression": "eror_rate > 5%", "severity": "major"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        p["errors"]["expression"], "column 1: unknown metric \"eror_rate\"",
        "{p}"
    );
    let p = expect_problem(
        send(
            "/api/v1/alert-rules",
            json!({"name": "bad", "expression": "(error_rate > 5%", "severity": "urgent",
            "escalation_policy": "nope", "labels": {"alertname": "x"}}),
        )
        .await,
        422,
    )
    .await;
    for field in [
        "expression",
        "severity",
        "escalation_policy",
        "labels.alertname",
    ] {
        assert!(p["errors"][field].is_string(), "{field}: {p}");
    }
    expect_problem(send("/api/v1/alert-rules", json!({"name": "x", "expression": "error_rate > 1", "severity": "info", "colour": "red"})).await, 422).await;
    let p = expect_problem(
        send(
            "/api/v1/alert-rules",
            json!({"name": "agent_down", "expression": "error_rate > 1", "severity": "info"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(p["code"], "conflict");
    // Preview: errors and matches, nothing saved.
    let p = expect_problem(
        send(
            "/api/v1/alert-rules/preview",
            json!({"expression": "error_rate > 5 junk"}),
        )
        .await,
        422,
    )
    .await;
    assert!(
        p["errors"]["expression"]
            .as_str()
            .unwrap()
            .starts_with("column 16:"),
        "{p}"
    );
    let res = send(
        "/api/v1/alert-rules/preview",
        json!({"expression": "failed_auth_attempts >= 0 in 5m"}),
    )
    .await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["matches"].as_array().unwrap().len(), 1, "{v}");

    // Silences need matchers that name something, a comment and a future end.
    let p = expect_problem(
        send(
            "/api/v1/silences",
            json!({"matchers": [], "ends_at": "2020-01-01T00:00:00Z", "comment": ""}),
        )
        .await,
        422,
    )
    .await;
    for field in ["matchers", "ends_at", "comment"] {
        assert!(p["errors"][field].is_string(), "{field}: {p}");
    }
    let p = expect_problem(
        send(
            "/api/v1/silences",
            json!({"matchers": [{"name": "agent", "op": "=~", "value": "(unclosed"}],
        "ends_at": agentry::timefmt::rfc3339(agentry::db::now_ms() + 60_000), "comment": "x"}),
        )
        .await,
        422,
    )
    .await;
    assert!(p["errors"]["matchers[0]"].is_string(), "{p}");

    // Channels: every bad field named; secrets never come back.
    let p = expect_problem(send("/api/v1/channels", json!({"name": "Bad Name", "type": "email", "settings": {
        "smtp_host": "", "smtp_port": 0, "tls": "none", "username": "u", "from": "nobody", "to": []}})).await, 422).await;
    for field in [
        "name",
        "settings.smtp_host",
        "settings.smtp_port",
        "settings.from",
        "settings.to",
        "settings.tls",
    ] {
        assert!(p["errors"][field].is_string(), "{field}: {p}");
    }
    let created = send(
        "/api/v1/channels",
        json!({"name": "slack", "type": "slack",
        "settings": {"url": "https://hooks.slack.example/services/T0/B0/SECRETTOKEN"}}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let text = created.text().await.unwrap();
    assert!(!text.contains("SECRETTOKEN"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["secrets_set"], json!(["url"]));
    let listed = c
        .get(s.url("/api/v1/channels"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("SECRETTOKEN"));
    // Nor are they stored in clear.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let stored: String = conn
        .query_row("SELECT settings || secrets FROM channels", [], |r| r.get(0))
        .unwrap();
    assert!(!stored.contains("SECRETTOKEN"));
    let audit: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE details LIKE '%SECRETTOKEN%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 0);
    // An update that leaves the secret out keeps it.
    let id = v["id"].as_str().unwrap();
    let res = c
        .put(s.url(&format!("/api/v1/channels/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "slack-ops", "type": "slack", "settings": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["secrets_set"], json!(["url"]));

    // Without alert:read, 403.
    create_user(&s, &c, &csrf, "viewer", "viewer password 123").await;
    let vc = client();
    login(&s, &vc, "viewer", "viewer password 123").await;
    expect_problem(vc.get(s.url("/api/v1/alerts")).send().await.unwrap(), 403).await;
}

/// A `quarantine_agent` step disables the agent the alert names and
/// revokes its keys, audited as done by alerting; an admin re-enables it.
#[actix_web::test]
async fn an_escalation_step_quarantines_the_agent() {
    let s = TestServer::start_with(fast).await;
    let (c, csrf) = admin(&s).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/escalation-policies",
        json!({"name": "contain",
        "description": "cut the agent off at once",
        "steps": [{"after_seconds": 0, "channels": [], "quarantine_agent": true}]}),
    )
    .await;
    let key = reporter(&s, &c, &csrf, "rogue").await;
    report(&s, &key, "exfiltration_bytes", json!({}), 1e9).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/alert-rules",
        json!({"name": "exfiltration",
        "expression": "exfiltration_bytes > 1e6", "severity": "critical",
        "escalation_policy": "contain"}),
    )
    .await;
    let agents = until(&c, &s, "/api/v1/agents", 15, |v| {
        items(v)
            .iter()
            .any(|a| a["name"] == "rogue" && a["enabled"] == false)
    })
    .await;
    let rogue = items(&agents)
        .iter()
        .find(|a| a["name"] == "rogue")
        .unwrap()
        .clone();
    // Its key no longer works.
    assert_eq!(me_with_bearer(&s, &client(), &key).await, 401);
    let audit = get_json(&c, &s, "/api/v1/audit?action=agent.quarantine").await;
    let rec = &items(&audit)[0];
    assert_eq!(rec["actor_name"], "alerting", "{rec}");
    let alerts = get_json(&c, &s, "/api/v1/alerts?state=firing").await;
    let id = items(&alerts)[0]["id"].as_str().unwrap();
    let detail = get_json(&c, &s, &format!("/api/v1/alerts/{id}")).await;
    assert!(
        detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "quarantine"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("agent rogue quarantined")),
        "{detail}"
    );
    // Reversible by an admin.
    let res = c
        .patch(s.url(&format!("/api/v1/agents/{}", rogue["id"].as_str().unwrap())))
        .header("x-csrf-token", &csrf)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// An alert that is no longer active shows no current value and promises
/// no notification, whatever its row still holds.
#[tokio::test]
async fn an_inactive_alert_shows_no_stale_value_or_next_notification() {
    let s = TestServer::start().await;
    let (c, _) = admin(&s).await;
    let now = agentry::db::now_ms();
    {
        let conn = rusqlite::Connection::open(s.db_path()).unwrap();
        for (id, state) in [("a-inactive", "inactive"), ("a-resolved", "resolved")] {
            conn.execute(
                "INSERT INTO alerts (id, rule, fingerprint, labels, annotations, severity, state, value,
                 active_since, resolved_at, last_eval_at, next_notify_at, suppressed_by, updated_at)
                 VALUES (?1, 'agent_down', ?1, '{\"alertname\":\"agent_down\",\"agent\":\"planner\"}', '{}',
                 'critical', ?2, 'unhealthy', ?3, ?3, ?3, ?4, 'silence:gone', ?3)",
                rusqlite::params![id, state, now - 60_000, now + 60_000],
            )
            .unwrap();
        }
    }
    for id in ["a-inactive", "a-resolved"] {
        let page = get_text(&c, &s, &format!("/alerts/{id}")).await;
        assert!(page.contains("id=\"alert-state\""), "{page}");
        for absent in [
            "id=\"alert-value\"",
            "unhealthy",
            "id=\"next-notification\"",
            "muted-by",
        ] {
            assert!(!page.contains(absent), "{id} shows {absent}");
        }
    }
    let list = get_text(&c, &s, "/alerts?state=all").await;
    assert!(list.contains("agent_down"), "{list}");
    assert!(
        !list.contains("unhealthy") && !list.contains("muted-by"),
        "{list}"
    );
    s.stop().await;
}
