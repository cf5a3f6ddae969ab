//! One evaluation cycle: read rules, series, open alerts and silences;
//! evaluate; plan (pure, `plan.rs`); write the plan and its outbox rows in
//! one transaction; then carry out quarantines. Acknowledgements go through
//! the same lock, so a cycle never overwrites one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use super::expr;
use super::plan::{self, Evaluated, Plan};
use super::silences::Active;
use super::source::{Catalog, Snapshot};
use super::AlertState;
use crate::audit::{Audit, Context, Outcome};
use crate::db::alert_rules as rules_repo;
use crate::db::alerts::{self as repo, AlertRow};
use crate::db::notifications as outbox_repo;
use crate::db::{self, channels as channels_repo, silences as silences_repo, Db};
use crate::error::{Error, Result};
use crate::notify::{outbox, Kind};

/// Compiled expressions by source text, kept between cycles.
type Compiled = HashMap<String, Option<Arc<expr::Rule>>>;

#[derive(Clone)]
pub struct Engine {
    compiled: Arc<tokio::sync::Mutex<Compiled>>,
    outbox: outbox::Outbox,
    external_url: Arc<String>,
}

/// What a cycle did, for logs and the benchmark.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CycleReport {
    pub rules: usize,
    pub hits: usize,
    pub firing: usize,
    pub pending: usize,
    pub notifications: usize,
}

struct Read {
    rules: HashMap<String, rules_repo::RuleRow>,
    compiled: Compiled,
    open: Vec<AlertRow>,
    silences: Vec<silences_repo::SilenceRow>,
    policies: HashMap<String, rules_repo::PolicyRow>,
    hits: Vec<(String, i64, Vec<expr::Hit>)>,
}

impl Engine {
    pub fn new(outbox: outbox::Outbox, external_url: Arc<String>) -> Engine {
        Engine {
            compiled: Arc::default(),
            outbox,
            external_url,
        }
    }

    pub fn outbox(&self) -> &outbox::Outbox {
        &self.outbox
    }

    /// Evaluates every enabled rule at `now` and acts on the result.
    pub async fn cycle(&self, db: &Db, audit: &Audit, now: i64) -> Result<CycleReport> {
        let mut guard = self.compiled.lock().await;
        let compiled = std::mem::take(&mut *guard);
        let read = db
            .read(move |c| read_and_evaluate(c, compiled, now))
            .await?;
        let Read {
            rules,
            compiled,
            open,
            silences,
            policies,
            hits,
        } = read;
        *guard = compiled;

        let evaluated: Vec<Evaluated<'_>> = hits
            .into_iter()
            .filter_map(|(name, for_ms, hits)| {
                rules
                    .get(&name)
                    .map(|rule| Evaluated { rule, for_ms, hits })
            })
            .collect();
        let mut report = CycleReport {
            rules: evaluated.len(),
            hits: evaluated.iter().map(|e| e.hits.len()).sum(),
            ..CycleReport::default()
        };
        let active = Active::of(&silences);
        let p = plan::plan(
            &evaluated,
            &rules,
            open,
            &active,
            &policies,
            now,
            &mut db::new_id,
        );
        drop(evaluated);
        report.firing = p
            .inserts
            .iter()
            .chain(&p.updates)
            .filter(|a| a.state == AlertState::Firing)
            .count();
        report.pending = p
            .inserts
            .iter()
            .chain(&p.updates)
            .filter(|a| a.state == AlertState::Pending)
            .count();
        let quarantine = p.quarantine.clone();
        let url = self.external_url.clone();
        report.notifications = db.write(move |c| write_plan(c, p, &url, now)).await?;
        drop(guard);
        if report.notifications > 0 {
            self.outbox.wake();
        }
        for (alert_id, agent) in quarantine {
            self.quarantine(db, audit, &alert_id, &agent).await;
        }
        Ok(report)
    }

