//! The `alert_rules` and `escalation_policies` tables.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::json_column;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub name: String,
    pub expression: String,
    pub severity: String,
    pub channels: Vec<String>,
    pub escalation_policy: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const RULE_COLUMNS: &str = "name, expression, severity, channels, escalation_policy, labels, \
    annotations, enabled, created_at, updated_at";

fn rule(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        name: r.get(0)?,
        expression: r.get(1)?,
        severity: r.get(2)?,
        channels: json_column(r, 3)?,
        escalation_policy: r.get(4)?,
        labels: json_column(r, 5)?,
        annotations: json_column(r, 6)?,
        enabled: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

pub fn all_rules(conn: &Connection) -> Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY name"
    ))?;
    let rows = stmt.query_map([], rule)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn list_rules(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE (?1 IS NULL OR name > ?1) ORDER BY name LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit], rule)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn rule_by_name(conn: &Connection, name: &str) -> Result<Option<RuleRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE name = ?1"),
            [name],
            rule,
        )
        .optional()?)
}

/// Inserts or replaces (by name) a rule; `created_at` of an existing row
/// is kept.
pub fn upsert_rule(conn: &Connection, r: &RuleRow) -> Result<()> {
    conn.execute(
        "INSERT INTO alert_rules (name, expression, severity, channels, escalation_policy, labels,
                                  annotations, enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (name) DO UPDATE SET expression = ?2, severity = ?3, channels = ?4,
             escalation_policy = ?5, labels = ?6, annotations = ?7, enabled = ?8, updated_at = ?10",
        params![
            r.name,
            r.expression,
            r.severity,
            serde_json::to_string(&r.channels).expect("strings serialise"),
            r.escalation_policy,
            serde_json::to_string(&r.labels).expect("strings serialise"),
            serde_json::to_string(&r.annotations).expect("strings serialise"),
            r.enabled,
            r.created_at,
            r.updated_at,
        ],
    )?;
    Ok(())
}

pub fn delete_rule(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM alert_rules WHERE name = ?1", [name])? > 0)
}

pub fn rules_using_policy(conn: &Connection, policy: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM alert_rules WHERE escalation_policy = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([policy], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One step of an escalation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Seconds after the alert started firing.
    #[schema(maximum = 604800)]
    pub after_seconds: u64,
    /// Channel names; `@rule` stands for the channels of the rule that fired.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub channels: Vec<String>,
    /// Disable the agent named by the alert's `agent` label and revoke its
    /// tokens and keys.
    #[serde(default)]
    pub quarantine_agent: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub name: String,
    pub description: String,
    pub steps: Vec<Step>,
    pub repeat_seconds: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const POLICY_COLUMNS: &str = "name, description, steps, repeat_seconds, created_at, updated_at";

fn policy(r: &Row<'_>) -> rusqlite::Result<PolicyRow> {
    Ok(PolicyRow {
        name: r.get(0)?,
        description: r.get(1)?,
        steps: json_column(r, 2)?,
        repeat_seconds: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

pub fn all_policies(conn: &Connection) -> Result<Vec<PolicyRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {POLICY_COLUMNS} FROM escalation_policies ORDER BY name"
    ))?;
    let rows = stmt.query_map([], policy)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn policy_by_name(conn: &Connection, name: &str) -> Result<Option<PolicyRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {POLICY_COLUMNS} FROM escalation_policies WHERE name = ?1"),
            [name],
            policy,
        )
        .optional()?)
}

/// Inserts or replaces (by name) a policy; `created_at` of an existing row
/// is kept.
pub fn upsert_policy(conn: &Connection, p: &PolicyRow) -> Result<()> {
    conn.execute(
        "INSERT INTO escalation_policies (name, description, steps, repeat_seconds, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET description = ?2, steps = ?3, repeat_seconds = ?4, updated_at = ?6",
        params![
            p.name,
            p.description,
            serde_json::to_string(&p.steps).expect("steps serialise"),
            p.repeat_seconds,
            p.created_at,
            p.updated_at,
        ],
    )?;
    Ok(())
}

pub fn delete_policy(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM escalation_policies WHERE name = ?1", [name])? > 0)
}
