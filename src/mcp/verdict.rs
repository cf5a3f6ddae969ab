//! The gateway's answer to one message, pure over the compiled policy and
//! the principal's state (as `rbac::decide` is, on which it builds):
//! allowed; step up (the principal holds the permission but the token's
//! scope lacks it: HTTP 403 `insufficient_scope` naming the scope to ask
//! for, and the client re-authorises); or denied (a JSON-RPC error naming
//! the reason).

use crate::identity::principals::PrincipalState;
use crate::rbac::decide::{admitted, decide, Question};
use crate::rbac::engine::{Policy, Subject};
use crate::rbac::patterns;

use super::policy::{McpResourceType, Need, CALL, PROMPT, READ};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed {
        granted_by: Vec<String>,
    },
    /// The scope a new token should carry: the token's, and what it lacks.
    StepUp {
        scope: Vec<String>,
        reason: String,
    },
    Denied {
        reason: String,
    },
}

/// Who asks, with what token scope (`None`: an API key, no scope).
pub struct Caller<'a> {
    pub subject: &'a Subject,
    pub state: Option<&'a PrincipalState>,
    pub scope: Option<&'a [String]>,
}

/// The verdict on `need`, for a message to the server `server` whose tool
/// settings map tools to `mapped` permissions.
pub fn verdict(
    policy: &Policy,
    caller: &Caller<'_>,
    server: &str,
    need: &Need,
    mapped: &[String],
) -> Verdict {
    match need {
        Need::Permission {
            permission,
            resource_type,
            resource_id,
        } => {
            let q = Question {
                subject: caller.subject,
                permission,
                resource: Some((resource_type.as_str(), resource_id)),
                scope: None,
            };
            let d = decide(policy, caller.state, &q);
            if !d.allowed {
                return Verdict::Denied { reason: d.reason };
            }
            scoped(caller.scope, &[permission.as_str()], d.granted_by)
        }
        Need::ServerAccess => server_access(policy, caller, server, mapped),
    }
}

/// Lifecycle messages need *some* access to the server: one of the
/// gateway's permissions (or a mapped one) on some resource under it.
fn server_access(policy: &Policy, caller: &Caller<'_>, server: &str, mapped: &[String]) -> Verdict {
    if let Err(reason) = admitted(caller.subject, caller.state) {
        return Verdict::Denied { reason };
    }
    let prefix = format!("{server}/");
    let mut candidates: Vec<(&str, McpResourceType)> = vec![
        (CALL, McpResourceType::Tool),
        (CALL, McpResourceType::Method),
        (READ, McpResourceType::Resource),
        (PROMPT, McpResourceType::Prompt),
    ];
    candidates.extend(mapped.iter().map(|p| (p.as_str(), McpResourceType::Tool)));
    let mut held: Vec<&str> = Vec::new();
    let mut granted_by = Vec::new();
    for (permission, kind) in candidates {
        let d = policy.check_under(caller.subject, permission, kind.as_str(), &prefix);
        if d.allowed && !held.contains(&permission) {
            held.push(permission);
            if granted_by.is_empty() {
                granted_by = d.granted_by;
            }
        }
    }
    if held.is_empty() {
        return Verdict::Denied {
            reason: format!("no role grants any access to MCP server {server}"),
        };
    }
    scoped(caller.scope, &held, granted_by)
}