    /// Containment step: the agent named by the alert is quarantined,
    /// audited as done by the alert's rule.
    async fn quarantine(&self, db: &Db, audit: &Audit, alert_id: &str, agent: &str) {
        let name = agent.to_string();
        let found = db
            .read(move |c| Ok(crate::db::agents::by_name(c, &name)?.map(|a| a.id)))
            .await;
        let detail = match found {
            Ok(Some(id)) => {
                let ctx = Context::system("alerting");
                let reason = Some(format!("escalation step of alert {alert_id}"));
                match crate::identity::agents::quarantine(audit, &ctx, &id, reason).await {
                    Ok(n) => format!("agent {agent} quarantined ({n} keys revoked)"),
                    Err(e) => format!("quarantine of {agent} failed: {e}"),
                }
            }
            Ok(None) => format!("no agent named {agent}"),
            Err(e) => format!("quarantine of {agent} failed: {e}"),
        };
        let id = alert_id.to_string();
        let _ = db
            .write(move |c| repo::add_event(c, &id, db::now_ms(), "quarantine", &detail))
            .await;
    }

    /// Acknowledges a firing alert: escalation stops, and every channel
    /// told it fired is told it was acknowledged.
    pub async fn acknowledge(
        &self,
        audit: &Audit,
        ctx: &Context,
        id: &str,
        by: &str,
    ) -> Result<AlertRow> {
        let _guard = self.compiled.lock().await;
        let event = ctx
            .event("alert.acknowledge", Outcome::Success)
            .target("alert", id);
        let (id, by, url) = (id.to_string(), by.to_string(), self.external_url.clone());
        let out = audit
            .apply(event, move |c| {
                let mut a =
                    repo::by_id(c, &id)?.ok_or_else(|| Error::NotFound(format!("alert {id}")))?;
                if a.state != AlertState::Firing {
                    return Err(Error::Conflict(format!(
                        "only firing alerts can be acknowledged; this one is {}",
                        a.state
                    )));
                }
                if a.acknowledged_at.is_some() {
                    return Err(Error::Conflict("this alert is already acknowledged".into()));
                }
                let now = db::now_ms();
                a.acknowledged_at = Some(now);
                a.acknowledged_by = Some(by.clone());
                a.next_notify_at = None;
                a.updated_at = now;
                repo::update(c, &a)?;
                repo::add_event(c, &a.id, now, "acknowledged", &format!("by {by}"))?;
                let told = outbox_repo::told_firing(c, &a.id)?;
                for (channel, channel_id) in told {
                    outbox::enqueue(
                        c,
                        &a,
                        Kind::Acknowledged,
                        &channel,
                        channel_id.as_deref(),
                        &url,
                        now,
                    )?;
                }
                Ok(a)
            })
            .await?;
        self.outbox.wake();
        Ok(out)
    }
}

fn read_and_evaluate(c: &Connection, mut compiled: Compiled, now: i64) -> Result<Read> {
    let rules: HashMap<String, rules_repo::RuleRow> = rules_repo::all_rules(c)?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    // Stored rules were checked when saved; a metric whose series were
    // pruned since is simply absent, so parse leniently here.
    let lenient = Catalog::lenient();
    let used: HashSet<&str> = rules.values().map(|r| r.expression.as_str()).collect();
    compiled.retain(|k, _| used.contains(k.as_str()));
    for r in rules.values() {
        if !compiled.contains_key(&r.expression) {
            let parsed = lenient.parse(&r.expression).ok().map(Arc::new);
            if parsed.is_none() {
                tracing::warn!(rule = %r.name, "alert rule expression does not parse; skipped");
            }
            compiled.insert(r.expression.clone(), parsed);
        }
    }
    let enabled: Vec<(&rules_repo::RuleRow, Arc<expr::Rule>)> = rules
        .values()
        .filter(|r| r.enabled)
        .filter_map(|r| {
            compiled
                .get(&r.expression)
                .cloned()
                .flatten()
                .map(|p| (r, p))
        })
        .collect();
    let mut needs: Vec<(String, Option<Duration>)> = Vec::new();
    for (_, p) in &enabled {
        for n in p.metrics() {
            if !needs.contains(&n) {
                needs.push(n);
            }
        }
    }
    let snap = Snapshot::load(c, &needs, now)?;
    let hits = enabled
        .iter()
        .map(|(r, p)| {
            let for_ms = p.for_duration.map(|d| d.as_millis() as i64).unwrap_or(0);
            (r.name.clone(), for_ms, expr::evaluate(p, &snap))
        })
        .collect();
    Ok(Read {
        open: repo::open(c)?,
        silences: silences_repo::active(c, now)?,
        policies: rules_repo::all_policies(c)?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect(),
        rules,
        compiled,
        hits,
    })
}

