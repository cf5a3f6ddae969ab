//! Escalation policies: ordered steps `{after, channels}` and a repeat
//! interval, as data.

use serde::{Deserialize, Serialize};

use super::rules::{valid_name, NAME_RULE};
use crate::audit::{Audit, Context, Outcome};
use crate::db::alert_rules::{self as repo, PolicyRow, Step};
use crate::db::{self, Db};
use crate::error::{Error, FieldErrors, Result};

/// In a step, the channels of the rule that fired.
pub const RULE_CHANNELS: &str = "@rule";
pub const MAX_STEPS: usize = 10;
pub const MAX_AFTER_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "on-call", "description": "Team channel first, then page", "steps": [{"after_seconds": 0, "channels": ["@rule"]}, {"after_seconds": 900, "channels": ["@rule"], "quarantine_agent": false}], "repeat_seconds": 3600}))]
pub struct PolicySpec {
    #[schema(value_type = crate::formats::AlertingName)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    #[schema(min_items = 1, max_items = 10)]
    pub steps: Vec<Step>,
    /// Re-notify every this many seconds after the last step until
    /// acknowledged (60-604800); absent: no repeat.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 604800)]
    pub repeat_seconds: Option<u64>,
}

pub fn validate(p: &PolicySpec) -> FieldErrors {
    let mut e = FieldErrors::new();
    if !valid_name(&p.name) {
        e.insert("name".into(), NAME_RULE.into());
    }
    if p.description.chars().count() > 500 {
        e.insert("description".into(), "at most 500 characters".into());
    }
    if p.steps.is_empty() || p.steps.len() > MAX_STEPS {
        e.insert("steps".into(), format!("1-{MAX_STEPS} steps"));
    }
    let mut last = 0;
    for (i, s) in p.steps.iter().enumerate() {
        if s.after_seconds > MAX_AFTER_SECONDS {
            e.insert(format!("steps[{i}].after_seconds"), "at most 7 days".into());
        } else if i > 0 && s.after_seconds < last {
            e.insert(
                format!("steps[{i}].after_seconds"),
                "steps must be in order of time".into(),
            );
        }
        last = s.after_seconds;
        if s.channels.is_empty() && !s.quarantine_agent {
            e.insert(
                format!("steps[{i}]"),
                "name at least one channel (or @rule), or quarantine_agent".into(),
            );
        }
        if s.channels.len() > 20 {
            e.insert(format!("steps[{i}].channels"), "at most 20 channels".into());
        }
        for (j, c) in s.channels.iter().enumerate() {
            if c != RULE_CHANNELS && !valid_name(c) {
                e.insert(
                    format!("steps[{i}].channels[{j}]"),
                    format!("a channel name ({NAME_RULE}) or {RULE_CHANNELS}"),
                );
            }
        }
    }
    if let Some(r) = p.repeat_seconds {
        if !(60..=604_800).contains(&r) {
            e.insert("repeat_seconds".into(), "between 60 and 604800".into());
        }
    }
    e
}

fn row(p: PolicySpec, created_at: i64, now: i64) -> PolicyRow {
    PolicyRow {
        name: p.name,
        description: p.description,
        steps: p.steps,
        repeat_seconds: p.repeat_seconds.map(|r| r as i64),
        created_at,
        updated_at: now,
    }
}

pub async fn create(audit: &Audit, ctx: &Context, p: PolicySpec) -> Result<PolicyRow> {
    let event = ctx
        .event("escalation_policy.create", Outcome::Success)
        .target("escalation_policy", &p.name);
    let errors = validate(&p);
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let now = db::now_ms();
    let r = row(p, now, now);
    audit
        .apply(event, move |c| {
            if repo::policy_by_name(c, &r.name)?.is_some() {
                return Err(Error::Conflict(format!(
                    "a policy named {:?} exists",
                    r.name
                )));
            }
            repo::upsert_policy(c, &r)?;
            Ok(r)
        })
        .await
}

pub async fn replace(audit: &Audit, ctx: &Context, name: &str, p: PolicySpec) -> Result<PolicyRow> {
    let event = ctx
        .event("escalation_policy.update", Outcome::Success)
        .target("escalation_policy", name);
    let mut errors = validate(&p);
    if p.name != name {
        errors.insert("name".into(), "must equal the name in the path".into());
    }
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let name = name.to_string();
    audit
        .apply(event, move |c| {
            let old = repo::policy_by_name(c, &name)?
                .ok_or_else(|| Error::NotFound(format!("escalation policy {name}")))?;
            let r = row(p, old.created_at, db::now_ms());
            repo::upsert_policy(c, &r)?;
            Ok(r)
        })
        .await
}

pub async fn delete(audit: &Audit, ctx: &Context, name: &str) -> Result<()> {
    let event = ctx
        .event("escalation_policy.delete", Outcome::Success)
        .target("escalation_policy", name);
    let name = name.to_string();
    audit
        .apply(event, move |c| {
            let users = repo::rules_using_policy(c, &name)?;
            if !users.is_empty() {
                return Err(Error::Conflict(format!(
                    "rules use this policy: {}",
                    users.join(", ")
                )));
            }
            if !repo::delete_policy(c, &name)? {
                return Err(Error::NotFound(format!("escalation policy {name}")));
            }
            Ok(())
        })
        .await
}

pub async fn list(db: &Db) -> Result<Vec<PolicyRow>> {
    db.read(repo::all_policies).await
}

pub async fn get(db: &Db, name: &str) -> Result<PolicyRow> {
    let n = name.to_string();
    db.read(move |c| repo::policy_by_name(c, &n))
        .await?
        .ok_or_else(|| Error::NotFound(format!("escalation policy {name}")))
}
