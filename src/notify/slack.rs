//! Slack incoming-webhook payload: a `text` fallback (what notifications
//! and old clients show) and Block Kit `blocks`.
//!
//! Delivered as `POST <url>` with a JSON body; Slack answers `200 ok`.
//! User-supplied text is escaped for mrkdwn (`&`, `<`, `>`), so a label
//! cannot forge links or mentions.

use serde_json::{json, Value};

use super::message::{truncate, Kind, Message};

/// Block Kit limits.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

/// The incoming-webhook JSON for `msg`.
pub fn body(msg: &Message) -> Value {
    let a = &msg.alert;
    let title = msg.title();
    let summary = a.summary().unwrap_or(a.rule.as_str());

    let text = match msg.kind {
        Kind::Test => escape(&title),
        _ => format!("{}: {}", escape(&title), escape(summary)),
    };

    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&title, HEADER_MAX), "emoji": false }
    })];

    let mut main = format!("*{}*", escape(summary));
    if let Some(d) = a.description() {
        main.push('\n');
        main.push_str(&escape(d));
    }
    blocks.push(section(&main));

    let mut fields = vec![field("Severity", &a.severity)];
    if let Some(v) = &a.value {
        fields.push(field("Value", v));
    }
    if let Some(t) = a.target() {
        fields.push(field("Target", &t));
    }
    fields.push(field("Started", &a.starts_at));
    if let Some(e) = &a.ends_at {
        fields.push(field("Ended", e));
    }
    blocks.push(json!({ "type": "section", "fields": fields }));

    if !a.labels.is_empty() {
        let labels = a
            .labels
            .iter()
            .map(|(k, v)| format!("`{}={}`", escape(k), escape(v)))
            .collect::<Vec<_>>()
            .join(" ");
        blocks.push(section(&format!("*Labels*\n{labels}")));
    }

    if !a.url.is_empty() {
        let label = match msg.kind {
            Kind::Test => "Open agentry",
            Kind::Approval => "Review the request in agentry",
            _ => "View the alert in agentry",
        };
        blocks.push(section(&format!("<{}|{label}>", link_target(&a.url))));
    }

    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": format!("Notification id `{}` · sent by {}", escape(&msg.id), escape(&msg.sent_by)),
        }]
    }));

    json!({ "text": text, "blocks": blocks })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(text, SECTION_MAX) } })
}

fn field(name: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": truncate(&format!("*{name}*\n{}", escape(value)), FIELD_MAX) })
}

/// Slack's mrkdwn control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A URL inside `<url|label>`: `|` and `>` would end it early.
fn link_target(url: &str) -> String {
    url.replace('|', "%7C")
        .replace('>', "%3E")
        .replace('<', "%3C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::sample;

    #[test]
    fn fallback_text_per_kind() {
        let b = body(&sample(Kind::Firing));
        assert_eq!(
            b["text"],
            "[FIRING] agent_down (critical): Agent planner/instance-1 is down"
        );
        assert!(body(&sample(Kind::Resolved))["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED] agent_down"));
        assert!(body(&sample(Kind::Acknowledged))["text"]
            .as_str()
            .unwrap()
            .starts_with("[ACKNOWLEDGED] agent_down"));
        let t = crate::notify::Message::test("n1", "ops", "https://a.example");
        assert!(body(&t)["text"].as_str().unwrap().starts_with("[TEST] "));
    }

    #[test]
    fn blocks_carry_everything() {
        let m = sample(Kind::Firing);
        let b = body(&m);
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "[FIRING] agent_down (critical)");
        assert_eq!(blocks.last().unwrap()["type"], "context");
        let all = b.to_string();
        for want in [
            "Agent planner/instance-1 is down",
            "Health checks failed for 2 minutes.",
            "unhealthy",
            "agent_type=planner",
            "<https://agentry.example.com/alerts/a-1|View the alert in agentry>",
            &m.id,
            "2025-11-24T16:00:00Z",
        ] {
            assert!(all.contains(want), "{want} missing from {all}");
        }
    }

    #[test]
    fn user_text_is_escaped() {
        let mut m = sample(Kind::Firing);
        m.alert
            .annotations
            .insert("summary".into(), "<!channel> & <https://evil|click>".into());
        let b = body(&m);
        let all = b.to_string();
        assert!(!all.contains("<!channel>"));
        assert!(all.contains("&lt;!channel&gt; &amp;"));
    }

    #[test]
    fn long_text_is_cut_to_block_limits() {
        let mut m = sample(Kind::Firing);
        m.alert.rule = "r".repeat(400);
        m.alert
            .annotations
            .insert("description".into(), "d".repeat(5000));
        let b = body(&m);
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
            HEADER_MAX
        );
        assert!(blocks[1]["text"]["text"].as_str().unwrap().chars().count() <= SECTION_MAX);
    }
}
