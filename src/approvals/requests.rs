//! Approval requests (SPEC §18): asked for a covered call (or joined, or
//! used when already approved), decided by an approver (never the
//! requester), expired when nobody decides in time. Arguments are sealed
//! at rest and shown to approvers only. Every step is audited.

use std::sync::Arc;

use serde_json::Value;

use super::binding::{self, Call, DecisionRefused, Verdict};
use super::live::Live;
use super::{links, notice, ApprovalState};
use crate::audit::{Audit, Context, Outcome};
use crate::crypto::DerivedKey;
use crate::db::approvals::{self as repo, ApprovalRow, Request, RuleRow};
use crate::db::{self, Db};
use crate::encryption::keyring::KeyRing;
use crate::error::{Error, Result};
use crate::identity::Principal;
use crate::notify::outbox::{self, About, Outbox};

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
    /// The principal already has [`MAX_PENDING`] requests waiting: no new
    /// one is made (a flood of distinct calls cannot flood the approvers).
    TooMany,
}

/// Requests one principal may have waiting at once.
pub const MAX_PENDING: i64 = 20;

/// Where a decision was made (kept on its audit record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Page,
    /// The page a notification's signed link led to.
    NotificationLink,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Page => "page",
            Via::NotificationLink => "notification_link",
        }
    }
}

/// An approver's decision on a request: which, why, and where it was
/// made.
#[derive(Debug, Clone, Copy)]
pub struct Ruling<'r> {
    pub decision: Decision,
    pub reason: Option<&'r str>,
    pub via: Via,
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
    pub policy: &'a crate::rbac::view::PolicyView,
    pub live: &'a Live,
    /// Signs the links notifications carry.
    pub link_key: &'a DerivedKey,
    /// `public_url`: where links lead.
    pub external_url: &'a str,
    pub outbox: &'a Outbox,
}

/// Who asks for a call, through which client.
pub struct Asker<'p> {
    pub principal: &'p Principal,
    pub client_id: Option<&'p str>,
}

/// The call a rule holds: where, which tool (or, for a decision-API
/// check, the permission's resource), its arguments (if known) and their
/// digest.
pub struct Held<'c> {
    pub server: &'c str,
    pub tool: &'c str,
    pub arguments: &'c Value,
    pub digest: &'c str,
}

