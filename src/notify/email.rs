//! Email: a plain-text message per notification.
//!
//! Subject `[FIRING:critical] agent_down planner/instance-1` (the `agent`
//! and `instance` labels when present), `[RESOLVED] …`, `[ACKNOWLEDGED] …`,
//! `[TEST] …`. Headers `Message-ID: <{notification id}@agentry>` (stable
//! across retries: a retried email is recognisably the same message) and
//! `X-Agentry-Notification-Id: {notification id}`, plus
//! `Auto-Submitted: auto-generated` so auto-responders stay quiet.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;

use super::channel::EmailSettings;
use super::message::{truncate, Kind, Message};

/// The header that carries the notification id.
pub const NOTIFICATION_ID_HEADER: &str = "X-Agentry-Notification-Id";

const SUBJECT_MAX: usize = 200;

/// The subject line (no CR, LF or other control characters).
pub fn subject(msg: &Message) -> String {
    let a = &msg.alert;
    let text = match msg.kind {
        Kind::Test => format!(
            "[TEST] {}",
            a.summary().unwrap_or("agentry test notification")
        ),
        Kind::Approval => msg.title(),
        kind => {
            let tag = if kind == Kind::Firing {
                format!("[FIRING:{}]", a.severity)
            } else {
                format!("[{}]", kind.tag())
            };
            match a.target() {
                Some(t) => format!("{tag} {} {t}", a.rule),
                None => format!("{tag} {}", a.rule),
            }
        }
    };
    truncate(&one_line(&text), SUBJECT_MAX)
}

/// The plain-text body.
pub fn text(msg: &Message) -> String {
    let a = &msg.alert;
    let mut out = String::new();
    out.push_str(&one_line(&msg.title()));
    out.push_str("\n\n");
    if msg.kind == Kind::Test {
        out.push_str("This is a test notification; no action is needed.\n\n");
    }
    if let Some(s) = a.summary() {
        out.push_str(s.trim());
        out.push_str("\n\n");
    }
    if let Some(d) = a.description() {
        out.push_str(d.trim());
        out.push_str("\n\n");
    }
    out.push_str(&format!("Rule:     {}\n", one_line(&a.rule)));
    out.push_str(&format!("Severity: {}\n", one_line(&a.severity)));
    if let Some(v) = &a.value {
        out.push_str(&format!("Value:    {}\n", one_line(v)));
    }
    out.push_str(&format!("Started:  {}\n", one_line(&a.starts_at)));
    if let Some(e) = &a.ends_at {
        out.push_str(&format!("Ended:    {}\n", one_line(e)));
    }
    if !a.labels.is_empty() {
        out.push_str("Labels:\n");
        for (k, v) in &a.labels {
            out.push_str(&format!("  {}={}\n", one_line(k), one_line(v)));
        }
    }
    let other: Vec<_> = a
        .annotations
        .iter()
        .filter(|(k, _)| k.as_str() != "summary" && k.as_str() != "description")
        .collect();
    if !other.is_empty() {
        out.push_str("Annotations:\n");
        for (k, v) in other {
            out.push_str(&format!("  {}={}\n", one_line(k), one_line(v)));
        }
    }
    if !a.url.is_empty() {
        out.push_str(&format!("\nView the alert: {}\n", one_line(&a.url)));
    }
    out.push_str("\n-- \n");
    out.push_str(&format!("Notification id: {}\n", one_line(&msg.id)));
    if msg.external_url.is_empty() {
        out.push_str(&format!("Sent by {}\n", one_line(&msg.sent_by)));
    } else {
        out.push_str(&format!(
            "Sent by {} ({})\n",
            one_line(&msg.sent_by),
            one_line(&msg.external_url)
        ));
    }
    out
}

/// `<{id}@agentry>`, with characters a msg-id cannot hold replaced by `-`.
pub fn message_id(msg: &Message) -> String {
    let local: String = msg
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local = local.trim_matches('.');
    let local = if local.is_empty() {
        "notification"
    } else {
        local
    };
    format!("<{local}@agentry>")
}

