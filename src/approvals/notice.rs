//! What a notification of an approval request says (SPEC §18): the call
//! (who asks, through which client, which tool on which server, the
//! arguments' digest), the rule, until when, and the signed link to the
//! request's page. Every channel renders it as it renders an alert: the
//! Slack message, the email and the PagerDuty event show the summary and
//! the link; the Alertmanager-format webhook carries the call as labels
//! and the link as the annotation `review_url`. The arguments themselves
//! stay out (they are sealed at rest and shown to signed-in approvers).

use std::collections::BTreeMap;

use crate::db::alert_rules::Step;
use crate::db::approvals::{ApprovalRow, RuleRow};
use crate::notify::{AlertView, Kind, Message};
use crate::timefmt;

/// The notification `id` of request `row` under `rule`, asked by
/// `requester` (a name), with its link `review_url`.
pub fn message(
    id: &str,
    row: &ApprovalRow,
    rule: &RuleRow,
    requester: &str,
    review_url: &str,
    external_url: &str,
) -> Message {
    let b = &row.binding;
    let principal = format!("{}:{requester}", b.principal_type);
    let mut labels = BTreeMap::new();
    labels.insert("approval_id".to_string(), b.id.clone());
    labels.insert("server".to_string(), b.server.clone());
    labels.insert("tool".to_string(), b.tool.clone());
    labels.insert("principal".to_string(), principal.clone());
    labels.insert("arguments_digest".to_string(), b.arguments_digest.clone());
    if let Some(c) = &row.client_id {
        labels.insert("client".to_string(), c.clone());
    }
    let expires = timefmt::rfc3339(b.expires_at);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_string(),
        format!("{principal} asks to call {} on {}", b.tool, b.server),
    );
    annotations.insert(
        "description".to_string(),
        format!(
            "The approval rule {} holds this call until a holder of the role {} approves \
             or denies it, or until {expires}, when it expires. Review the exact call and \
             decide: {review_url}",
            rule.name, rule.approver_role
        ),
    );
    annotations.insert("review_url".to_string(), review_url.to_string());
    annotations.insert("expires_at".to_string(), expires);
    let base = external_url.trim_end_matches('/');
    Message {
        id: id.to_string(),
        kind: Kind::Approval,
        alert: AlertView {
            id: b.id.clone(),
            rule: rule.name.clone(),
            fingerprint: format!("approval-{}", b.id),
            severity: "warning".to_string(),
            labels,
            annotations,
            starts_at: timefmt::rfc3339(row.created_at),
            ends_at: None,
            value: None,
            url: review_url.to_string(),
        },
        external_url: base.to_string(),
        sent_by: "agentry".to_string(),
    }
}

/// The notification that a request is over, from its `opening` notice
/// (with the new notification's id): `outcome` says how (`approved by
/// carol`, `denied by dave`, `expired`). Sent as a resolved
/// alert of the same fingerprint to the channels told of the request, so
/// a PagerDuty incident closes and the Slack channel and mailbox hear the
/// end.
pub fn closing(opening: Message, outcome: &str, now: i64) -> Message {
    let mut msg = opening;
    let labels = &msg.alert.labels;
    let what = format!(
        "{}'s call of {} on {}",
        labels.get("principal").map_or("", String::as_str),
        labels.get("tool").map_or("", String::as_str),
        labels.get("server").map_or("", String::as_str),
    );
    let review_url = msg.alert.url.clone();

    msg.kind = Kind::Resolved;
    msg.alert.ends_at = Some(timefmt::rfc3339(now));
    msg.alert
        .annotations
        .insert("summary".to_string(), format!("{what}: {outcome}"));
    msg.alert.annotations.insert(
        "description".to_string(),
        format!("The approval request is over: {outcome}. The record: {review_url}"),
    );
    msg.alert
        .annotations
        .insert("outcome".to_string(), outcome.to_string());
    msg
}

