//! The outbound rules: health checks and channel deliveries never reach
//! link-local or metadata addresses, however the address is written,
//! through a redirect, or behind a name.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::receivers::{HttpReceiver, Reply};
use crate::support::*;

/// 169.254.169.254 written four ways, each a URL host.
const METADATA_FORMS: &[&str] = &[
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "[::ffff:169.254.169.254]",
];

async fn expect_refused(res: reqwest::Response, field: &str, what: &str) {
    let p = expect_problem(res, 422).await;
    let message = p["errors"][field].as_str().unwrap_or_default();
    assert!(
        message.contains("outbound rules refuse") && message.contains("network.outbound_deny"),
        "{what}: {p}"
    );
}

#[tokio::test]
async fn every_surface_refuses_the_metadata_address_in_every_spelling() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "planner-1", "planner").await;
    let send = |path: &str, body: Value| {
        c.post(s.url(path))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    for (i, host) in METADATA_FORMS.iter().enumerate() {
        let url = format!("http://{host}/latest/meta-data/");
        let res = send(
            "/api/v1/instances",
            json!({"agent_id": agent, "name": format!("m{i}"), "kind": "http", "url": url}),
        )
        .await
        .unwrap();
        expect_refused(res, "url", &format!("monitor {url}")).await;
        for (kind, settings) in [
            ("webhook", json!({"url": url})),
            ("slack", json!({"url": url})),
            (
                "pagerduty",
                json!({"routing_key": "R0UT1NGKEY", "url": url}),
            ),
        ] {
            let res = send(
                "/api/v1/channels",
                json!({"name": format!("{kind}-{i}"), "type": kind, "settings": settings}),
            )
            .await
            .unwrap();
            expect_refused(res, "settings.url", &format!("{kind} {url}")).await;
        }
        // An SMTP host is a bare host: the bracketless IPv6 form is what a
        // user would type there.
        let smtp_host = host.trim_start_matches('[').trim_end_matches(']');
        let res = send(
            "/api/v1/channels",
            json!({"name": format!("email-{i}"), "type": "email", "settings": {
                "smtp_host": smtp_host, "smtp_port": 25, "tls": "none",
                "from": "agentry@example.com", "to": ["oncall@example.com"]}}),
        )
        .await
        .unwrap();
        let p = expect_problem(res, 422).await;
        let message = p["errors"]["settings.smtp_host"]
            .as_str()
            .unwrap_or_default();
        // `::ffff:…` without brackets is not a valid host name: refused
        // by the host check before the rules are asked.
        assert!(!message.is_empty(), "email {smtp_host}: {p}");
    }
    // fe80::/10 and the metadata host name too.
    for url in ["http://[fe80::1]/", "http://metadata.google.internal/"] {
        let res = send(
            "/api/v1/channels",
            json!({"name": "hook", "type": "webhook", "settings": {"url": url}}),
        )
        .await
        .unwrap();
        let p = expect_problem(res, 422).await;
        assert!(
            p["errors"]["settings.url"]
                .as_str()
                .unwrap()
                .contains("outbound rules refuse"),
            "{url}: {p}"
        );
    }
    // Nothing was created.
    assert_eq!(
        get_json(&c, &s, "/api/v1/channels").await["items"],
        json!([])
    );
    s.stop().await;
}

/// Creates a webhook channel to `url` and sends it a test; returns the
/// test notification.
async fn send_test(c: &reqwest::Client, csrf: &str, s: &TestServer, url: &str) -> Value {
    let ch = post(
        c,
        csrf,
        s,
        "/api/v1/channels",
        json!({"name": "hook", "type": "webhook", "settings": {"url": url}}),
    )
    .await;
    post(
        c,
        csrf,
        s,
        &format!("/api/v1/channels/{}/test", ch["id"].as_str().unwrap()),
        json!({}),
    )
    .await
}

/// Waits until the instance's last check failed with an error; returns it.
async fn last_error(c: &reqwest::Client, s: &TestServer, id: &str) -> String {
    for _ in 0..100 {
        let i = get_json(c, s, &format!("/api/v1/instances/{id}")).await;
        if let Some(e) = i["last_error"].as_str() {
            return e.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no check result for {id}");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_not_followed() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "planner-1", "planner").await;
    let mut redirector = HttpReceiver::start().await;
    redirector.set_reply(
        Reply::status(302).header("location", "http://169.254.169.254/latest/meta-data/"),
    );

    // A health check follows redirects, but not this one.
    let i = post(
        &c,
        &csrf,
        &s,
        "/api/v1/instances",
        json!({"agent_id": agent, "name": "redirecting", "kind": "http",
               "url": redirector.url("/health"), "interval_seconds": 5, "timeout_ms": 3000,
               "body_contains": "ami-id"}),
    )
    .await;
    let e = last_error(&c, &s, i["id"].as_str().unwrap()).await;
    assert!(
        e.contains("outbound rules refuse 169.254.169.254") && e.contains("network.outbound_deny"),
        "{e}"
    );

    // A delivery does not follow redirects at all; the send-test says so
    // and shows nothing of what lies behind the redirect.
    let test = send_test(&c, &csrf, &s, &redirector.url("/hook")).await;
    assert_eq!(test["status"], "failed", "{test}");
    assert!(
        test["last_error"]
            .as_str()
            .unwrap()
            .contains("redirect, which is not followed"),
        "{test}"
    );
    redirector.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn names_are_checked_at_connection_time_with_private_networks_refused() {
    // With outbound_allow_private off, `localhost` passes creation (a name
    // is not resolved then) and is refused once resolved, at every check
    // and delivery.
    let s = TestServer::start_with(|c| c.network.outbound_allow_private = false).await;
    let (c, csrf) = admin(&s).await;
    let agent = create_agent(&s, &c, &csrf, "planner-1", "planner").await;
    let receiver = HttpReceiver::start().await;
    let port = receiver
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let by_name = format!("http://localhost:{port}/health");

    let i = post(
        &c,
        &csrf,
        &s,
        "/api/v1/instances",
        json!({"agent_id": agent, "name": "by-name", "kind": "http", "url": by_name,
               "interval_seconds": 5, "timeout_ms": 3000}),
    )
    .await;
    let e = last_error(&c, &s, i["id"].as_str().unwrap()).await;
    assert!(e.contains("outbound_allow_private = false"), "{e}");

    let test = send_test(&c, &csrf, &s, &by_name).await;
    assert_ne!(test["status"], "delivered", "{test}");
    assert!(
        test["last_error"]
            .as_str()
            .unwrap()
            .contains("outbound_allow_private = false"),
        "{test}"
    );
    // An address literal is refused at creation.
    let res = c
        .post(s.url("/api/v1/instances"))
        .header("x-csrf-token", &csrf)
        .json(
            &json!({"agent_id": agent, "name": "literal", "kind": "http",
                      "url": receiver.url("/health")}),
        )
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, 422).await;
    assert!(
        p["errors"]["url"]
            .as_str()
            .unwrap()
            .contains("outbound_allow_private"),
        "{p}"
    );
    assert_eq!(receiver.requests().len(), 0, "nothing reached the receiver");
    s.stop().await;
}
