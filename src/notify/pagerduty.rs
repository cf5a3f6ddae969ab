//! PagerDuty Events API v2 payload.
//!
//! `event_action` is `trigger` for a firing alert (and for a test),
//! `acknowledge` and `resolve` for the others; `dedup_key` is the alert's
//! fingerprint, so the acknowledge and resolve events reach the incident the
//! trigger opened. PagerDuty answers `202 Accepted`.

use serde_json::{json, Map, Value};

use super::message::{truncate, Kind, Message};

/// PagerDuty refuses longer summaries.
pub const SUMMARY_MAX: usize = 1024;

/// PagerDuty's severities for ours.
pub fn severity(ours: &str) -> &'static str {
    match ours {
        "critical" => "critical",
        "major" => "error",
        "minor" | "warning" => "warning",
        "info" => "info",
        _ => "warning",
    }
}

/// The `event_action` for a message kind.
pub fn event_action(kind: Kind) -> &'static str {
    match kind {
        Kind::Firing | Kind::Test | Kind::Approval => "trigger",
        Kind::Acknowledged => "acknowledge",
        Kind::Resolved => "resolve",
    }
}

/// The event for `msg`; `None` when there is nothing PagerDuty could do
/// with it: an acknowledge or resolve without a fingerprint cannot name
/// its incident.
pub fn body(msg: &Message, routing_key: &str) -> Option<Value> {
    let a = &msg.alert;
    let action = event_action(msg.kind);
    if action != "trigger" {
        if a.fingerprint.is_empty() {
            return None;
        }
        return Some(json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": a.fingerprint,
        }));
    }

    let summary = match (msg.kind, a.summary()) {
        (Kind::Test | Kind::Approval, _) => msg.title(),
        (_, Some(s)) => format!("{}: {s}", a.rule),
        (_, None) => match a.target() {
            Some(t) => format!("{} on {t}", a.rule),
            None => a.rule.clone(),
        },
    };
    let source = a
        .labels
        .get("instance")
        .or_else(|| a.labels.get("agent"))
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "agentry".to_string());

    let mut payload = Map::new();
    payload.insert("summary".into(), truncate(&summary, SUMMARY_MAX).into());
    payload.insert("source".into(), source.into());
    payload.insert("severity".into(), severity(&a.severity).into());
    if !a.starts_at.is_empty() {
        payload.insert("timestamp".into(), a.starts_at.clone().into());
    }
    if let Some(agent) = a.labels.get("agent").filter(|s| !s.is_empty()) {
        payload.insert("component".into(), agent.clone().into());
    }
    if let Some(t) = a.labels.get("agent_type").filter(|s| !s.is_empty()) {
        payload.insert("group".into(), t.clone().into());
    }
    payload.insert("class".into(), a.rule.clone().into());
    payload.insert(
        "custom_details".into(),
        json!({
            "labels": a.labels,
            "annotations": a.annotations,
            "value": a.value,
            "notification_id": msg.id,
        }),
    );

    let mut event = Map::new();
    event.insert("routing_key".into(), routing_key.into());
    event.insert("event_action".into(), action.into());
    if !a.fingerprint.is_empty() {
        event.insert("dedup_key".into(), a.fingerprint.clone().into());
    }
    event.insert("payload".into(), Value::Object(payload));
    if !a.url.is_empty() {
        let text = match msg.kind {
            Kind::Test => "agentry",
            Kind::Approval => "Review the request in agentry",
            _ => "View the alert in agentry",
        };
        event.insert("links".into(), json!([{ "href": a.url, "text": text }]));
    }
    let client = if msg.sent_by.is_empty() {
        "agentry"
    } else {
        msg.sent_by.as_str()
    };
    event.insert("client".into(), client.into());
    if !msg.external_url.is_empty() {
        event.insert("client_url".into(), msg.external_url.clone().into());
    }
    Some(Value::Object(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::sample;

    #[test]
    fn trigger_shape() {
        let m = sample(Kind::Firing);
        let b = body(&m, "KEY").unwrap();
        assert_eq!(b["routing_key"], "KEY");
        assert_eq!(b["event_action"], "trigger");
        assert_eq!(b["dedup_key"], "fp0123456789abcd");
        let p = &b["payload"];
        assert_eq!(p["summary"], "agent_down: Agent planner/instance-1 is down");
        assert_eq!(p["source"], "instance-1");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2025-11-24T16:00:00Z");
        assert_eq!(p["component"], "planner");
        assert_eq!(p["group"], "planner");
        assert_eq!(p["class"], "agent_down");
        assert_eq!(p["custom_details"]["labels"]["instance"], "instance-1");
        assert_eq!(
            p["custom_details"]["annotations"]["description"],
            "Health checks failed for 2 minutes."
        );
        assert_eq!(p["custom_details"]["value"], "unhealthy");
        assert_eq!(p["custom_details"]["notification_id"], m.id);
        assert_eq!(b["links"][0]["href"], m.alert.url);
        assert!(b["links"][0]["text"].is_string());
        assert_eq!(b["client"], "agentry");
        assert_eq!(b["client_url"], "https://agentry.example.com");
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_key() {
        for (kind, action) in [
            (Kind::Acknowledged, "acknowledge"),
            (Kind::Resolved, "resolve"),
        ] {
            let b = body(&sample(kind), "KEY").unwrap();
            assert_eq!(
                b,
                json!({ "routing_key": "KEY", "event_action": action, "dedup_key": "fp0123456789abcd" })
            );
        }
        let mut m = sample(Kind::Resolved);
        m.alert.fingerprint.clear();
        assert_eq!(body(&m, "KEY"), None);
    }

    #[test]
    fn test_message_triggers() {
        let m = Message::test("n-9", "pd", "https://a.example");
        let b = body(&m, "KEY").unwrap();
        assert_eq!(b["event_action"], "trigger");
        assert_eq!(b["payload"]["severity"], "info");
        assert_eq!(b["payload"]["source"], "agentry");
        assert!(b["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[TEST] "));
        assert_eq!(b["dedup_key"], m.alert.fingerprint);
    }

    #[test]
    fn severities_and_limits() {
        assert_eq!(severity("critical"), "critical");
        assert_eq!(severity("major"), "error");
        assert_eq!(severity("minor"), "warning");
        assert_eq!(severity("warning"), "warning");
        assert_eq!(severity("info"), "info");
        let mut m = sample(Kind::Firing);
        m.alert
            .annotations
            .insert("summary".into(), "x".repeat(3000));
        m.alert.labels.clear();
        let b = body(&m, "KEY").unwrap();
        assert_eq!(
            b["payload"]["summary"].as_str().unwrap().chars().count(),
            SUMMARY_MAX
        );
        assert_eq!(b["payload"]["source"], "agentry");
        assert!(b["payload"].get("component").is_none());
    }
}
