//! Who sees and decides which approval requests (SPEC §18), one answer
//! for the API and the pages: holders of the rule's approver role (people:
//! a person says yes) and holders of `approval:manage` see a request with
//! its arguments and decide it; a requester sees its own, without
//! deciding; anybody else is told it does not exist.

use std::collections::HashMap;

use super::requests::{Approvals, Ruling};
use super::ApprovalState;
use crate::audit::Context;
use crate::db::approvals::{self as repo, ApprovalRow, RuleRow};
use crate::error::{Error, Result};
use crate::identity::{Principal, PrincipalKind};
use crate::rbac::Permission;

/// Longest reason an approver may give.
pub const MAX_REASON: usize = 500;

/// What a principal may do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub see_arguments: bool,
    /// Holds the approver role or approval:manage (four eyes aside).
    pub may_decide: bool,
    pub may_see: bool,
    /// The principal asked for it (and so may not decide it).
    pub own: bool,
}

/// A request as one principal sees it.
pub struct Seen {
    pub row: ApprovalRow,
    pub rule: Option<RuleRow>,
    pub standing: Standing,
}

impl Approvals<'_> {
    async fn is_manager(&self, p: &Principal) -> Result<bool> {
        let policy = self.policy.get(self.db, self.audit).await?;
        let subject = crate::rbac::subject_of(p);
        Ok(policy
            .check(&subject, Permission::ApprovalManage.as_str(), None)
            .allowed)
    }

    /// Whether `p` is a person holding `role` (approvers are people).
    async fn holds(&self, p: &Principal, role: &str) -> Result<bool> {
        if p.kind != PrincipalKind::User {
            return Ok(false);
        }
        let (uid, roles) = (p.id.clone(), vec![role.to_string()]);
        self.db
            .read(move |c| crate::db::roles::user_holds_any(c, &uid, &roles))
            .await
    }

    /// What `p` may do with `row`, given whether it is a manager and
    /// whether it holds the rule's approver role.
    fn standing(p: &Principal, manager: bool, approver: bool, row: &ApprovalRow) -> Standing {
        let own = row.binding.principal_type == p.kind.as_str() && row.binding.principal_id == p.id;
        Standing {
            see_arguments: manager || approver,
            may_decide: manager || approver,
            may_see: manager || approver || own,
            own,
        }
    }

    /// Request `id` as `p` sees it; not found when `p` may not see it
    /// (ids of others' requests say nothing).
    pub async fn seen(&self, p: &Principal, id: &str) -> Result<Seen> {
        let aid = id.to_string();
        let found = self
            .db
            .read(move |c| {
                let Some(row) = repo::get(c, &aid)? else {
                    return Ok(None);
                };
                let rule = repo::get_rule(c, &row.binding.rule_id)?;
                Ok(Some((row, rule)))
            })
            .await?;
        let not_found = || Error::NotFound(format!("approval {id}"));
        let (row, rule) = found.ok_or_else(not_found)?;
        let manager = self.is_manager(p).await?;
        let approver = match &rule {
            Some(r) => self.holds(p, &r.approver_role).await?,
            None => false,
        };
        let standing = Self::standing(p, manager, approver, &row);
        if !standing.may_see {
            return Err(not_found());
        }
        Ok(Seen {
            row,
            rule,
            standing,
        })
    }

    /// The requests `p` may see, newest first, at most `limit`: those in
    /// `state` (as of now: a pending request past its time is expired),
    /// or every state.
    pub async fn visible(
        &self,
        p: &Principal,
        state: Option<ApprovalState>,
        limit: u32,
    ) -> Result<Vec<Seen>> {
        let (rows, rules) = self
            .db
            .read(move |c| {
                let rows = match state {
                    Some(s) => repo::in_state(c, s, limit)?,
                    None => repo::recent(c, limit)?,
                };
                Ok((rows, repo::rules(c)?))
            })
            .await?;
        let manager = self.is_manager(p).await?;
        // Whether p holds each rule's approver role, asked once per role.
        let mut holds: HashMap<String, bool> = HashMap::new();
        let now = crate::db::now_ms();
        let mut out = Vec::new();
        for row in rows {
            if state.is_some_and(|s| row.binding.state_at(now) != s) {
                continue;
            }
            let rule = rules.iter().find(|r| r.id == row.binding.rule_id).cloned();
            let approver = match &rule {
                Some(r) => match holds.get(&r.approver_role) {
                    Some(h) => *h,
                    None => {
                        let h = self.holds(p, &r.approver_role).await?;
                        holds.insert(r.approver_role.clone(), h);
                        h
                    }
                },
                None => false,
            };
            let standing = Self::standing(p, manager, approver, &row);
            if standing.may_see {
                out.push(Seen {
                    row,
                    rule,
                    standing,
                });
            }
        }
        Ok(out)
    }

    /// `p` approves or denies request `id`, with an optional reason.
    pub async fn decide_as(
        &self,
        ctx: &Context,
        p: &Principal,
        id: &str,
        ruling: Ruling<'_>,
    ) -> Result<Seen> {
        let reason = ruling.reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON) {
            return Err(Error::field(
                "reason",
                format!("at most {MAX_REASON} characters"),
            ));
        }
        let seen = self.seen(p, id).await?;
        let row = self
            .decide(
                ctx,
                p,
                seen.standing.may_decide,
                id,
                &Ruling { reason, ..ruling },
            )
            .await?;
        Ok(Seen { row, ..seen })
    }

    /// The name of a requester or approver (`type:id` when it is gone).
    pub async fn name_of(&self, kind: &str, id: &str) -> Result<String> {
        let (k, i) = (kind.to_string(), id.to_string());
        self.db
            .read(move |c| super::requests::principal_name(c, &k, &i))
            .await
    }
}
