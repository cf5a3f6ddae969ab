//! Alert rules: validation, audited changes, and the "test this
//! expression now" preview.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::expr::{self, Source};
use super::labels::{Labels, SEVERITIES};
use super::source::{Catalog, Snapshot};
use crate::audit::{Audit, Context, Outcome};
use crate::db::alert_rules::{self as repo, RuleRow};
use crate::db::{self, Db};
use crate::error::{Error, FieldErrors, Result};
use crate::names::valid_label_name;

/// A rule as an admin writes it (README, "Alerting").
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "high-error-rate", "expression": "error_rate > 5% for 5 minutes", "severity": "major", "channels": [], "annotations": {"summary": "{{ $labels.agent }} fails {{ $value }} of its work"}}))]
pub struct RuleSpec {
    #[schema(value_type = crate::formats::AlertingName)]
    pub name: String,
    /// e.g. `agent_health == 'unhealthy' for 2 minutes`; see the grammar.
    #[schema(min_length = 1, max_length = 2000)]
    pub expression: String,
    /// critical, major, minor, warning or info.
    #[schema(value_type = crate::formats::Severity)]
    pub severity: String,
    /// Channel names notified when the rule fires (or `@rule` in a policy).
    #[serde(default)]
    #[schema(value_type = Vec<crate::formats::AlertingName>, max_items = 20)]
    pub channels: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::formats::AlertingName>)]
    pub escalation_policy: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`, with `{{ $labels.x }}` / `{{ $value }}`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

pub const MAX_CHANNELS: usize = 20;
pub const MAX_LABELS: usize = 20;
pub const MAX_ANNOTATIONS: usize = 10;

pub use crate::names::{valid_alerting_name as valid_name, ALERTING_NAME_RULE as NAME_RULE};

/// Checks everything but the policy's existence (which needs the
/// database); the expression is parsed against `catalog`.
pub fn validate(s: &RuleSpec, catalog: &Catalog) -> FieldErrors {
    let mut e = FieldErrors::new();
    if !valid_name(&s.name) {
        e.insert("name".into(), NAME_RULE.into());
    }
    if let Err(p) = catalog.parse(&s.expression) {
        e.insert("expression".into(), p.to_string());
    }
    if !SEVERITIES.contains(&s.severity.as_str()) {
        e.insert(
            "severity".into(),
            format!("must be one of {}", SEVERITIES.join(", ")),
        );
    }
    if s.channels.len() > MAX_CHANNELS {
        e.insert(
            "channels".into(),
            format!("at most {MAX_CHANNELS} channels"),
        );
    }
    for (i, c) in s.channels.iter().enumerate() {
        if !valid_name(c) {
            e.insert(format!("channels[{i}]"), NAME_RULE.into());
        } else if s.channels[..i].contains(c) {
            e.insert(format!("channels[{i}]"), "listed twice".into());
        }
    }
    if let Some(p) = &s.escalation_policy {
        if !valid_name(p) {
            e.insert("escalation_policy".into(), NAME_RULE.into());
        }
    }
    if s.labels.len() > MAX_LABELS {
        e.insert("labels".into(), format!("at most {MAX_LABELS} labels"));
    }
    for (k, v) in &s.labels {
        if !valid_label_name(k) || k.starts_with("__") {
            e.insert(format!("labels.{k}"), "not a valid label name".into());
        } else if k == "alertname" || k == "severity" {
            e.insert(format!("labels.{k}"), "set by agentry itself".into());
        } else if v.chars().count() > 256 {
            e.insert(format!("labels.{k}"), "at most 256 characters".into());
        }
    }
    if s.annotations.len() > MAX_ANNOTATIONS {
        e.insert(
            "annotations".into(),
            format!("at most {MAX_ANNOTATIONS} annotations"),
        );
    }
    for (k, v) in &s.annotations {
        if !valid_label_name(k) {
            e.insert(
                format!("annotations.{k}"),
                "not a valid annotation name".into(),
            );
        } else if v.chars().count() > 2000 {
            e.insert(format!("annotations.{k}"), "at most 2000 characters".into());
        }
    }
    e
}

async fn checked(db: &Db, s: &RuleSpec) -> FieldErrors {
    let policy = s.escalation_policy.clone();
    let spec = s.clone();
    db.read(move |c| {
        let catalog = Catalog::load(c)?;
        let mut e = validate(&spec, &catalog);
        if let Some(p) = policy.filter(|p| valid_name(p)) {
            if repo::policy_by_name(c, &p)?.is_none() {
                e.insert(
                    "escalation_policy".into(),
                    format!("no escalation policy named {p:?}"),
                );
            }
        }
        Ok(e)
    })
    .await
    .unwrap_or_else(|err| {
        FieldErrors::from([(
            "expression".to_string(),
            format!("could not be checked: {err}"),
        )])
    })
}

fn row(s: RuleSpec, created_at: i64, now: i64) -> RuleRow {
    RuleRow {
        name: s.name,
        expression: s.expression,
        severity: s.severity,
        channels: s.channels,
        escalation_policy: s.escalation_policy,
        labels: s.labels,
        annotations: s.annotations,
        enabled: s.enabled,
        created_at,
        updated_at: now,
    }
}

pub async fn create(db: &Db, audit: &Audit, ctx: &Context, s: RuleSpec) -> Result<RuleRow> {
    let event = ctx
        .event("alert_rule.create", Outcome::Success)
        .target("alert_rule", &s.name)
        .detail("expression", &s.expression);
    let errors = checked(db, &s).await;
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let now = db::now_ms();
    let r = row(s, now, now);
    audit
        .apply(event, move |c| {
            if repo::rule_by_name(c, &r.name)?.is_some() {
                return Err(Error::Conflict(format!("a rule named {:?} exists", r.name)));
            }
            repo::upsert_rule(c, &r)?;
            Ok(r)
        })
        .await
}

/// Replaces rule `name` (the body's name must match).
pub async fn replace(
    db: &Db,
    audit: &Audit,
    ctx: &Context,
    name: &str,
    s: RuleSpec,
) -> Result<RuleRow> {
    let event = ctx
        .event("alert_rule.update", Outcome::Success)
        .target("alert_rule", name)
        .detail("expression", &s.expression)
        .detail("enabled", s.enabled);
    let mut errors = checked(db, &s).await;
    if s.name != name {
        errors.insert("name".into(), "must equal the name in the path".into());
    }
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let name = name.to_string();
    audit
        .apply(event, move |c| {
            let old = repo::rule_by_name(c, &name)?
                .ok_or_else(|| Error::NotFound(format!("alert rule {name}")))?;
            let r = row(s, old.created_at, db::now_ms());
            repo::upsert_rule(c, &r)?;
            Ok(r)
        })
        .await
}

pub async fn delete(audit: &Audit, ctx: &Context, name: &str) -> Result<()> {
    let event = ctx
        .event("alert_rule.delete", Outcome::Success)
        .target("alert_rule", name);
    let name = name.to_string();
    audit
        .apply(event, move |c| {
            if !repo::delete_rule(c, &name)? {
                return Err(Error::NotFound(format!("alert rule {name}")));
            }
            Ok(())
        })
        .await
}

pub async fn get(db: &Db, name: &str) -> Result<RuleRow> {
    let n = name.to_string();
    db.read(move |c| repo::rule_by_name(c, &n))
        .await?
        .ok_or_else(|| Error::NotFound(format!("alert rule {name}")))
}

pub async fn list(db: &Db, after: Option<String>, limit: u32) -> Result<Vec<RuleRow>> {
    db.read(move |c| repo::list_rules(c, after.as_deref(), limit))
        .await
}

/// What an expression matches right now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// Seconds the condition must hold before an alert fires (`for`).
    pub for_seconds: Option<u64>,
    pub matches: Vec<PreviewMatch>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviewMatch {
    pub labels: Labels,
    pub value: String,
}

/// Parses `expression` and evaluates it once against current data; a
/// parse error comes back as a validation error on `expression`.
pub async fn preview(db: &Db, expression: String) -> Result<Preview> {
    db.read(move |c| {
        let catalog = Catalog::load(c)?;
        let rule = catalog
            .parse(&expression)
            .map_err(|p| Error::field("expression", p.to_string()))?;
        let snap = Snapshot::load(c, &rule.metrics(), db::now_ms())?;
        Ok(preview_of(&rule, &snap))
    })
    .await
}

fn preview_of(rule: &expr::Rule, src: &dyn Source) -> Preview {
    Preview {
        for_seconds: rule.for_duration.map(|d| d.as_secs()),
        matches: expr::evaluate(rule, src)
            .into_iter()
            .map(|h| PreviewMatch {
                labels: h.labels,
                value: h.value.to_string(),
            })
            .collect(),
    }
}
