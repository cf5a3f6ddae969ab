//! Approval rules: what they say and the checks on them (no I/O).

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
use crate::names::{valid_alerting_name, ALERTING_NAME_RULE};

/// Default time a held call waits for a decision.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 300;
/// Bounds of `timeout_seconds`: from 10 seconds to a day.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 10..=86_400;
/// Longest tool glob.
pub const MAX_TOOLS_GLOB: usize = 200;
/// Most channels a rule notifies.
pub const MAX_CHANNELS: usize = 16;

/// A rule as an administrator writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "workflow-deletes", "server": "workflows", "tools": "delete_*", "approver_role": "workflow_manager", "timeout_seconds": 300, "channels": ["ops-slack"]}))]
pub struct ApprovalRuleSpec {
    #[schema(value_type = crate::formats::AlertingName)]
    pub name: String,
    /// An MCP server's name, or `*` for every server.
    #[schema(min_length = 1, max_length = 64)]
    pub server: String,
    /// A glob of tool names (`delete_*`, `*`), no spaces.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub tools: String,
    /// Decision-API checks of this permission need approval too.
    #[serde(default)]
    #[schema(value_type = Option<crate::formats::Permission>)]
    pub permission: Option<String>,
    /// Who may approve: holders of this role (never the requester).
    #[schema(value_type = crate::formats::LowerSnake)]
    pub approver_role: String,
    #[serde(default = "default_timeout")]
    #[schema(minimum = 10, maximum = 86400, default = 300)]
    pub timeout_seconds: u32,
    /// Notification channels told of each request.
    #[serde(default)]
    #[schema(max_items = 16, value_type = Vec<crate::formats::AlertingName>)]
    pub channels: Vec<String>,
    /// An escalation policy for requests left undecided.
    #[serde(default)]
    #[schema(value_type = Option<crate::formats::AlertingName>)]
    pub escalation_policy: Option<String>,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

impl ApprovalRuleSpec {
    /// Field errors of the spec that need no database (the role, channels
    /// and policy named are checked against the store).
    pub fn check(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        if !valid_alerting_name(&self.name) {
            e.insert("name".into(), ALERTING_NAME_RULE.into());
        }
        if self.server != "*" && !valid_alerting_name(&self.server) {
            e.insert(
                "server".into(),
                "an MCP server's name, or \"*\" for every server".into(),
            );
        }
        let tools_ok = !self.tools.is_empty()
            && self.tools.len() <= MAX_TOOLS_GLOB
            && !self
                .tools
                .chars()
                .any(|c| c.is_control() || c.is_whitespace());
        if !tools_ok {
            e.insert(
                "tools".into(),
                format!("a glob of tool names, 1 to {MAX_TOOLS_GLOB} characters, no spaces"),
            );
        }
        if let Some(p) = &self.permission {
            if !crate::rbac::patterns::valid_permission(p) {
                e.insert(
                    "permission".into(),
                    "not a permission (`resource:action`)".into(),
                );
            }
        }
        if !crate::names::is_lower_snake(&self.approver_role) {
            e.insert(
                "approver_role".into(),
                "a role name (lower_snake_case)".into(),
            );
        }
        if !TIMEOUT_RANGE.contains(&self.timeout_seconds) {
            e.insert(
                "timeout_seconds".into(),
                format!(
                    "{} to {} seconds",
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            );
        }
        if self.channels.len() > MAX_CHANNELS {
            e.insert("channels".into(), format!("at most {MAX_CHANNELS}"));
        } else if let Some(bad) = self.channels.iter().find(|c| !valid_alerting_name(c)) {
            e.insert("channels".into(), format!("{bad:?}: {ALERTING_NAME_RULE}"));
        }
        if let Some(p) = &self.escalation_policy {
            if !valid_alerting_name(p) {
                e.insert("escalation_policy".into(), ALERTING_NAME_RULE.into());
            }
        }
        e
    }

    /// Whether a call to `tool` on `server` falls under this rule.
    pub fn covers(&self, server: &str, tool: &str) -> bool {
        covers(&self.server, &self.tools, server, tool)
    }
}

/// Whether a rule for `rule_server` (a name or `*`) and the glob
/// `rule_tools` holds a call of `tool` on `server`.
pub fn covers(rule_server: &str, rule_tools: &str, server: &str, tool: &str) -> bool {
    (rule_server == "*" || rule_server == server) && crate::rbac::glob::glob_match(rule_tools, tool)
}

/// The channels a stored rule notifies.
pub fn channels_of(rule: &crate::db::approvals::RuleRow) -> Vec<String> {
    serde_json::from_str(&rule.channels).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ApprovalRuleSpec {
        ApprovalRuleSpec {
            name: "workflow-deletes".into(),
            server: "workflows".into(),
            tools: "delete_*".into(),
            permission: None,
            approver_role: "workflow_manager".into(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            channels: vec!["ops-slack".into()],
            escalation_policy: None,
        }
    }

    #[test]
    fn a_sound_rule_passes_and_each_bad_field_is_named() {
        assert!(spec().check().is_empty());
        let bad = [
            (
                "name",
                ApprovalRuleSpec {
                    name: "Bad Name".into(),
                    ..spec()
                },
            ),
            (
                "server",
                ApprovalRuleSpec {
                    server: "".into(),
                    ..spec()
                },
            ),
            (
                "tools",
                ApprovalRuleSpec {
                    tools: "".into(),
                    ..spec()
                },
            ),
            (
                "tools",
                ApprovalRuleSpec {
                    tools: "a b".into(),
                    ..spec()
                },
            ),
            (
                "permission",
                ApprovalRuleSpec {
                    permission: Some("nope".into()),
                    ..spec()
                },
            ),
            (
                "approver_role",
                ApprovalRuleSpec {
                    approver_role: "Ops".into(),
                    ..spec()
                },
            ),
            (
                "timeout_seconds",
                ApprovalRuleSpec {
                    timeout_seconds: 5,
                    ..spec()
                },
            ),
            (
                "timeout_seconds",
                ApprovalRuleSpec {
                    timeout_seconds: 100_000,
                    ..spec()
                },
            ),
            (
                "channels",
                ApprovalRuleSpec {
                    channels: vec!["bad name".into()],
                    ..spec()
                },
            ),
            (
                "escalation_policy",
                ApprovalRuleSpec {
                    escalation_policy: Some("x y".into()),
                    ..spec()
                },
            ),
        ];
        for (field, s) in bad {
            assert!(s.check().contains_key(field), "{field}: {:?}", s.check());
        }
    }

    #[test]
    fn a_rule_covers_its_server_and_tools() {
        let r = spec();
        assert!(r.covers("workflows", "delete_workflow"));
        assert!(!r.covers("workflows", "list_workflows"));
        assert!(!r.covers("other", "delete_workflow"));
        let any = ApprovalRuleSpec {
            server: "*".into(),
            ..spec()
        };
        assert!(any.covers("other", "delete_workflow"));
    }
}
