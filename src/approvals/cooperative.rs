//! The cooperative path (SPEC §18): an agent (or the proxy in front of
//! it) asks the decision API before a risky action, naming the action's
//! arguments by their digest. A check of a permission an approval rule
//! holds, that the policy allows, is answered "not yet": approval is
//! required, and the answer names the request (new, or the pending one an
//! identical check already made). Once a person approves it, the next
//! identical check is allowed — once: the approval is used up by it.
//!
//! A check's request is bound like a gateway call's: `server` is the
//! resource checked (`type/id`, or `*` when the check names none) and
//! `tool` the permission.

use serde_json::Value;

use super::requests::{Approvals, Asked, Asker, Held};
use crate::audit::Context;
use crate::error::Result;
use crate::identity::Principal;

/// What a check under an approval rule comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// An approval bound to this exact check was used up by it.
    Approved { approval_id: String },
    /// Waiting for a person (a new request, or the pending one).
    Required {
        approval_id: String,
        expires_at: i64,
    },
    /// A rule holds the permission, but the check named no arguments:
    /// nothing to bind an approval to.
    DigestMissing { rule: String },
    /// The principal has too many requests waiting to ask another.
    TooMany,
}

/// A decision-API check that the policy allows.
pub struct Check<'c> {
    pub principal: &'c Principal,
    pub client_id: Option<&'c str>,
    pub permission: &'c str,
    /// `(type, id)` of the resource checked.
    pub resource: Option<(&'c str, &'c str)>,
    pub arguments: Option<&'c Value>,
    /// SHA-256 of the arguments in RFC 8785 canonical JSON (hex).
    pub digest: Option<&'c str>,
}

impl Approvals<'_> {
    /// The gate a rule puts on `check`, if one holds its permission.
    pub async fn gate(&self, ctx: &Context, check: &Check<'_>) -> Result<Option<Gate>> {
        let Some(rule) = self.rule_for_permission(check.permission).await? else {
            return Ok(None);
        };
        let Some(digest) = check.digest else {
            return Ok(Some(Gate::DigestMissing { rule: rule.name }));
        };
        let server = match check.resource {
            Some((kind, id)) => format!("{kind}/{id}"),
            None => "*".to_string(),
        };
        let asked = self
            .ask(
                ctx,
                &Asker {
                    principal: check.principal,
                    client_id: check.client_id,
                },
                &Held {
                    server: &server,
                    tool: check.permission,
                    arguments: check.arguments.unwrap_or(&Value::Null),
                    digest,
                },
                &rule,
            )
            .await?;
        Ok(Some(match asked {
            Asked::Proceed { approval_id } => Gate::Approved { approval_id },
            Asked::Wait {
                approval_id,
                expires_at,
                ..
            } => Gate::Required {
                approval_id,
                expires_at,
            },
            Asked::TooMany => Gate::TooMany,
        }))
    }
}