/// The email for `msg`, addressed as `settings` say.
pub fn compose(msg: &Message, settings: &EmailSettings) -> Result<lettre::Message, String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|_| "the from address is not a valid mailbox".to_string())?;
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(subject(msg))
        .message_id(Some(message_id(msg)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(NOTIFICATION_ID_HEADER),
            one_line(&msg.id),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .user_agent(super::message::USER_AGENT.to_string())
        .header(ContentType::TEXT_PLAIN);
    for (i, to) in settings.to.iter().enumerate() {
        let to: Mailbox = to
            .parse()
            .map_err(|_| format!("recipient {} is not a valid mailbox", i + 1))?;
        builder = builder.to(to);
    }
    builder
        .body(text(msg))
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// `text` on one line: CR, LF and other control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::Tls;
    use crate::notify::message::tests::sample;

    fn settings() -> EmailSettings {
        EmailSettings {
            smtp_host: "smtp.example.com".into(),
            smtp_port: 587,
            tls: Tls::Starttls,
            username: None,
            password: None,
            from: "Agentry <agentry@example.com>".into(),
            to: vec!["oncall@example.com".into(), "sec@example.com".into()],
        }
    }

    #[test]
    fn subjects() {
        assert_eq!(
            subject(&sample(Kind::Firing)),
            "[FIRING:critical] agent_down planner/instance-1"
        );
        assert_eq!(
            subject(&sample(Kind::Resolved)),
            "[RESOLVED] agent_down planner/instance-1"
        );
        assert_eq!(
            subject(&sample(Kind::Acknowledged)),
            "[ACKNOWLEDGED] agent_down planner/instance-1"
        );
        let t = Message::test("n1", "security_team", "https://a.example");
        assert_eq!(
            subject(&t),
            "[TEST] Test notification for channel security_team"
        );
        let mut m = sample(Kind::Firing);
        m.alert.labels.clear();
        assert_eq!(subject(&m), "[FIRING:critical] agent_down");
    }

    #[test]
    fn subject_has_no_line_breaks() {
        let mut m = sample(Kind::Firing);
        m.alert
            .labels
            .insert("instance".into(), "x\r\nBcc: victim@example.com".into());
        let s = subject(&m);
        assert!(!s.contains('\r') && !s.contains('\n'), "{s:?}");
        let email = compose(&m, &settings()).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn composed_email() {
        let m = sample(Kind::Firing);
        let email = compose(&m, &settings()).unwrap();
        let env = email.envelope();
        assert_eq!(env.from().unwrap().to_string(), "agentry@example.com");
        assert_eq!(env.to().len(), 2);
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(
            raw.contains(&format!("Message-ID: <{}@agentry>\r\n", m.id)),
            "{raw}"
        );
        assert!(
            raw.contains(&format!("X-Agentry-Notification-Id: {}\r\n", m.id)),
            "{raw}"
        );
        assert!(
            raw.contains("Subject: [FIRING:critical] agent_down planner/instance-1\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );

        let body = text(&m);
        for want in [
            "Agent planner/instance-1 is down",
            "Health checks failed for 2 minutes.",
            "Severity: critical",
            "Value:    unhealthy",
            "Started:  2025-11-24T16:00:00Z",
            "  instance=instance-1\n",
            "View the alert: https://agentry.example.com/alerts/a-1",
            &format!("Notification id: {}", m.id),
        ] {
            assert!(body.contains(want), "{want} missing from {body}");
        }
        assert!(text(&sample(Kind::Resolved)).contains("Ended:    2025-11-24T16:05:00Z"));
    }

    #[test]
    fn message_id_is_stable_and_safe() {
        let m = sample(Kind::Firing);
        assert_eq!(message_id(&m), message_id(&m.clone()));
        let mut odd = m.clone();
        odd.id = "a b<c>@d".into();
        assert_eq!(message_id(&odd), "<a-b-c--d@agentry>");
    }

    #[test]
    fn bad_addresses_are_errors() {
        let mut s = settings();
        s.from = "nope".into();
        assert!(compose(&sample(Kind::Firing), &s).is_err());
    }
}
