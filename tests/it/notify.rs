//! Notification delivery against real receivers on loopback: an SMTP
//! server and HTTP endpoints standing in for Slack, PagerDuty and a
//! webhook receiver.

use std::collections::BTreeMap;
use std::time::Duration;

use agentry::notify::{
    deliver, AlertView, EmailSettings, Kind, Message, Outcome, PagerdutySettings, Settings,
    SlackSettings, Tls, WebhookSettings,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::support::receivers::{HttpReceiver, Reply, SmtpServer};

const WAIT: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(5);

fn message(kind: Kind, id: &str) -> Message {
    let labels = BTreeMap::from([
        ("agent".to_string(), "planner".to_string()),
        ("instance".to_string(), "instance-1".to_string()),
        ("agent_type".to_string(), "planner".to_string()),
    ]);
    let annotations = BTreeMap::from([
        (
            "summary".to_string(),
            "Agent planner/instance-1 is down".to_string(),
        ),
        (
            "description".to_string(),
            "Health checks failed for 2 minutes.".to_string(),
        ),
    ]);
    Message {
        id: id.to_string(),
        kind,
        alert: AlertView {
            id: "alert-1".to_string(),
            rule: "agent_down".to_string(),
            fingerprint: "9f3c2a71d0b4e856".to_string(),
            severity: "critical".to_string(),
            labels,
            annotations,
            starts_at: "2025-11-24T16:00:00Z".to_string(),
            ends_at: (kind == Kind::Resolved).then(|| "2025-11-24T16:05:00Z".to_string()),
            value: Some("unhealthy".to_string()),
            url: "http://agentry.test/alerts/alert-1".to_string(),
        },
        external_url: "http://agentry.test".to_string(),
        sent_by: "agentry".to_string(),
    }
}

fn email_settings(smtp: &SmtpServer) -> Settings {
    Settings::Email(EmailSettings {
        smtp_host: smtp.host(),
        smtp_port: smtp.port(),
        tls: Tls::None,
        username: None,
        password: None,
        from: "Agentry <agentry@example.com>".to_string(),
        to: vec![
            "oncall@example.com".to_string(),
            "Security Team <security@example.com>".to_string(),
        ],
    })
}

/// The client the outbox delivers with, under the default outbound rules.
fn client() -> agentry::net::Outbound {
    agentry::notify::deliver::client(std::sync::Arc::default())
}

fn expect_retry(o: Outcome) -> String {
    match o {
        Outcome::Retry(e) => e,
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn expect_fail(o: Outcome) -> String {
    match o {
        Outcome::Fail(e) => e,
        other => panic!("expected Fail, got {other:?}"),
    }
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn email_is_delivered_with_a_stable_message_id() {
    let smtp = SmtpServer::start();
    let settings = email_settings(&smtp);
    let msg = message(Kind::Firing, "0198c0de-0000-7000-8000-000000000001");

    for _ in 0..2 {
        let o = deliver(&client(), &settings, "email", &msg, TIMEOUT).await;
        assert_eq!(o, Outcome::Delivered);
    }
    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2);

    let m = &mails[0];
    assert_eq!(m.from, "agentry@example.com");
    assert_eq!(m.to, ["oncall@example.com", "security@example.com"]);
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("[FIRING:critical] agent_down planner/instance-1")
    );
    assert_eq!(
        m.header("X-Agentry-Notification-Id").as_deref(),
        Some(msg.id.as_str())
    );
    let id = m.header("Message-ID").expect("a Message-ID");
    assert_eq!(id, format!("<{}@agentry>", msg.id));
    // A retry is recognisably the same message.
    assert_eq!(mails[1].header("Message-ID"), Some(id));

    let body = m.body_text();
    for want in [
        "Agent planner/instance-1 is down",
        "Health checks failed for 2 minutes.",
        "Severity: critical",
        "unhealthy",
        "instance=instance-1",
        "2025-11-24T16:00:00Z",
        "http://agentry.test/alerts/alert-1",
        &msg.id,
    ] {
        assert!(body.contains(want), "{want} missing from {body}");
    }

    let resolved = message(Kind::Resolved, "0198c0de-0000-7000-8000-000000000002");
    assert_eq!(
        deliver(&client(), &settings, "email", &resolved, TIMEOUT).await,
        Outcome::Delivered
    );
    let mails = smtp.wait_for(3, WAIT).await;
    assert_eq!(
        mails[2].header("Subject").as_deref(),
        Some("[RESOLVED] agent_down planner/instance-1")
    );
    assert!(mails[2].body_text().contains("2025-11-24T16:05:00Z"));
}

#[tokio::test]
async fn email_temporary_failure_is_retried_and_permanent_fails() {
    let smtp = SmtpServer::start();
    let settings = email_settings(&smtp);
    let msg = message(Kind::Firing, "n-smtp-temp");

    smtp.fail_with(Some((451, "4.7.1 Greylisted, try again later")));
    let e = expect_retry(deliver(&client(), &settings, "email", &msg, TIMEOUT).await);
    assert!(e.contains("451"), "{e}");
    assert_eq!(smtp.attempts(), 1);
    assert!(smtp.mails().is_empty());

    smtp.fail_with(None);
    assert_eq!(
        deliver(&client(), &settings, "email", &msg, TIMEOUT).await,
        Outcome::Delivered
    );
    assert_eq!(smtp.wait_for(1, WAIT).await.len(), 1);

    smtp.fail_with(Some((550, "5.1.1 Mailbox unavailable")));
    let e = expect_fail(deliver(&client(), &settings, "email", &msg, TIMEOUT).await);
    assert!(e.contains("550"), "{e}");
}

#[tokio::test]
async fn email_to_a_closed_port_is_retried() {
    let settings = Settings::Email(EmailSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: closed_port(),
        tls: Tls::None,
        username: None,
        password: None,
        from: "agentry@example.com".into(),
        to: vec!["oncall@example.com".into()],
    });
    let msg = Message::test("n-smtp-down", "email", "http://agentry.test");
    expect_retry(deliver(&client(), &settings, "email", &msg, TIMEOUT).await);
}

#[tokio::test]
async fn slack_gets_blocks_and_an_idempotency_key() {
    let rx = HttpReceiver::start().await;
    let url = rx.url("/services/T000/B000/XXXXSECRETXXXX");
    let settings = Settings::Slack(SlackSettings { url: url.clone() });
    let http = client();

    let msg = message(Kind::Firing, "n-slack-1");
    assert_eq!(
        deliver(&http, &settings, "slack", &msg, TIMEOUT).await,
        Outcome::Delivered
    );
    let ack = message(Kind::Acknowledged, "n-slack-2");
    assert_eq!(
        deliver(&http, &settings, "slack", &ack, TIMEOUT).await,
        Outcome::Delivered
    );
    let test = Message::test("n-slack-3", "slack", "http://agentry.test");
    assert_eq!(
        deliver(&http, &settings, "slack", &test, TIMEOUT).await,
        Outcome::Delivered
    );

    let got = rx.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/services/T000/B000/XXXXSECRETXXXX");
    assert_eq!(r.header("idempotency-key"), Some("n-slack-1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.header("user-agent").unwrap().starts_with("agentry/"),
        "{:?}",
        r.headers
    );
    let body = r.json();
    assert_eq!(
        body["text"],
        "[FIRING] agent_down (critical): Agent planner/instance-1 is down"
    );
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body.to_string().contains("n-slack-1"));
    assert!(got[1].json()["text"]
        .as_str()
        .unwrap()
        .starts_with("[ACKNOWLEDGED] "));
    assert!(got[2].json()["text"]
        .as_str()
        .unwrap()
        .starts_with("[TEST] "));
    assert_eq!(got[2].header("idempotency-key"), Some("n-slack-3"));
    // One client, one kept-alive connection.
    assert_eq!(rx.connections(), 1);
}

#[tokio::test]
async fn pagerduty_trigger_then_resolve_share_the_dedup_key() {
    let rx = HttpReceiver::start().await;
    rx.set_reply(Reply::status(202).body(
        r#"{"status":"success","message":"Event processed","dedup_key":"9f3c2a71d0b4e856"}"#,
    ));
    let settings = Settings::Pagerduty(PagerdutySettings {
        routing_key: "R0UT1NGKEY0000000000000000000000".into(),
        url: rx.url("/v2/enqueue"),
    });
    let http = client();

    for (kind, id) in [(Kind::Firing, "n-pd-1"), (Kind::Resolved, "n-pd-2")] {
        assert_eq!(
            deliver(&http, &settings, "pagerduty", &message(kind, id), TIMEOUT).await,
            Outcome::Delivered
        );
    }
    let test = Message::test("n-pd-3", "pagerduty", "http://agentry.test");
    assert_eq!(
        deliver(&http, &settings, "pagerduty", &test, TIMEOUT).await,
        Outcome::Delivered
    );

    let got = rx.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    let trigger = got[0].json();
    let resolve = got[1].json();
    assert_eq!(got[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(trigger["dedup_key"], "9f3c2a71d0b4e856");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "instance-1");
    assert_eq!(
        trigger["payload"]["custom_details"]["notification_id"],
        "n-pd-1"
    );
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert!(resolve.get("payload").is_none());
    assert_eq!(got[1].header("idempotency-key"), Some("n-pd-2"));
    // The test action opens (triggers) a clearly labelled test incident.
    let t = got[2].json();
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["payload"]["severity"], "info");
    assert!(t["payload"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("[TEST] "));
}

#[tokio::test]
async fn webhook_sends_a_signed_alertmanager_v4_body() {
    let rx = HttpReceiver::start().await;
    let secret = "a shared secret of some length";
    let settings = Settings::Webhook(WebhookSettings {
        url: rx.url("/hooks/alertmanager?team=ops"),
        secret: Some(secret.into()),
    });
    let msg = message(Kind::Firing, "n-hook-1");
    assert_eq!(
        deliver(&client(), &settings, "ops-hook", &msg, TIMEOUT).await,
        Outcome::Delivered
    );

    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.path, "/hooks/alertmanager?team=ops");
    assert_eq!(r.header("idempotency-key"), Some("n-hook-1"));

    // The receiver's side of the signature: HMAC over the raw body bytes.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.body);
    let sig = r.header("x-agentry-signature").expect("signed");
    let hex = sig.strip_prefix("sha256=").expect("sha256= prefix");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    mac.verify_slice(&bytes).expect("the signature verifies");

    let b = r.json();
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "ops-hook");
    assert_eq!(b["truncatedAlerts"], 0);
    assert_eq!(b["groupLabels"]["alertname"], "agent_down");
    assert_eq!(b["externalURL"], "http://agentry.test");
    assert_eq!(b["idempotencyKey"], "n-hook-1");
    assert!(b["groupKey"].is_string());
    assert_eq!(b["commonLabels"]["alertname"], "agent_down");
    let a = &b["alerts"][0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["instance"], "instance-1");
    assert_eq!(
        a["annotations"]["summary"],
        "Agent planner/instance-1 is down"
    );
    assert_eq!(a["startsAt"], "2025-11-24T16:00:00Z");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["generatorURL"], "http://agentry.test/alerts/alert-1");
    assert_eq!(a["fingerprint"], "9f3c2a71d0b4e856");

    // Without a secret: no signature header.
    let open = Settings::Webhook(WebhookSettings {
        url: rx.url("/open"),
        secret: None,
    });
    let resolved = message(Kind::Resolved, "n-hook-2");
    assert_eq!(
        deliver(&client(), &open, "open", &resolved, TIMEOUT).await,
        Outcome::Delivered
    );
    let got = rx.wait_for(2, WAIT).await;
    assert!(got[1].header("x-agentry-signature").is_none());
    assert_eq!(got[1].json()["status"], "resolved");
    assert_eq!(got[1].json()["alerts"][0]["endsAt"], "2025-11-24T16:05:00Z");
}