/// Allowed when the token's scope (if any) carries one of `held`; else a
/// step up to the scope plus the first of them.
fn scoped(scope: Option<&[String]>, held: &[&str], granted_by: Vec<String>) -> Verdict {
    let Some(scope) = scope else {
        return Verdict::Allowed { granted_by };
    };
    if held.iter().any(|p| patterns::any_grants(scope, p)) {
        return Verdict::Allowed { granted_by };
    }
    let mut wanted: Vec<String> = scope.to_vec();
    wanted.push(held[0].to_string());
    Verdict::StepUp {
        scope: wanted,
        reason: format!("the token's scope does not include {}", held[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrincipalKind;
    use crate::rbac::engine::{Assignment, PolicyData};

    fn subject() -> Subject {
        Subject {
            kind: PrincipalKind::User,
            id: "u1".into(),
        }
    }

    /// Roles: `caller` holds mcp:call; `reader` holds knowledge:read.
    /// The subject gets the given assignments (role, optional scope).
    fn policy(assignments: &[(&str, Option<(&str, &str)>)]) -> Policy {
        let mut data = PolicyData::default();
        data.roles
            .insert("caller".into(), (vec!["mcp:call".into()], vec![]));
        data.roles
            .insert("reader".into(), (vec!["knowledge:read".into()], vec![]));
        data.assignments.insert(
            subject(),
            assignments
                .iter()
                .map(|(role, scope)| Assignment {
                    role: role.to_string(),
                    scope: scope.map(|(t, p)| (t.to_string(), p.to_string())),
                })
                .collect(),
        );
        Policy::compile(data)
    }

    fn state(enabled: bool) -> PrincipalState {
        PrincipalState {
            kind: PrincipalKind::User,
            id: "u1".into(),
            name: "ada".into(),
            enabled,
            tokens_not_before: None,
            quarantined_at: None,
            roles: vec![],
        }
    }

    fn tool(name: &str, permission: &str) -> Need {
        Need::Permission {
            permission: permission.into(),
            resource_type: McpResourceType::Tool,
            resource_id: format!("kb/{name}"),
        }
    }

    #[test]
    fn a_held_permission_outside_the_tokens_scope_is_a_step_up_not_a_denial() {
        let p = policy(&[("caller", None)]);
        let (s, st) = (subject(), state(true));
        let narrow = vec!["knowledge:read".to_string()];
        let unscoped = Caller {
            subject: &s,
            state: Some(&st),
            scope: None,
        };
        let scoped = Caller {
            subject: &s,
            state: Some(&st),
            scope: Some(&narrow),
        };
        assert!(matches!(
            verdict(&p, &unscoped, "kb", &tool("search", "mcp:call"), &[]),
            Verdict::Allowed { .. }
        ));
        assert_eq!(
            verdict(&p, &scoped, "kb", &tool("search", "mcp:call"), &[]),
            Verdict::StepUp {
                scope: vec!["knowledge:read".into(), "mcp:call".into()],
                reason: "the token's scope does not include mcp:call".into()
            }
        );
        // Not held at all: denied, whatever the scope.
        let d = verdict(&p, &scoped, "kb", &tool("read", "knowledge:read"), &[]);
        assert!(matches!(d, Verdict::Denied { .. }), "{d:?}");
    }

    #[test]
    fn scoped_assignments_cover_their_tools_and_give_access_to_the_server() {
        let p = policy(&[("caller", Some(("mcp_tool", "kb/search*")))]);
        let (s, st) = (subject(), state(true));
        let c = Caller {
            subject: &s,
            state: Some(&st),
            scope: None,
        };
        assert!(matches!(
            verdict(&p, &c, "kb", &tool("search_docs", "mcp:call"), &[]),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            verdict(&p, &c, "kb", &tool("delete_all", "mcp:call"), &[]),
            Verdict::Denied { .. }
        ));
        // initialize/ping on kb: some access; on another server: none.
        assert!(matches!(
            verdict(&p, &c, "kb", &Need::ServerAccess, &[]),
            Verdict::Allowed { .. }
        ));
        let other = verdict(&p, &c, "tickets", &Need::ServerAccess, &[]);
        assert_eq!(
            other,
            Verdict::Denied {
                reason: "no role grants any access to MCP server tickets".into()
            }
        );
    }

    #[test]
    fn server_access_counts_mapped_permissions_and_the_tokens_scope() {
        let p = policy(&[("reader", None)]);
        let (s, st) = (subject(), state(true));
        let mapped = vec!["knowledge:read".to_string()];
        let no_scope = Caller {
            subject: &s,
            state: Some(&st),
            scope: None,
        };
        // Only a mapped permission is held: access through it.
        assert!(matches!(
            verdict(&p, &no_scope, "kb", &Need::ServerAccess, &mapped),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            verdict(&p, &no_scope, "kb", &Need::ServerAccess, &[]),
            Verdict::Denied { .. }
        ));
        let other_scope = vec!["audit:read".to_string()];
        let narrow = Caller {
            subject: &s,
            state: Some(&st),
            scope: Some(&other_scope),
        };
        assert!(matches!(
            verdict(&p, &narrow, "kb", &Need::ServerAccess, &mapped),
            Verdict::StepUp { .. }
        ));
    }

    #[test]
    fn a_disabled_or_unknown_principal_is_denied_everything() {
        let p = policy(&[("caller", None)]);
        let (s, off) = (subject(), state(false));
        for st in [Some(&off), None] {
            let c = Caller {
                subject: &s,
                state: st,
                scope: None,
            };
            for need in [Need::ServerAccess, tool("search", "mcp:call")] {
                assert!(
                    matches!(verdict(&p, &c, "kb", &need, &[]), Verdict::Denied { .. }),
                    "{need:?}"
                );
            }
        }
    }
}
