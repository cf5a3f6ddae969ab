//! Approval requests (SPEC §18): asked for a covered call (or joined, or
//! used when already approved), decided by an approver (never the
//! requester), expired when nobody decides in time. Arguments are sealed
//! at rest and shown to approvers only. Every step is audited.

use serde_json::Value;

use super::binding::{self, Call, DecisionRefused, Verdict};
use super::ApprovalState;
use crate::audit::{Audit, Context, Outcome};
use crate::db::approvals::{self as repo, ApprovalRow, Request, RuleRow};
use crate::db::{self, Db};
use crate::encryption::keyring::KeyRing;
use crate::error::{Error, Result};
use crate::identity::Principal;

/// What the keyring seals a request's arguments under.
pub const CLASSIFICATION: &str = "restricted";

fn context(id: &str) -> String {
    format!("approval:{id}")
}

/// What became of a covered call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// An approval bound it and is now used: the call goes ahead.
    Proceed { approval_id: String },
    /// It waits on this request (new, or joined).
    Wait {
        approval_id: String,
        expires_at: i64,
        new: bool,
    },
}

/// A decision an approver asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

pub struct Approvals<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub keyring: &'a KeyRing,
}

impl Approvals<'_> {
    /// A call `rule` covers, by `principal` (through `client_id`), with
    /// these arguments and their digest.
    #[allow(clippy::too_many_arguments)]
    pub async fn ask(
        &self,
        ctx: &Context,
        principal: &Principal,
        client_id: Option<&str>,
        server: &str,
        tool: &str,
        arguments: &Value,
        digest: &str,
        rule: &RuleRow,
    ) -> Result<Asked> {
        let call_of = |p: &Principal| {
            (
                p.kind.as_str().to_string(),
                p.id.clone(),
                server.to_string(),
                tool.to_string(),
                digest.to_string(),
                rule.id.clone(),
                rule.version,
            )
        };
        let (ptype, pid, srv, tl, dg, rid, rver) = call_of(principal);
        let id = db::new_id();
        let sealed = self
            .keyring
            .seal_json(
                self.db,
                self.audit,
                CLASSIFICATION,
                arguments,
                &context(&id),
            )
            .await?;
        let now = db::now_ms();
        let expires_at = now + rule.timeout_seconds * 1000;
        let row = ApprovalRow {
            binding: Request {
                id: id.clone(),
                principal_type: ptype.clone(),
                principal_id: pid.clone(),
                server: srv.clone(),
                tool: tl.clone(),
                arguments_digest: dg.clone(),
                rule_id: rid.clone(),
                rule_version: rver,
                state: ApprovalState::Pending,
                expires_at,
            },
            client_id: client_id.map(str::to_string),
            arguments: sealed,
            created_at: now,
            decided_at: None,
            decided_by_type: None,
            decided_by_id: None,
            reason: None,
            used_at: None,
        };
        let event = ctx
            .event("approval.request", Outcome::Success)
            .target("approval", &id)
            .detail("server", server)
            .detail("tool", tool)
            .detail("arguments_digest", digest)
            .detail("rule", &rule.name);
        // Decided again inside the transaction: two identical calls racing
        // make one request.
        self.audit
            .apply_uncached(event, move |c| {
                let bound: Vec<Request> = repo::bound(c, &pid, &srv, &tl, &dg)?
                    .into_iter()
                    .map(|r| r.binding)
                    .collect();
                let call = Call {
                    principal_type: &ptype,
                    principal_id: &pid,
                    server: &srv,
                    tool: &tl,
                    arguments_digest: &dg,
                    rule_id: &rid,
                    rule_version: rver,
                };
                match binding::decide(&call, &bound, now) {
                    Verdict::Proceed { approval_id } => {
                        if repo::use_approval(c, &approval_id, now)? {
                            Ok(Asked::Proceed { approval_id })
                        } else {
                            Err(Error::Conflict("the approval was used meanwhile".into()))
                        }
                    }
                    Verdict::Join { approval_id } => {
                        let expires_at = bound
                            .iter()
                            .find(|r| r.id == approval_id)
                            .map_or(expires_at, |r| r.expires_at);
                        Ok(Asked::Wait {
                            approval_id,
                            expires_at,
                            new: false,
                        })
                    }
                    Verdict::Ask => {
                        repo::insert(c, &row)?;
                        Ok(Asked::Wait {
                            approval_id: row.binding.id.clone(),
                            expires_at,
                            new: true,
                        })
                    }
                }
            })
            .await
    }

    /// Approves or denies a pending request. `approver_holds_role`: the
    /// approver holds the rule's approver role (or approval:manage).
    pub async fn decide(
        &self,
        ctx: &Context,
        approver: &Principal,
        approver_holds_role: bool,
        id: &str,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<ApprovalRow> {
        let (action, to) = match decision {
            Decision::Approve => ("approval.approve", ApprovalState::Approved),
            Decision::Deny => ("approval.deny", ApprovalState::Denied),
        };
        let event = ctx.event(action, Outcome::Success).target("approval", id);
        let event = match reason {
            Some(r) => event.reason(r.to_string()),
            None => event,
        };
        let aid = id.to_string();
        let row = self
            .db
            .read(move |c| repo::get(c, &aid))
            .await?
            .ok_or_else(|| Error::NotFound(format!("approval {id}")))?;
        if !approver_holds_role {
            return Err(self
                .audit
                .fail(
                    event,
                    Error::Forbidden("only holders of the rule's approver role decide".into()),
                )
                .await);
        }
        let now = db::now_ms();
        if let Err(refused) =
            binding::may_decide(&row.binding, approver.kind.as_str(), &approver.id, now)
        {
            let e = match refused {
                DecisionRefused::OwnRequest => {
                    Error::Forbidden("an approver cannot decide their own request".into())
                }
                DecisionRefused::NotPending(s) => {
                    Error::Conflict(format!("the request is {s}, not pending"))
                }
            };
            return Err(self.audit.fail(event, e).await);
        }
        let (aid, kind, who) = (
            id.to_string(),
            approver.kind.as_str().to_string(),
            approver.id.clone(),
        );
        let reason = reason.map(str::to_string);
        self.audit
            .apply_uncached(event, move |c| {
                if !repo::decide(c, &aid, to, &kind, &who, reason.as_deref(), now)? {
                    return Err(Error::Conflict("the request was decided meanwhile".into()));
                }
                repo::get(c, &aid)?.ok_or_else(|| Error::NotFound(format!("approval {aid}")))
            })
            .await
    }

    /// Expires what nobody decided (or used) in time; returns their ids.
    pub async fn expire(&self, ctx: &Context) -> Result<Vec<String>> {
        let now = db::now_ms();
        let ids = self.db.write(move |c| repo::expire(c, now)).await?;
        for id in &ids {
            self.audit
                .record(
                    ctx.event("approval.expire", Outcome::Success)
                        .target("approval", id),
                )
                .await?;
        }
        Ok(ids)
    }

    /// The call's arguments, for approvers.
    pub async fn arguments(&self, row: &ApprovalRow) -> Result<Value> {
        self.keyring
            .open_json(
                self.db,
                self.audit,
                &row.arguments,
                &context(&row.binding.id),
            )
            .await
    }
}