#[tokio::test]
async fn http_statuses_decide_retry_or_fail_without_leaking_the_url() {
    let mut rx = HttpReceiver::start().await;
    let url = rx.url("/services/T111/B111/TOPSECRETTOKEN");
    let settings = Settings::Slack(SlackSettings { url: url.clone() });
    let http = client();
    let msg = message(Kind::Firing, "n-status");
    let no_leak = |e: &str| {
        assert!(!e.contains(&url), "{e}");
        assert!(!e.contains("TOPSECRETTOKEN"), "{e}");
        assert!(!e.contains("/services/"), "{e}");
    };

    rx.set_reply(Reply::status(500).body("rollup_error"));
    let e = expect_retry(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);
    assert!(e.contains("500"), "{e}");
    no_leak(&e);

    rx.set_reply(Reply::status(429).header("retry-after", "30"));
    let e = expect_retry(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);
    assert!(e.contains("429") && e.contains("30"), "{e}");
    no_leak(&e);

    rx.set_status(408);
    expect_retry(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);
    rx.set_status(503);
    expect_retry(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);

    rx.set_reply(Reply::status(400).body(&format!("invalid_payload {}", "x".repeat(500))));
    let e = expect_fail(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);
    assert!(e.contains("400") && e.contains("invalid_payload"), "{e}");
    assert!(e.contains("refused"), "{e}");
    assert!(
        !e.contains(&"x".repeat(201)),
        "at most 200 characters of body: {e}"
    );
    no_leak(&e);

    rx.set_reply(Reply::status(404).body("no_service"));
    let e = expect_fail(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);
    assert!(e.contains("404"), "{e}");

    // Slow receiver: the attempt gives up and is retried later.
    rx.set_reply(Reply::status(200).delay(Duration::from_secs(3)));
    let e =
        expect_retry(deliver(&http, &settings, "slack", &msg, Duration::from_millis(300)).await);
    assert!(e.contains("timed out"), "{e}");
    no_leak(&e);

    // Receiver down: connection refused, retried; back up: delivered.
    rx.set_status(200);
    rx.stop().await;
    let e = expect_retry(deliver(&http, &settings, "slack", &msg, TIMEOUT).await);
    no_leak(&e);
    rx.restart().await;
    assert_eq!(
        deliver(&http, &settings, "slack", &msg, TIMEOUT).await,
        Outcome::Delivered
    );
}

#[tokio::test]
async fn connection_refused_is_retried_and_named() {
    let url = format!(
        "http://127.0.0.1:{}/services/T222/B222/SECRETPATHTOKEN",
        closed_port()
    );
    for settings in [
        Settings::Slack(SlackSettings { url: url.clone() }),
        Settings::Webhook(WebhookSettings {
            url: url.clone(),
            secret: None,
        }),
        Settings::Pagerduty(PagerdutySettings {
            routing_key: "KEY".into(),
            url: url.clone(),
        }),
    ] {
        let msg = message(Kind::Firing, "n-refused");
        let e = expect_retry(deliver(&client(), &settings, "x", &msg, TIMEOUT).await);
        assert!(e.to_lowercase().contains("refused"), "{e}");
        assert!(!e.contains(&url) && !e.contains("SECRETPATHTOKEN"), "{e}");
        assert!(!e.contains("127.0.0.1:"), "{e}");
    }
}
