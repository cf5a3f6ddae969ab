//! Approval rules' store: create, replace, delete (audited, checked
//! against the roles, channels and escalation policies they name).

use crate::audit::{Audit, Context, Outcome};
use crate::db::approvals::{self as repo, RuleRow};
use crate::db::{self, Db};
use crate::error::{Error, FieldErrors, Result};

use super::rules::ApprovalRuleSpec;

/// Field errors of names the spec refers to that do not exist.
fn check_references(c: &rusqlite::Connection, s: &ApprovalRuleSpec) -> Result<FieldErrors> {
    let mut e = FieldErrors::new();
    if db::roles::get_role(c, &s.approver_role)?.is_none() {
        e.insert(
            "approver_role".into(),
            format!("no role named {}", s.approver_role),
        );
    }
    if let Some(missing) = s
        .channels
        .iter()
        .find(|ch| matches!(db::channels::by_name(c, ch), Ok(None)))
    {
        e.insert("channels".into(), format!("no channel named {missing}"));
    }
    if let Some(p) = &s.escalation_policy {
        if db::alert_rules::policy_by_name(c, p)?.is_none() {
            e.insert(
                "escalation_policy".into(),
                format!("no escalation policy named {p}"),
            );
        }
    }
    Ok(e)
}

fn row_of(
    id: String,
    s: &ApprovalRuleSpec,
    version: i64,
    created_at: i64,
    now: i64,
) -> Result<RuleRow> {
    Ok(RuleRow {
        id,
        name: s.name.clone(),
        server: s.server.clone(),
        tools: s.tools.clone(),
        permission: s.permission.clone(),
        approver_role: s.approver_role.clone(),
        timeout_seconds: i64::from(s.timeout_seconds),
        channels: serde_json::to_string(&s.channels).map_err(Error::internal)?,
        escalation_policy: s.escalation_policy.clone(),
        version,
        created_at,
        updated_at: now,
    })
}

/// The spec a stored rule says.
pub fn spec_of(r: &RuleRow) -> ApprovalRuleSpec {
    ApprovalRuleSpec {
        name: r.name.clone(),
        server: r.server.clone(),
        tools: r.tools.clone(),
        permission: r.permission.clone(),
        approver_role: r.approver_role.clone(),
        timeout_seconds: u32::try_from(r.timeout_seconds).unwrap_or(u32::MAX),
        channels: super::rules::channels_of(r),
        escalation_policy: r.escalation_policy.clone(),
    }
}

async fn checked(
    audit: &Audit,
    event: &crate::audit::Event,
    spec: &ApprovalRuleSpec,
) -> Result<()> {
    let errors = spec.check();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(audit.fail(event.clone(), Error::fields(errors)).await)
    }
}

pub async fn create(audit: &Audit, ctx: &Context, spec: ApprovalRuleSpec) -> Result<RuleRow> {
    let id = db::new_id();
    let event = ctx
        .event("approval_rule.create", Outcome::Success)
        .target("approval_rule", &id)
        .detail("name", &spec.name);
    checked(audit, &event, &spec).await?;
    let now = db::now_ms();
    let row = row_of(id, &spec, 1, now, now)?;
    audit
        .apply(event, move |c| {
            let errors = check_references(c, &spec)?;
            if !errors.is_empty() {
                return Err(Error::fields(errors));
            }
            repo::insert_rule(c, &row).map_err(|e| {
                if db::is_unique_violation(&e) {
                    Error::Conflict(format!("an approval rule named {} exists", row.name))
                } else {
                    e.into()
                }
            })?;
            Ok(row)
        })
        .await
}

/// Replaces a rule's settings; its version grows (approvals asked under
/// the old one no longer bind).
pub async fn replace(
    audit: &Audit,
    ctx: &Context,
    id: &str,
    spec: ApprovalRuleSpec,
) -> Result<RuleRow> {
    let event = ctx
        .event("approval_rule.update", Outcome::Success)
        .target("approval_rule", id)
        .detail("name", &spec.name);
    checked(audit, &event, &spec).await?;
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            let old = repo::get_rule(c, &id)?
                .ok_or_else(|| Error::NotFound(format!("approval rule {id}")))?;
            let errors = check_references(c, &spec)?;
            if !errors.is_empty() {
                return Err(Error::fields(errors));
            }
            let now = db::now_ms();
            let row = row_of(id.clone(), &spec, old.version, old.created_at, now)?;
            repo::update_rule(c, &row, now).map_err(|e| {
                if db::is_unique_violation(&e) {
                    Error::Conflict(format!("an approval rule named {} exists", row.name))
                } else {
                    e.into()
                }
            })?;
            repo::get_rule(c, &id)?.ok_or_else(|| Error::NotFound(format!("approval rule {id}")))
        })
        .await
}

pub async fn delete(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("approval_rule.delete", Outcome::Success)
        .target("approval_rule", id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            if repo::delete_rule(c, &id)? {
                Ok(())
            } else {
                Err(Error::NotFound(format!("approval rule {id}")))
            }
        })
        .await
}

pub async fn get(db: &Db, id: &str) -> Result<RuleRow> {
    let id = id.to_string();
    db.read(move |c| {
        repo::get_rule(c, &id)?.ok_or_else(|| Error::NotFound(format!("approval rule {id}")))
    })
    .await
}

pub async fn list(db: &Db) -> Result<Vec<RuleRow>> {
    db.read(repo::rules).await
}