impl Approvals<'_> {
    /// The rules, as of the last audited change.
    pub async fn rules(&self) -> Result<Arc<Vec<RuleRow>>> {
        let generation = self.audit.generation();
        if let Some(rules) = self.live.rules_at(generation) {
            return Ok(rules);
        }
        let rows = self.db.read(repo::rules).await?;
        Ok(self.live.keep_rules(generation, rows))
    }

    /// The first rule (by name) that holds a call of `tool` on `server`.
    pub async fn rule_for_call(&self, server: &str, tool: &str) -> Result<Option<RuleRow>> {
        Ok(self
            .rules()
            .await?
            .iter()
            .find(|r| super::rules::covers(&r.server, &r.tools, server, tool))
            .cloned())
    }

    /// The first rule (by name) that holds decision-API checks of
    /// `permission`.
    pub async fn rule_for_permission(&self, permission: &str) -> Result<Option<RuleRow>> {
        Ok(self
            .rules()
            .await?
            .iter()
            .find(|r| r.permission.as_deref() == Some(permission))
            .cloned())
    }

    /// A call `rule` holds: it goes ahead on an approved request bound to
    /// it (using it up), waits on a pending one (a retry joins), or waits
    /// on a new request, whose rule's channels are told in the same
    /// transaction.
    pub async fn ask(
        &self,
        ctx: &Context,
        asker: &Asker<'_>,
        held: &Held<'_>,
        rule: &RuleRow,
    ) -> Result<Asked> {
        // One ask at a time: what is stored is read, decided and written
        // without another identical call slipping in between.
        let _one = self.live.asking.lock().await;
        let principal = asker.principal;
        let (pid, srv, tl, dg) = (
            principal.id.clone(),
            held.server.to_string(),
            held.tool.to_string(),
            held.digest.to_string(),
        );
        let bound: Vec<Request> = self
            .db
            .read(move |c| repo::bound(c, &pid, &srv, &tl, &dg))
            .await?
            .into_iter()
            .map(|r| r.binding)
            .collect();
        let now = db::now_ms();
        let call = Call {
            principal_type: principal.kind.as_str(),
            principal_id: &principal.id,
            server: held.server,
            tool: held.tool,
            arguments_digest: held.digest,
            rule_id: &rule.id,
            rule_version: rule.version,
        };
        match binding::decide(&call, &bound, now) {
            Verdict::Proceed { approval_id } => {
                if self.use_up(ctx, &approval_id).await? {
                    return Ok(Asked::Proceed { approval_id });
                }
                // Expired this very moment: ask anew.
            }
            Verdict::Join { approval_id } => {
                let expires_at = bound
                    .iter()
                    .find(|r| r.id == approval_id)
                    .map_or(now, |r| r.expires_at);
                return Ok(Asked::Wait {
                    approval_id,
                    expires_at,
                    new: false,
                });
            }
            Verdict::Ask => {}
        }
        let (ptype, pid) = (principal.kind.as_str().to_string(), principal.id.clone());
        let waiting = self
            .db
            .read(move |c| repo::pending_of(c, &ptype, &pid, now))
            .await?;
        if waiting >= MAX_PENDING {
            let event = ctx
                .event("approval.request", Outcome::Denied)
                .detail("server", held.server)
                .detail("tool", held.tool)
                .detail("rule", &rule.name)
                .reason(format!(
                    "{MAX_PENDING} requests of this principal are already waiting"
                ));
            self.audit.record(event).await?;
            return Ok(Asked::TooMany);
        }
        self.insert(ctx, asker, held, rule, now).await
    }

    /// Writes a new pending request and its notifications.
    async fn insert(
        &self,
        ctx: &Context,
        asker: &Asker<'_>,
        held: &Held<'_>,
        rule: &RuleRow,
        now: i64,
    ) -> Result<Asked> {
        let id = db::new_id();
        let sealed = self
            .keyring
            .seal_json(
                self.db,
                self.audit,
                CLASSIFICATION,
                held.arguments,
                &context(&id),
            )
            .await?;
        let expires_at = now + rule.timeout_seconds * 1000;
        let principal = asker.principal;
        let row = ApprovalRow {
            binding: Request {
                id: id.clone(),
                principal_type: principal.kind.as_str().to_string(),
                principal_id: principal.id.clone(),
                server: held.server.to_string(),
                tool: held.tool.to_string(),
                arguments_digest: held.digest.to_string(),
                rule_id: rule.id.clone(),
                rule_version: rule.version,
                state: ApprovalState::Pending,
                expires_at,
            },
            client_id: asker.client_id.map(str::to_string),
            arguments: sealed,
            created_at: now,
            decided_at: None,
            decided_by_type: None,
            decided_by_id: None,
            reason: None,
            used_at: None,
        };
        let review_url = links::review_url(self.link_key, self.external_url, &id);
        let (rule_row, requester, external_url) = (
            rule.clone(),
            principal.name.clone(),
            self.external_url.to_string(),
        );
        let event = ctx
            .event("approval.request", Outcome::Success)
            .target("approval", &id)
            .detail("server", held.server)
            .detail("tool", held.tool)
            .detail("arguments_digest", held.digest)
            .detail("rule", &rule.name)
            .detail("rule_version", rule.version)
            .detail("expires_at", expires_at);
        let told = self
            .audit
            .apply_uncached(event, move |c| {
                repo::insert(c, &row)?;
                let rule = &rule_row;
                let steps = match &rule.escalation_policy {
                    Some(p) => db::alert_rules::policy_by_name(c, p)?
                        .map(|p| p.steps)
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                let timeout_ms = rule.timeout_seconds * 1000;
                let plan = notice::schedule(&super::rules::channels_of(rule), &steps, timeout_ms);
                for (after, channel) in &plan {
                    let msg = notice::message(
                        &db::new_id(),
                        &row,
                        rule,
                        &requester,
                        &review_url,
                        &external_url,
                    );
                    let channel_id = db::channels::by_name(c, channel)?.map(|ch| ch.id);
                    outbox::enqueue_message(
                        c,
                        &msg,
                        About::Approval(&row.binding.id),
                        channel,
                        channel_id.as_deref(),
                        now + after,
                    )?;
                }
                Ok(!plan.is_empty())
            })
            .await?;
        if told {
            self.outbox.wake();
        }
        Ok(Asked::Wait {
            approval_id: id,
            expires_at,
            new: true,
        })
    }

    /// Uses an approved request for its call (audited); false when it is
    /// no longer approved (used by an identical call, or expired).
    pub async fn use_up(&self, ctx: &Context, id: &str) -> Result<bool> {
        let event = ctx
            .event("approval.use", Outcome::Success)
            .target("approval", id);
        let aid = id.to_string();
        let used = self
            .audit
            .apply_uncached(event, move |c| {
                if repo::use_approval(c, &aid, db::now_ms())? {
                    Ok(())
                } else {
                    Err(Error::Conflict(
                        "the approval is no longer there to use (used or expired)".into(),
                    ))
                }
            })
            .await;
        match used {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Approves or denies a pending request. `approver_holds_role`: the
    /// approver holds the rule's approver role (or approval:manage).
    pub(super) async fn decide(
        &self,
        ctx: &Context,
        approver: &Principal,
        approver_holds_role: bool,
        id: &str,
        ruling: &Ruling<'_>,
    ) -> Result<ApprovalRow> {
        let Ruling {
            decision,
            reason,
            via,
        } = *ruling;
        let (action, to) = match decision {
            Decision::Approve => ("approval.approve", ApprovalState::Approved),
            Decision::Deny => ("approval.deny", ApprovalState::Denied),
        };
        let event = ctx
            .event(action, Outcome::Success)
            .target("approval", id)
            .detail("via", via.as_str());
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
        let outcome = format!("{to} by {}", approver.name);
        let linker = self.linker();
        let decided = self
            .audit
            .apply_uncached(event, move |c| {
                if !repo::decide(c, &aid, to, &kind, &who, reason.as_deref(), now)? {
                    return Err(Error::Conflict("the request was decided meanwhile".into()));
                }
                let told = end_notices(c, &aid, &outcome, &linker, now)?;
                let row = repo::get(c, &aid)?
                    .ok_or_else(|| Error::NotFound(format!("approval {aid}")))?;
                Ok((row, told))
            })
            .await;
        let decided = decided.map(|(row, told)| {
            if told {
                self.outbox.wake();
            }
            row
        });
        if decided.is_ok() {
            self.live.wake();
        }
        decided
    }

    /// Expires what nobody decided (or used) in time; returns their ids.
    pub async fn expire(&self, ctx: &Context) -> Result<Vec<String>> {
        let now = db::now_ms();
        let linker = self.linker();
        let (ids, told) = self
            .db
            .write(move |c| {
                let ids = repo::expire(c, now)?;
                let mut told = false;
                for id in &ids {
                    told |= end_notices(c, id, "expired", &linker, now)?;
                }
                Ok((ids, told))
            })
            .await?;
        if told {
            self.outbox.wake();
        }
        if !ids.is_empty() {
            self.live.wake();
        }
        let records = ids
            .iter()
            .map(|id| {
                ctx.event("approval.expire", Outcome::Success)
                    .target("approval", id)
            })
            .collect();
        self.audit.record_many(records).await?;
        Ok(ids)
    }

    fn linker(&self) -> Linker {
        Linker {
            key: self.link_key.clone(),
            external_url: self.external_url.to_string(),
        }
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

/// Makes the links of notifications written inside a transaction.
struct Linker {
    key: DerivedKey,
    external_url: String,
}

/// The name of a requester or approver (`type:id` when it is gone).
pub(super) fn principal_name(c: &rusqlite::Connection, kind: &str, id: &str) -> Result<String> {
    let name = match kind {
        "user" => db::users::by_id(c, id)?.map(|u| u.username),
        "agent" => db::agents::by_id(c, id)?.map(|a| a.name),
        _ => None,
    };
    Ok(name.unwrap_or_else(|| format!("{kind}:{id}")))
}

/// The end of request `id` (`outcome`: `approved by carol`, `expired`) in
/// the notifications: what was still to come is dropped, and the channels
/// told of the request are told how it ended (a resolved alert of the same
/// fingerprint: a PagerDuty incident closes). True when any was queued.
fn end_notices(
    c: &rusqlite::Connection,
    id: &str,
    outcome: &str,
    linker: &Linker,
    now: i64,
) -> Result<bool> {
    db::notifications::cancel_for_approval(c, id, now)?;
    let told = db::notifications::told_approval(c, id)?;
    let Some(row) = repo::get(c, id)? else {
        return Ok(false);
    };
    let Some(rule) = repo::get_rule(c, &row.binding.rule_id)? else {
        return Ok(false);
    };
    if told.is_empty() {
        return Ok(false);
    }
    let b = &row.binding;
    let requester = principal_name(c, &b.principal_type, &b.principal_id)?;
    let review_url = links::review_url(&linker.key, &linker.external_url, id);
    for (channel, channel_id) in &told {
        let opening = notice::message(
            &db::new_id(),
            &row,
            &rule,
            &requester,
            &review_url,
            &linker.external_url,
        );
        let msg = notice::closing(opening, outcome, now);
        outbox::enqueue_message(
            c,
            &msg,
            About::Approval(id),
            channel,
            channel_id.as_deref(),
            now,
        )?;
    }
    Ok(true)
}
