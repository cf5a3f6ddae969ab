//! Tests of `channel.rs`.
use super::*;
use serde_json::json;

fn email_json() -> Value {
    json!({
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "tls": "starttls",
        "username": "alerts",
        "password": "hunter2-but-longer",
        "from": "Agentry <agentry@example.com>",
        "to": ["oncall@example.com", "Security Team <security@example.com>"]
    })
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

fn errors(kind: ChannelType, json: Value) -> Vec<FieldError> {
    Settings::parse(kind, &json).expect_err("must be refused")
}

#[test]
fn channel_type_strings() {
    for &t in ChannelType::ALL {
        assert_eq!(t.as_str().parse::<ChannelType>(), Ok(t));
        assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
    }
    assert!("sms".parse::<ChannelType>().is_err());
    assert_eq!(
        serde_json::to_value(Tls::Starttls).unwrap(),
        json!("starttls")
    );
    assert_eq!("tls".parse::<Tls>(), Ok(Tls::Tls));
}

#[test]
fn valid_email() {
    let s = Settings::parse(ChannelType::Email, &email_json()).unwrap();
    let Settings::Email(e) = &s else { panic!() };
    assert_eq!(e.smtp_port, 587);
    assert_eq!(e.tls, Tls::Starttls);
    assert_eq!(e.to.len(), 2);
    assert_eq!(s.kind(), ChannelType::Email);
    assert_eq!(s.secrets_set(), vec!["password"]);
}

#[test]
fn email_every_bad_field_is_named() {
    let errs = errors(
        ChannelType::Email,
        json!({
            "smtp_host": "smtp example.com",
            "smtp_port": 0,
            "tls": "ssl",
            "username": "u".repeat(257),
            "password": "p",
            "from": "not an address",
            "to": ["ok@example.com", "broken", 7],
            "colour": "blue"
        }),
    );
    let f = fields(&errs);
    for want in [
        "smtp_host",
        "smtp_port",
        "tls",
        "username",
        "from",
        "to[1]",
        "to[2]",
        "colour",
    ] {
        assert!(f.contains(&want), "{want} missing from {errs:?}");
    }
    assert!(!f.contains(&"to[0]"));
}

#[test]
fn email_required_fields_and_limits() {
    let errs = errors(ChannelType::Email, json!({}));
    let f = fields(&errs);
    for want in ["smtp_host", "smtp_port", "tls", "from", "to"] {
        assert!(f.contains(&want), "{want} missing from {errs:?}");
    }

    let mut j = email_json();
    j["to"] = json!([]);
    assert_eq!(fields(&errors(ChannelType::Email, j.clone())), ["to"]);
    j["to"] = json!((0..51)
        .map(|i| format!("u{i}@example.com"))
        .collect::<Vec<_>>());
    assert_eq!(fields(&errors(ChannelType::Email, j.clone())), ["to"]);
    j["to"] = json!("oncall@example.com");
    assert_eq!(fields(&errors(ChannelType::Email, j.clone())), ["to"]);

    let mut j = email_json();
    j["smtp_port"] = json!(65536);
    assert_eq!(
        fields(&errors(ChannelType::Email, j.clone())),
        ["smtp_port"]
    );
    j["smtp_port"] = json!("25");
    assert_eq!(
        fields(&errors(ChannelType::Email, j.clone())),
        ["smtp_port"]
    );
    j["smtp_port"] = json!(65535);
    assert!(Settings::parse(ChannelType::Email, &j).is_ok());

    let mut j = email_json();
    j["smtp_host"] = json!("h".repeat(254));
    assert_eq!(fields(&errors(ChannelType::Email, j)), ["smtp_host"]);
}

#[test]
fn email_credentials_rules() {
    // A password without a username.
    let mut j = email_json();
    j["username"] = Value::Null;
    assert_eq!(fields(&errors(ChannelType::Email, j)), ["password"]);

    // Credentials in clear are refused, and the message says what to use.
    let mut j = email_json();
    j["tls"] = json!("none");
    let errs = errors(ChannelType::Email, j);
    assert_eq!(fields(&errs), ["tls"]);
    assert!(errs[0].message.contains("starttls or tls"), "{errs:?}");

    // Without credentials, plain SMTP to a local relay is fine.
    let mut j = email_json();
    j["tls"] = json!("none");
    j["smtp_port"] = json!(25);
    j.as_object_mut().unwrap().remove("username");
    j.as_object_mut().unwrap().remove("password");
    let s = Settings::parse(ChannelType::Email, &j).unwrap();
    assert!(s.secrets_set().is_empty());
}

#[test]
fn slack_url_rules_never_echo_the_url() {
    let secret_url = "ftp://hooks.slack.com/services/T000/B000/XXXXSECRET";
    let errs = errors(ChannelType::Slack, json!({ "url": secret_url }));
    assert_eq!(fields(&errs), ["url"]);
    assert!(!errs[0].message.contains("XXXXSECRET"));

    for bad in [
        "https://user:pw@hooks.slack.com/x",
        "not a url",
        "https://",
        "mailto:ops@example.com",
    ] {
        assert_eq!(
            fields(&errors(ChannelType::Slack, json!({ "url": bad }))),
            ["url"],
            "{bad}"
        );
    }
    let long = format!("https://hooks.slack.com/{}", "a".repeat(2048));
    assert_eq!(
        fields(&errors(ChannelType::Slack, json!({ "url": long }))),
        ["url"]
    );
    assert_eq!(fields(&errors(ChannelType::Slack, json!({}))), ["url"]);
    assert!(Settings::parse(
        ChannelType::Slack,
        &json!({ "url": "http://127.0.0.1:9/hook" })
    )
    .is_ok());
}

#[test]
fn pagerduty_rules_and_default_url() {
    let s = Settings::parse(
        ChannelType::Pagerduty,
        &json!({ "routing_key": "R0UT1NGKEY" }),
    )
    .unwrap();
    let Settings::Pagerduty(p) = &s else { panic!() };
    assert_eq!(p.url, PAGERDUTY_EVENTS_URL);

    for bad in [
        json!(""),
        json!("has space"),
        json!("k".repeat(65)),
        json!(12),
    ] {
        let errs = errors(ChannelType::Pagerduty, json!({ "routing_key": bad }));
        assert_eq!(fields(&errs), ["routing_key"], "{bad}");
    }
    let errs = errors(
        ChannelType::Pagerduty,
        json!({ "routing_key": "k", "url": "gopher://x" }),
    );
    assert_eq!(fields(&errs), ["url"]);
}

#[test]
fn webhook_secret_length() {
    let ok = json!({ "url": "https://example.com/hook", "secret": "s".repeat(16) });
    assert!(Settings::parse(ChannelType::Webhook, &ok).is_ok());
    let no_secret = json!({ "url": "https://example.com/hook" });
    assert!(Settings::parse(ChannelType::Webhook, &no_secret).is_ok());
    for bad in ["s".repeat(15), "s".repeat(257)] {
        let j = json!({ "url": "https://example.com/hook", "secret": bad });
        assert_eq!(fields(&errors(ChannelType::Webhook, j)), ["secret"]);
    }
    assert_eq!(
        fields(&errors(ChannelType::Webhook, json!("https://example.com"))),
        ["settings"]
    );
}

#[test]
fn split_join_round_trip() {
    let cases = [
        (ChannelType::Email, email_json()),
        (
            ChannelType::Slack,
            json!({ "url": "https://hooks.slack.com/services/T/B/SECRET" }),
        ),
        (
            ChannelType::Pagerduty,
            json!({ "routing_key": "KEY123", "url": "http://127.0.0.1:1/enqueue" }),
        ),
        (
            ChannelType::Webhook,
            json!({ "url": "https://example.com/hook", "secret": "0123456789abcdef" }),
        ),
        (
            ChannelType::Webhook,
            json!({ "url": "https://example.com/hook" }),
        ),
    ];
    for (kind, j) in cases {
        let s = Settings::parse(kind, &j).unwrap();
        let (public, secrets) = s.split();
        let public_text = public.to_string();
        for (k, v) in secrets.as_object().unwrap() {
            assert!(kind.secret_fields().contains(&k.as_str()));
            assert!(
                !public_text.contains(v.as_str().unwrap()),
                "{kind}: {k} leaked"
            );
        }
        assert_eq!(Settings::join(kind, &public, &secrets).unwrap(), s);
    }
    let (public, secrets) = Settings::parse(ChannelType::Email, &email_json())
        .unwrap()
        .split();
    assert_eq!(secrets, json!({ "password": "hunter2-but-longer" }));
    assert_eq!(public["username"], json!("alerts"));
    assert!(public.get("password").is_none());
    // A public field smuggled into the secrets is refused.
    assert!(Settings::join(
        ChannelType::Email,
        &public,
        &json!({ "from": "x@example.com" })
    )
    .is_err());
}

#[test]
fn update_keeps_absent_secrets() {
    let existing = Settings::parse(ChannelType::Email, &email_json()).unwrap();
    let mut change = email_json();
    change.as_object_mut().unwrap().remove("password");
    change["to"] = json!(["new@example.com"]);
    let Settings::Email(e) = Settings::parse_update(&existing, &change).unwrap() else {
        panic!()
    };
    assert_eq!(e.password.as_deref(), Some("hunter2-but-longer"));
    assert_eq!(e.to, ["new@example.com"]);

    // null clears an optional secret...
    let mut clear = email_json();
    clear["password"] = Value::Null;
    let Settings::Email(e) = Settings::parse_update(&existing, &clear).unwrap() else {
        panic!()
    };
    assert_eq!(e.password, None);

    // ...and a new value replaces it.
    let mut new = email_json();
    new["password"] = json!("another-password");
    let Settings::Email(e) = Settings::parse_update(&existing, &new).unwrap() else {
        panic!()
    };
    assert_eq!(e.password.as_deref(), Some("another-password"));

    let slack = Settings::parse(
        ChannelType::Slack,
        &json!({ "url": "https://hooks.slack.com/services/T/B/S" }),
    )
    .unwrap();
    assert_eq!(Settings::parse_update(&slack, &json!({})).unwrap(), slack);
    assert_eq!(
        fields(&Settings::parse_update(&slack, &json!({ "url": null })).unwrap_err()),
        ["url"]
    );

    let pd = Settings::parse(ChannelType::Pagerduty, &json!({ "routing_key": "KEY" })).unwrap();
    let Settings::Pagerduty(p) = Settings::parse_update(
        &pd,
        &json!({ "url": "https://events.eu.pagerduty.com/v2/enqueue" }),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(p.routing_key, "KEY");
    assert_eq!(p.url, "https://events.eu.pagerduty.com/v2/enqueue");
}

#[test]
fn debug_redacts_secrets() {
    let cases = [
        (ChannelType::Email, email_json(), "hunter2-but-longer"),
        (
            ChannelType::Slack,
            json!({ "url": "https://hooks.slack.com/services/T/B/SECRETTOKEN" }),
            "SECRETTOKEN",
        ),
        (
            ChannelType::Pagerduty,
            json!({ "routing_key": "ROUTINGSECRET" }),
            "ROUTINGSECRET",
        ),
        (
            ChannelType::Webhook,
            json!({ "url": "https://example.com/h", "secret": "webhook-secret-value" }),
            "webhook-secret-value",
        ),
    ];
    for (kind, j, secret) in cases {
        let s = Settings::parse(kind, &j).unwrap();
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains(secret), "{kind} leaks: {shown}");
        assert!(shown.contains("\"<redacted>\""), "{shown}");
    }
    let open = Settings::parse(
        ChannelType::Webhook,
        &json!({ "url": "https://example.com/h" }),
    )
    .unwrap();
    assert!(format!("{open:?}").contains("secret: None"));
}

#[test]
fn field_error_map() {
    let errs = errors(ChannelType::Slack, json!({ "url": 1, "x": 2 }));
    let map = FieldError::to_map(&errs);
    assert_eq!(map.len(), 2);
    assert_eq!(map["x"], "unknown field");
}
