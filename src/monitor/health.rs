//! `GET /api/v1/health`: one summary of the fleet and the appliance.
//!
//! Score (0-100), documented in the README:
//! - each enabled instance that has been checked scores 100 when healthy,
//!   60 when degraded, 0 when unhealthy (unknown ones do not count); the
//!   agents score is their mean (100 when there is none);
//! - the infrastructure score is the share of its components that are ok
//!   (database, migrations, audit log, scheduler) times 100;
//! - `health_score` = 0.7 × agents + 0.3 × infrastructure, rounded.
//!
//! `component_health.workflows` summarises agents' metric series labelled
//! `workflow` (latest `error_rate`, last report) over 15 minutes; it is
//! informational and not part of the score.
//!
//! `overall_status` is `unhealthy` when an infrastructure component fails
//! or the score is below 50, `degraded` when the score is below 90 or any
//! instance is unhealthy or degraded, `healthy` otherwise.

use std::collections::BTreeMap;

use serde::Serialize;

use super::runtime::Watched;
use super::state::Health;
use crate::alerts::AlertState;
use crate::db::{self, agents, instances, migrate};
use crate::error::Result;
use crate::identity::auth_stats::{self, AuthStats};

/// How old the scheduler's heartbeat may be before it counts as stopped.
const SCHEDULER_STALE_MS: i64 = 3 * super::runtime::SCHEDULER_HEARTBEAT.as_millis() as i64;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// `healthy`, `degraded` or `unhealthy`.
    pub overall_status: &'static str,
    pub health_score: u8,
    pub component_health: Components,
    /// Firing alerts, newest first: id, rule, severity, labels, summary,
    /// since, acknowledged.
    #[schema(value_type = Vec<Object>)]
    pub active_alerts: Vec<serde_json::Value>,
    pub timestamp: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Components {
    /// Per agent type.
    pub agents: BTreeMap<String, AgentTypeHealth>,
    pub infrastructure: Infrastructure,
    /// Per workflow, from agents' metric series labelled `workflow` in the
    /// last 15 minutes.
    pub workflows: BTreeMap<String, WorkflowHealth>,
    pub security: Security,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct AgentTypeHealth {
    pub total_instances: u32,
    pub healthy_instances: u32,
    pub degraded_instances: u32,
    pub unhealthy_instances: u32,
    pub instances: Vec<InstanceHealth>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceHealth {
    pub instance_id: String,
    pub name: String,
    /// The owning agent; absent for a proxied MCP server's probe.
    pub agent_id: Option<String>,
    /// `healthy`, `degraded`, `unhealthy`, `unknown` (or `disabled`).
    pub status: String,
    /// Milliseconds, of the last check (null for heartbeats).
    pub response_time: Option<i64>,
    pub last_check: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct WorkflowHealth {
    /// Mean of the latest `error_rate` of each reporting series, if any.
    pub error_rate: Option<f64>,
    /// Metric series reported for the workflow.
    pub series: u32,
    pub last_report: String,
}

/// How far back `workflows` looks.
const WORKFLOW_WINDOW_MS: i64 = 15 * 60_000;

async fn workflows(app: &Watched<'_>) -> Result<BTreeMap<String, WorkflowHealth>> {
    let since = db::now_ms() - WORKFLOW_WINDOW_MS;
    let rows = app
        .db
        .read(move |c| crate::db::metrics::workflow_latest(c, since))
        .await?;
    let mut out: BTreeMap<String, (WorkflowHealth, Vec<f64>, i64)> = BTreeMap::new();
    for (wf, name, value, at) in rows {
        let e = out.entry(wf).or_default();
        e.0.series += 1;
        e.2 = e.2.max(at);
        if name == "error_rate" {
            e.1.push(value);
        }
    }
    Ok(out
        .into_iter()
        .map(|(wf, (mut h, rates, last))| {
            if !rates.is_empty() {
                h.error_rate = Some(rates.iter().sum::<f64>() / rates.len() as f64);
            }
            h.last_report = crate::timefmt::rfc3339(last);
            (wf, h)
        })
        .collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Infrastructure {
    pub status: &'static str,
    /// `ok`, or what is wrong, per component.
    pub checks: BTreeMap<&'static str, String>,
    /// The database file plus its write-ahead log.
    pub database_bytes: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Security {
    pub failed_logins_last_minute: i64,
    pub failed_logins_last_15_minutes: i64,
    pub locked_accounts: i64,
}

/// The appliance's own components: `ok` or what is wrong (also `/readyz`).
pub async fn infrastructure_checks(app: &Watched<'_>) -> BTreeMap<&'static str, String> {
    let mut checks = BTreeMap::new();
    match app.db.read(|c| Ok(migrate::current_version(c)?)).await {
        Ok(v) => {
            checks.insert("database", "ok".to_string());
            let want = migrate::latest_version();
            let m = if v == want {
                "ok".to_string()
            } else {
                format!("schema is v{v}, binary expects v{want}")
            };
            checks.insert("migrations", m);
        }
        Err(e) => {
            checks.insert("database", e.to_string());
            checks.insert("migrations", "unknown".to_string());
        }
    }
    checks.insert(
        "audit",
        app.audit.health().err().unwrap_or_else(|| "ok".into()),
    );
    let age = db::now_ms() - app.status.last_scheduler_beat();
    let scheduler = if age > SCHEDULER_STALE_MS {
        format!("no heartbeat for {} s", age / 1000)
    } else {
        "ok".to_string()
    };
    checks.insert("scheduler", scheduler);
    checks
}

/// The database's size on disk: the file and its write-ahead log (recent
/// changes live there until a checkpoint).
pub fn database_bytes(app: &Watched<'_>) -> Option<u64> {
    let path = app.config.database_path();
    let main = std::fs::metadata(&path).ok()?.len();
    Some(main + db::wal::size(&path))
}

fn score_of(state: Health) -> Option<f64> {
    match state {
        Health::Healthy => Some(100.0),
        Health::Degraded => Some(60.0),
        Health::Unhealthy => Some(0.0),
        Health::Unknown => None,
    }
}

pub async fn report(app: &Watched<'_>) -> Result<HealthReport> {
    let (rows, types) = app
        .db
        .read(|c| {
            let types: BTreeMap<String, String> = agents::all_types(c)?.into_iter().collect();
            Ok((instances::all(c)?, types))
        })
        .await?;
    let mut agents: BTreeMap<String, AgentTypeHealth> = BTreeMap::new();
    let mut scores = Vec::new();
    let mut troubled = false;
    for r in rows {
        let kind = r.agent_type_in(&types).to_string();
        let e = agents.entry(kind).or_default();
        let state = Health::parse(&r.state);
        e.total_instances += 1;
        if r.enabled {
            match state {
                Health::Healthy => e.healthy_instances += 1,
                Health::Degraded => e.degraded_instances += 1,
                Health::Unhealthy => e.unhealthy_instances += 1,
                Health::Unknown => {}
            }
            troubled |= matches!(state, Health::Degraded | Health::Unhealthy);
            scores.extend(score_of(state));
        }
        e.instances.push(InstanceHealth {
            instance_id: r.id,
            name: r.name,
            agent_id: r.agent_id,
            status: if r.enabled {
                state.as_str().into()
            } else {
                "disabled".into()
            },
            response_time: r.last_latency_ms,
            last_check: r.last_check_at.map(crate::timefmt::rfc3339),
            last_error: r.last_error,
        });
    }
    let agents_score = if scores.is_empty() {
        100.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    let checks = infrastructure_checks(app).await;
    let ok = checks.values().filter(|v| *v == "ok").count();
    let infra_ok = ok == checks.len();
    let infra_score = 100.0 * ok as f64 / checks.len() as f64;
    let score = (0.7 * agents_score + 0.3 * infra_score)
        .round()
        .clamp(0.0, 100.0) as u8;
    let overall = if !infra_ok || score < 50 {
        "unhealthy"
    } else if score < 90 || troubled {
        "degraded"
    } else {
        "healthy"
    };
    let AuthStats {
        failed_last_minute,
        failed_last_15_minutes,
        locked_accounts,
    } = auth_stats::current(app.db).await?;
    let db_bytes = database_bytes(app);
    Ok(HealthReport {
        overall_status: overall,
        health_score: score,
        component_health: Components {
            agents,
            infrastructure: Infrastructure {
                status: if infra_ok { "healthy" } else { "unhealthy" },
                checks,
                database_bytes: db_bytes,
            },
            workflows: workflows(app).await?,
            security: Security {
                failed_logins_last_minute: failed_last_minute,
                failed_logins_last_15_minutes: failed_last_15_minutes,
                locked_accounts,
            },
        },
        active_alerts: active_alerts(app).await?,
        timestamp: crate::timefmt::rfc3339(db::now_ms()),
    })
}

/// Firing alerts in the health report (at most 100, newest first).
async fn active_alerts(app: &Watched<'_>) -> Result<Vec<serde_json::Value>> {
    let firing =
        crate::alerts::engine::list(app.db, Some(AlertState::Firing), None, None, 100).await?;
    Ok(firing
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "rule": a.rule,
                "severity": a.severity,
                "labels": a.labels,
                "summary": a.annotations.get("summary"),
                "since": a.fired_at.map(crate::timefmt::rfc3339),
                "acknowledged": a.acknowledged_at.is_some(),
            })
        })
        .collect())
}