/// Writes a plan; returns how many notifications it queued.
fn write_plan(c: &Connection, p: Plan, url: &str, now: i64) -> Result<usize> {
    for a in &p.inserts {
        repo::insert(c, a)?;
    }
    for a in &p.updates {
        repo::update(c, a)?;
    }
    for (id, kind, detail) in &p.events {
        repo::add_event(c, id, now, kind, detail)?;
    }
    let ids: HashMap<String, String> = channels_repo::ids_by_name(c)?.into_iter().collect();
    let mut queued = 0;
    for (a, kind, channels) in &p.notify {
        for ch in channels {
            outbox::enqueue(c, a, *kind, ch, ids.get(ch).map(String::as_str), url, now)?;
            queued += 1;
        }
    }
    for a in &p.resolved {
        for (channel, channel_id) in outbox_repo::told_firing(c, &a.id)? {
            outbox::enqueue(
                c,
                a,
                Kind::Resolved,
                &channel,
                channel_id.as_deref(),
                url,
                now,
            )?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// The alert list for the API and UI.
pub async fn list(
    db: &Db,
    state: Option<AlertState>,
    rule: Option<String>,
    before: Option<String>,
    limit: u32,
) -> Result<Vec<AlertRow>> {
    db.read(move |c| repo::list(c, state, rule.as_deref(), before.as_deref(), limit))
        .await
}

/// The open alerts: firing ones first, then pending, newest first in each.
pub async fn open(db: &Db) -> Result<Vec<AlertRow>> {
    let mut rows = db.read(repo::open).await?;
    rows.sort_by(|a, b| {
        (a.state != AlertState::Firing)
            .cmp(&(b.state != AlertState::Firing))
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok(rows)
}

/// An alert's events, oldest first (its row is [`get`]'s too).
pub async fn events(db: &Db, id: &str) -> Result<Vec<repo::EventRow>> {
    let id = id.to_string();
    db.read(move |c| repo::events(c, &id)).await
}

/// Per rule, how many of its alerts are in each state.
pub async fn counts_by_rule(db: &Db) -> Result<BTreeMap<String, BTreeMap<AlertState, i64>>> {
    let rows = db.read(repo::counts_by_rule).await?;
    let mut out: BTreeMap<String, BTreeMap<AlertState, i64>> = BTreeMap::new();
    for (rule, state, n) in rows {
        out.entry(rule).or_default().insert(state, n);
    }
    Ok(out)
}

pub async fn get(db: &Db, id: &str) -> Result<(AlertRow, Vec<repo::EventRow>)> {
    let i = id.to_string();
    db.read(move |c| {
        let a = repo::by_id(c, &i)?.ok_or_else(|| Error::NotFound(format!("alert {i}")))?;
        let ev = repo::events(c, &i)?;
        Ok((a, ev))
    })
    .await
}

/// Drops resolved alerts, ended silences and finished notifications older
/// than the retention.
pub async fn prune(db: &Db, retention_days: u32) -> Result<usize> {
    let before = db::now_ms() - i64::from(retention_days) * 86_400_000;
    db.write(move |c| {
        Ok(repo::prune(c, before)?
            + silences_repo::prune(c, before)?
            + outbox_repo::prune(c, before)?)
    })
    .await
}
