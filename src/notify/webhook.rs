//! Generic webhook: the Prometheus Alertmanager webhook payload, version 4,
//! so receivers written for Alertmanager work unchanged.
//!
//! ```json
//! {
//!   "version": "4",
//!   "groupKey": "{}/{fingerprint=\"…\"}:{alertname=\"agent_down\"}",
//!   "truncatedAlerts": 0,
//!   "status": "firing",                 // or "resolved"
//!   "receiver": "<channel name>",
//!   "groupLabels": { "alertname": "agent_down" },
//!   "commonLabels": { … },             // the alert's labels
//!   "commonAnnotations": { … },        // the alert's annotations
//!   "externalURL": "https://agentry.example.com",
//!   "alerts": [{
//!     "status": "firing",
//!     "labels": { "alertname": "agent_down", "severity": "critical", … },
//!     "annotations": { "summary": "…", "description": "…", … },
//!     "startsAt": "2025-11-24T16:00:00Z",
//!     "endsAt": "0001-01-01T00:00:00Z",  // while firing, as Alertmanager does
//!     "generatorURL": "<link to the alert>",
//!     "fingerprint": "…"
//!   }],
//!   "idempotencyKey": "<notification id>"
//! }
//! ```
//!
//! One notification carries one alert. Each alert series gets its own
//! `groupKey` (the fingerprint is part of the route key), so a receiver
//! that tracks groups never mixes two instances of the same rule.
//! `idempotencyKey` is the only field Alertmanager does not send (receivers
//! ignore unknown fields); the same value is in the `Idempotency-Key`
//! header. An acknowledged alert is sent as `firing` with the annotation
//! `acknowledged: "true"`; a test as `firing` with the label `test: "true"`;
//! an approval request (SPEC §18) as `firing` with the call in labels
//! (`approval_id`, `server`, `tool`, `principal`, `arguments_digest`) and
//! the link to decide it in the annotation `review_url`.
//! The alert's value, when known, is the annotation `value` (unless the
//! rule's annotations already define one).
//!
//! # Signature
//!
//! When the channel has a `secret`, every request carries
//!
//! ```text
//! X-Agentry-Signature: sha256=<lowercase hex HMAC-SHA256(secret, raw body)>
//! ```
//!
//! (the GitHub webhook scheme). A receiver computes the HMAC over the exact
//! bytes of the request body, before any JSON parsing, and compares in
//! constant time; then it may use `idempotencyKey` to drop redeliveries.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::message::{Kind, Message};

/// The header that carries [`signature`].
pub const SIGNATURE_HEADER: &str = "X-Agentry-Signature";