/// When each channel is told of a new request, in milliseconds after it
/// was asked: the rule's channels at once, then each step of its
/// escalation policy at the step's time (`@rule` standing for the rule's
/// channels), each channel once per time; steps at or past the request's
/// `timeout_ms` are left out (it has expired by then). A decision or an
/// expiry cancels what is still to come.
pub fn schedule(channels: &[String], steps: &[Step], timeout_ms: i64) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = channels.iter().map(|c| (0, c.clone())).collect();
    for step in steps {
        let at = i64::try_from(step.after_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        if at >= timeout_ms {
            continue;
        }
        for c in &step.channels {
            let named: Vec<String> = if c == crate::alerts::policies::RULE_CHANNELS {
                channels.to_vec()
            } else {
                vec![c.clone()]
            };
            for n in named {
                if !out.iter().any(|(t, o)| *t == at && *o == n) {
                    out.push((at, n));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{email, pagerduty, slack, webhook};

    fn sample() -> Message {
        use crate::db::approvals::tests::{request, rule};
        let mut row = request("ap1", 1_764_000_300_000);
        row.client_id = Some("c1".into());
        row.created_at = 1_764_000_000_000;
        let rule = RuleRow {
            name: "workflow-deletes".into(),
            ..rule()
        };
        let url = "https://agentry.example/approvals/ap1?link=sig";
        message(
            "n1",
            &row,
            &rule,
            "planner",
            url,
            "https://agentry.example/",
        )
    }

    #[test]
    fn the_rule_s_channels_go_at_once_and_the_policy_s_steps_in_their_time() {
        let step = |after: u64, channels: &[&str]| Step {
            after_seconds: after,
            channels: channels.iter().map(|c| c.to_string()).collect(),
            quarantine_agent: false,
        };
        let steps = [
            step(0, &["@rule"]),
            step(60, &["pagerduty", "@rule"]),
            step(600, &["cto"]),
        ];
        assert_eq!(
            schedule(&["slack".into()], &steps, 300_000),
            vec![
                (0, "slack".to_string()),
                (60_000, "pagerduty".to_string()),
                (60_000, "slack".to_string()),
            ]
        );
        assert!(schedule(&[], &[], 300_000).is_empty());
    }

    #[test]
    fn the_end_of_a_request_resolves_what_its_notice_opened() {
        use crate::db::approvals::tests::{request, rule};
        let row = request("ap1", 1_764_000_300_000);
        let url = "https://agentry.example/approvals/ap1?link=sig";
        let opening = message(
            "n2",
            &row,
            &rule(),
            "planner",
            url,
            "https://agentry.example",
        );
        let m = closing(opening, "approved by carol", 1_764_000_100_000);
        assert_eq!(
            m.alert.annotations["summary"],
            "agent:planner's call of delete_workflow on workflows: approved by carol"
        );
        let p = pagerduty::body(&m, "key").expect("a resolve");
        assert_eq!(p["event_action"], "resolve");
        assert_eq!(p["dedup_key"], "approval-ap1");
        let w = webhook::body(&m, "ops");
        assert_eq!(w["status"], "resolved");
        assert_eq!(
            w["alerts"][0]["annotations"]["outcome"],
            "approved by carol"
        );
        assert!(email::text(&m).contains("approved by carol"));
    }

    #[test]
    fn every_channel_carries_the_call_and_the_link() {
        let m = sample();
        let url = "https://agentry.example/approvals/ap1?link=sig";
        assert_eq!(
            m.title(),
            "[APPROVAL] agent:planner asks to call delete_workflow on workflows"
        );
        assert_eq!(email::subject(&m), m.title());
        assert!(email::text(&m).contains(url));
        let s = slack::body(&m).to_string();
        assert!(s.contains("delete_workflow") && s.contains(url), "{s}");
        let p = pagerduty::body(&m, "key").expect("a trigger");
        assert_eq!(p["event_action"], "trigger");
        assert_eq!(p["dedup_key"], "approval-ap1");
        assert_eq!(p["links"][0]["href"], url);
        let w = webhook::body(&m, "ops");
        let alert = &w["alerts"][0];
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["labels"]["tool"], "delete_workflow");
        assert_eq!(alert["labels"]["approval_id"], "ap1");
        assert_eq!(alert["labels"]["principal"], "agent:planner");
        assert_eq!(alert["labels"]["arguments_digest"], "d1");
        assert_eq!(alert["annotations"]["review_url"], url);
        assert!(!w.to_string().contains("sealed"), "no arguments");
    }
}
