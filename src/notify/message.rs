//! The notification message: everything any channel needs to render its
//! payload, serialisable (the outbox stores it as JSON and renders it again
//! on every attempt, so a retried delivery carries the same content and the
//! same idempotency key).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What happened to the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Firing,
    Resolved,
    Acknowledged,
    /// The "send test" action on a channel.
    Test,
    /// A held call waits for a person's approval (SPEC §18).
    Approval,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Firing => "firing",
            Kind::Resolved => "resolved",
            Kind::Acknowledged => "acknowledged",
            Kind::Test => "test",
            Kind::Approval => "approval",
        }
    }

    /// `FIRING`, `RESOLVED`, `ACKNOWLEDGED`, `TEST`: the tag in subjects
    /// and titles.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Firing => "FIRING",
            Kind::Resolved => "RESOLVED",
            Kind::Acknowledged => "ACKNOWLEDGED",
            Kind::Test => "TEST",
            Kind::Approval => "APPROVAL",
        }
    }
}

/// The alert as the receivers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: String,
    pub rule: String,
    /// Stable per alert series: the PagerDuty `dedup_key`, the Alertmanager
    /// `fingerprint`.
    pub fingerprint: String,
    /// `critical`, `major`, `minor`, `warning` or `info`.
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, ... already rendered.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339, once resolved.
    pub ends_at: Option<String>,
    /// The value that made the rule fire, as shown to humans.
    pub value: Option<String>,
    /// Link to the alert's page.
    pub url: String,
}

impl AlertView {
    pub fn summary(&self) -> Option<&str> {
        self.annotations
            .get("summary")
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    pub fn description(&self) -> Option<&str> {
        self.annotations
            .get("description")
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// `planner/instance-1`, `planner`, `instance-1` or `None`, from the
    /// `agent` and `instance` labels.
    pub fn target(&self) -> Option<String> {
        let agent = self.labels.get("agent").filter(|s| !s.is_empty());
        let instance = self.labels.get("instance").filter(|s| !s.is_empty());
        match (agent, instance) {
            (Some(a), Some(i)) if a != i => Some(format!("{a}/{i}")),
            (Some(a), _) => Some(a.clone()),
            (None, Some(i)) => Some(i.clone()),
            (None, None) => None,
        }
    }
}

/// One notification to one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Idempotency key: the outbox row id. Sent as `Idempotency-Key`, the
    /// webhook's `idempotencyKey`, the email `Message-ID`.
    pub id: String,
    pub kind: Kind,
    pub alert: AlertView,
    /// Base URL of the appliance.
    pub external_url: String,
    /// Who sends it, e.g. `agentry`.
    pub sent_by: String,
}

impl Message {
    /// The message of the "send test" action: a clearly labelled test alert
    /// (rule `test`, severity `info`) whose fingerprint is unique to this
    /// test, so it never touches a real alert's incident.
    pub fn test(id: &str, channel_name: &str, external_url: &str) -> Message {
        let base = external_url.trim_end_matches('/');
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let mut labels = BTreeMap::new();
        labels.insert("channel".to_string(), channel_name.to_string());
        labels.insert("test".to_string(), "true".to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".to_string(),
            format!("Test notification for channel {channel_name}"),
        );
        annotations.insert(
            "description".to_string(),
            format!(
                "This is a test notification sent from agentry to the channel \
                 {channel_name}. It does not correspond to any alert; no action is needed."
            ),
        );
        Message {
            id: id.to_string(),
            kind: Kind::Test,
            alert: AlertView {
                id: format!("test-{id}"),
                rule: "test".to_string(),
                fingerprint: format!("agentry-test-{id}"),
                severity: "info".to_string(),
                labels,
                annotations,
                starts_at: now.format(&Rfc3339).unwrap_or_default(),
                ends_at: None,
                value: None,
                url: base.to_string(),
            },
            external_url: base.to_string(),
            sent_by: "agentry".to_string(),
        }
    }

    /// `[FIRING] agent_down (critical)`; a test reads `[TEST] <summary>`,
    /// an approval `[APPROVAL] <summary>`.
    pub fn title(&self) -> String {
        match self.kind {
            Kind::Test => format!(
                "[TEST] {}",
                self.alert.summary().unwrap_or("test notification")
            ),
            Kind::Approval => format!(
                "[APPROVAL] {}",
                self.alert.summary().unwrap_or("a call waits for approval")
            ),
            kind => format!(
                "[{}] {} ({})",
                kind.tag(),
                self.alert.rule,
                self.alert.severity
            ),
        }
    }
}

/// The `User-Agent` of every notification request.
pub const USER_AGENT: &str = concat!("agentry/", env!("CARGO_PKG_VERSION"));

/// `text` cut to at most `max` characters (not bytes), with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A firing `agent_down` alert for `planner/instance-1`.
    pub(crate) fn sample(kind: Kind) -> Message {
        let mut labels = BTreeMap::new();
        labels.insert("agent".to_string(), "planner".to_string());
        labels.insert("instance".to_string(), "instance-1".to_string());
        labels.insert("agent_type".to_string(), "planner".to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".to_string(),
            "Agent planner/instance-1 is down".to_string(),
        );
        annotations.insert(
            "description".to_string(),
            "Health checks failed for 2 minutes.".to_string(),
        );
        Message {
            id: "0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_string(),
            kind,
            alert: AlertView {
                id: "a-1".to_string(),
                rule: "agent_down".to_string(),
                fingerprint: "fp0123456789abcd".to_string(),
                severity: "critical".to_string(),
                labels,
                annotations,
                starts_at: "2025-11-24T16:00:00Z".to_string(),
                ends_at: (kind == Kind::Resolved).then(|| "2025-11-24T16:05:00Z".to_string()),
                value: Some("unhealthy".to_string()),
                url: "https://agentry.example.com/alerts/a-1".to_string(),
            },
            external_url: "https://agentry.example.com".to_string(),
            sent_by: "agentry".to_string(),
        }
    }

    #[test]
    fn serde_round_trip() {
        let m = sample(Kind::Acknowledged);
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"kind\":\"acknowledged\""));
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn test_message() {
        let m = Message::test("n-1", "ops-slack", "https://agentry.example.com/");
        assert_eq!(m.kind, Kind::Test);
        assert_eq!(m.alert.rule, "test");
        assert_eq!(m.alert.severity, "info");
        assert_eq!(m.id, "n-1");
        assert_eq!(m.external_url, "https://agentry.example.com");
        assert!(m.alert.fingerprint.contains("n-1"));
        assert!(m.title().starts_with("[TEST] "));
        assert!(m.title().contains("ops-slack"));
        assert!(crate::timefmt::parse_rfc3339(&m.alert.starts_at).is_some());
    }

    #[test]
    fn titles_and_targets() {
        assert_eq!(
            sample(Kind::Firing).title(),
            "[FIRING] agent_down (critical)"
        );
        assert_eq!(
            sample(Kind::Resolved).title(),
            "[RESOLVED] agent_down (critical)"
        );
        assert_eq!(
            sample(Kind::Firing).alert.target().as_deref(),
            Some("planner/instance-1")
        );
        let mut m = sample(Kind::Firing);
        m.alert.labels.remove("agent");
        assert_eq!(m.alert.target().as_deref(), Some("instance-1"));
        m.alert.labels.remove("instance");
        assert_eq!(m.alert.target(), None);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4).chars().count(), 4);
    }
}