/// Alertmanager's `endsAt` for an alert that has not ended (Go's zero time).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The Alertmanager v4 webhook body for `msg`, as sent to `receiver`
/// (the channel name).
pub fn body(msg: &Message, receiver: &str) -> Value {
    let a = &msg.alert;
    // Alertmanager has two statuses; an acknowledgement is a firing alert.
    let status = if msg.kind == Kind::Resolved {
        Kind::Resolved.as_str()
    } else {
        Kind::Firing.as_str()
    };

    let mut labels: BTreeMap<String, String> = a.labels.clone();
    labels.insert("alertname".into(), a.rule.clone());
    labels.insert("severity".into(), a.severity.clone());

    let mut annotations: BTreeMap<String, String> = a.annotations.clone();
    if let Some(v) = &a.value {
        annotations
            .entry("value".into())
            .or_insert_with(|| v.clone());
    }
    if msg.kind == Kind::Acknowledged {
        annotations.insert("acknowledged".into(), "true".into());
    }

    let ends_at = match msg.kind {
        Kind::Resolved => a.ends_at.clone().unwrap_or_else(|| {
            OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_else(|| a.starts_at.clone())
        }),
        _ => ZERO_TIME.to_string(),
    };

    let group_key = format!(
        "{{}}/{{fingerprint=\"{}\"}}:{{alertname=\"{}\"}}",
        quote(&a.fingerprint),
        quote(&a.rule)
    );

    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": { "alertname": a.rule },
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": msg.external_url,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": a.starts_at,
            "endsAt": ends_at,
            "generatorURL": a.url,
            "fingerprint": a.fingerprint,
        }],
        "idempotencyKey": msg.id,
    })
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`: the value of
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!(
        "sha256={}",
        crate::crypto::hex(&mac.finalize().into_bytes())
    )
}

/// A label value inside a quoted matcher.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::sample;

    #[test]
    fn alertmanager_v4_field_names() {
        let m = sample(Kind::Firing);
        let b = body(&m, "ops-webhook");
        let mut top: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        top.sort_unstable();
        assert_eq!(
            top,
            [
                "alerts",
                "commonAnnotations",
                "commonLabels",
                "externalURL",
                "groupKey",
                "groupLabels",
                "idempotencyKey",
                "receiver",
                "status",
                "truncatedAlerts",
                "version",
            ]
        );
        assert_eq!(b["version"], "4");
        assert_eq!(b["truncatedAlerts"], 0);
        assert_eq!(b["status"], "firing");
        assert_eq!(b["receiver"], "ops-webhook");
        assert_eq!(b["groupLabels"], json!({ "alertname": "agent_down" }));
        assert_eq!(b["externalURL"], "https://agentry.example.com");
        assert_eq!(b["idempotencyKey"], m.id);
        assert_eq!(
            b["groupKey"],
            "{}/{fingerprint=\"fp0123456789abcd\"}:{alertname=\"agent_down\"}"
        );

        let alerts = b["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1);
        let alert = alerts[0].as_object().unwrap();
        let mut keys: Vec<&str> = alert.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status",
            ]
        );
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["labels"]["alertname"], "agent_down");
        assert_eq!(alert["labels"]["severity"], "critical");
        assert_eq!(alert["labels"]["instance"], "instance-1");
        assert_eq!(
            alert["annotations"]["summary"],
            "Agent planner/instance-1 is down"
        );
        assert_eq!(alert["annotations"]["value"], "unhealthy");
        assert_eq!(alert["startsAt"], "2025-11-24T16:00:00Z");
        assert_eq!(alert["endsAt"], ZERO_TIME);
        assert_eq!(alert["generatorURL"], m.alert.url);
        assert_eq!(alert["fingerprint"], "fp0123456789abcd");
        assert_eq!(b["commonLabels"], alert["labels"]);
        assert_eq!(b["commonAnnotations"], alert["annotations"]);
    }

    #[test]
    fn resolved_and_acknowledged() {
        let b = body(&sample(Kind::Resolved), "r");
        assert_eq!(b["status"], "resolved");
        assert_eq!(b["alerts"][0]["status"], "resolved");
        assert_eq!(b["alerts"][0]["endsAt"], "2025-11-24T16:05:00Z");

        let mut m = sample(Kind::Resolved);
        m.alert.ends_at = None;
        let ends = body(&m, "r")["alerts"][0]["endsAt"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(crate::timefmt::parse_rfc3339(&ends).is_some(), "{ends}");
        assert_ne!(ends, ZERO_TIME);

        let b = body(&sample(Kind::Acknowledged), "r");
        assert_eq!(b["status"], "firing");
        assert_eq!(b["alerts"][0]["annotations"]["acknowledged"], "true");
        assert_eq!(b["alerts"][0]["endsAt"], ZERO_TIME);
        assert!(body(&sample(Kind::Firing), "r")["alerts"][0]["annotations"]
            .get("acknowledged")
            .is_none());

        let t = body(&Message::test("n", "hook", "https://a.example"), "hook");
        assert_eq!(t["status"], "firing");
        assert_eq!(t["alerts"][0]["labels"]["alertname"], "test");
        assert_eq!(t["alerts"][0]["labels"]["severity"], "info");
    }

    #[test]
    fn group_key_quotes_values() {
        let mut m = sample(Kind::Firing);
        m.alert.rule = "we\"ird".into();
        assert!(body(&m, "r")["groupKey"]
            .as_str()
            .unwrap()
            .ends_with(":{alertname=\"we\\\"ird\"}"));
    }

    #[test]
    fn signature_matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            signature("Jefe", b"what do ya want for nothing!"),
            signature("Jefe", b"what do ya want for nothing?")
        );
    }
}
