//! The decisions of one evaluation cycle, as a pure function: given the
//! rules, what each matched now, the open alerts, silences and policies,
//! say which alerts change state and who gets told. `engine` reads the
//! inputs and writes the plan in one transaction.

use std::collections::{BTreeSet, HashMap};

use super::expr::Hit;
use super::labels::{self, Labels};
use super::policies::RULE_CHANNELS;
use super::silences::Active;
use super::AlertState;
use crate::db::alert_rules::{PolicyRow, RuleRow, Step};
use crate::db::alerts::AlertRow;
use crate::notify::Kind;

/// One rule's evaluation this cycle.
pub struct Evaluated<'a> {
    pub rule: &'a RuleRow,
    /// `for` in ms (0: fire at once).
    pub for_ms: i64,
    pub hits: Vec<Hit>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub inserts: Vec<AlertRow>,
    pub updates: Vec<AlertRow>,
    /// (alert id, kind, detail)
    pub events: Vec<(String, String, String)>,
    /// Firing notifications: (alert as written, channel names).
    pub notify: Vec<(AlertRow, Kind, Vec<String>)>,
    /// Alerts that resolved: everyone told they fired gets told.
    pub resolved: Vec<AlertRow>,
    /// (alert id, agent name) to quarantine.
    pub quarantine: Vec<(String, String)>,
}

impl Plan {
    fn event(&mut self, id: &str, kind: &str, detail: impl Into<String>) {
        self.events
            .push((id.to_string(), kind.to_string(), detail.into()));
    }
}

/// The steps an alert of `rule` walks: its policy's, or one step with the
/// rule's channels and no repeat.
fn steps_of<'a>(
    rule: Option<&'a RuleRow>,
    policies: &'a HashMap<String, PolicyRow>,
) -> (Vec<Step>, Option<i64>) {
    match rule
        .and_then(|r| r.escalation_policy.as_ref())
        .and_then(|p| policies.get(p))
    {
        Some(p) => (p.steps.clone(), p.repeat_seconds),
        None => (
            vec![Step {
                after_seconds: 0,
                channels: vec![RULE_CHANNELS.into()],
                quarantine_agent: false,
            }],
            None,
        ),
    }
}

fn expand(channels: &[String], rule: Option<&RuleRow>, into: &mut Vec<String>) {
    for c in channels {
        if c == RULE_CHANNELS {
            for rc in rule.map(|r| r.channels.as_slice()).unwrap_or(&[]) {
                if !into.contains(rc) {
                    into.push(rc.clone());
                }
            }
        } else if !into.contains(c) {
            into.push(c.clone());
        }
    }
}

pub fn plan(
    evaluated: &[Evaluated<'_>],
    all_rules: &HashMap<String, RuleRow>,
    open: Vec<AlertRow>,
    silences: &[Active],
    policies: &HashMap<String, PolicyRow>,
    now: i64,
    new_id: &mut dyn FnMut() -> String,
) -> Plan {
    let mut plan = Plan::default();
    let mut open: HashMap<(String, String), AlertRow> = open
        .into_iter()
        .map(|a| ((a.rule.clone(), a.fingerprint.clone()), a))
        .collect();
    // Alerts after this cycle's transitions, by id, for dispatch.
    let mut current: Vec<AlertRow> = Vec::new();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    // New alerts: written as inserts, in their final form, after dispatch.
    let mut inserted: BTreeSet<String> = BTreeSet::new();

    for ev in evaluated {
        let rule = ev.rule;
        let mut seen = BTreeSet::new();
        for hit in &ev.hits {
            let labels =
                labels::alert_labels(&rule.name, &rule.severity, &hit.labels, &rule.labels);
            let fp = labels::fingerprint(&labels);
            if !seen.insert(fp.clone()) {
                continue;
            }
            let value = hit.value.to_string();
            let annotations = labels::render_all(&rule.annotations, &labels, &value);
            match open.remove(&(rule.name.clone(), fp.clone())) {
                None => {
                    let firing = ev.for_ms == 0;
                    let a = AlertRow {
                        id: new_id(),
                        rule: rule.name.clone(),
                        fingerprint: fp,
                        labels,
                        annotations,
                        severity: rule.severity.clone(),
                        state: if firing {
                            AlertState::Firing
                        } else {
                            AlertState::Pending
                        },
                        value: Some(value.clone()),
                        active_since: now,
                        fired_at: firing.then_some(now),
                        resolved_at: None,
                        last_eval_at: now,
                        acknowledged_at: None,
                        acknowledged_by: None,
                        escalation_step: 0,
                        next_notify_at: firing.then_some(now),
                        suppressed_by: None,
                        updated_at: now,
                    };
                    plan.event(&a.id, a.state.as_str(), format!("value {value}"));
                    inserted.insert(a.id.clone());
                    current.push(a);
                }
                Some(mut a) => {
                    let mut dirty = false;
                    if a.state == AlertState::Pending && now - a.active_since >= ev.for_ms {
                        a.state = AlertState::Firing;
                        a.fired_at = Some(now);
                        a.next_notify_at = Some(now);
                        a.escalation_step = 0;
                        plan.event(&a.id, AlertState::Firing.as_str(), format!("value {value}"));
                        dirty = true;
                    }
                    if a.value.as_deref() != Some(value.as_str()) || a.annotations != annotations {
                        a.value = Some(value);
                        a.annotations = annotations;
                        dirty = true;
                    }
                    if a.severity != rule.severity {
                        a.severity = rule.severity.clone();
                        dirty = true;
                    }
                    if dirty {
                        a.last_eval_at = now;
                        a.updated_at = now;
                        changed.insert(a.id.clone());
                    }
                    current.push(a);
                }
            }
        }
    }

    // Open alerts no longer matched (or whose rule is gone or disabled).
    for (_, mut a) in open {
        let why = match all_rules.get(&a.rule) {
            None => "rule deleted",
            Some(r) if !r.enabled => "rule disabled",
            Some(_) => "condition no longer holds",
        };
        let evaluated_rule = evaluated.iter().any(|e| e.rule.name == a.rule);
        if !evaluated_rule && all_rules.get(&a.rule).is_some_and(|r| r.enabled) {
            // An enabled rule that could not be evaluated this cycle (its
            // expression no longer parses): keep its alerts as they are.
            current.push(a);
            continue;
        }
        a.updated_at = now;
        a.last_eval_at = now;
        a.next_notify_at = None;
        if a.state == AlertState::Pending {
            a.state = AlertState::Inactive;
            plan.event(&a.id, AlertState::Inactive.as_str(), why);
        } else {
            a.state = AlertState::Resolved;
            a.resolved_at = Some(now);
            plan.event(&a.id, AlertState::Resolved.as_str(), why);
            plan.resolved.push(a.clone());
        }
        plan.updates.push(a);
    }

    // Dispatch: run due escalation steps of firing, unacknowledged alerts.
    let criticals: Vec<(String, Labels)> = current
        .iter()
        .filter(|a| a.state == AlertState::Firing && a.severity == "critical")
        .map(|a| (a.id.clone(), a.labels.clone()))
        .collect();
    for mut a in current {
        let due = a.state == AlertState::Firing
            && a.acknowledged_at.is_none()
            && a.next_notify_at.is_some_and(|t| t <= now);
        if due {
            let rule = all_rules.get(&a.rule);
            let muted = silences
                .iter()
                .find(|s| s.matches(&a.labels))
                .map(|s| format!("silence:{}", s.id))
                .or_else(|| {
                    (a.severity != "critical")
                        .then(|| {
                            criticals
                                .iter()
                                .find(|(id, l)| *id != a.id && labels::inhibits(l, &a.labels))
                                .map(|(id, _)| format!("inhibited:{id}"))
                        })
                        .flatten()
                });
            if muted != a.suppressed_by {
                match &muted {
                    Some(m) => plan.event(&a.id, "suppressed", m.clone()),
                    None => plan.event(&a.id, "unsuppressed", ""),
                }
                a.suppressed_by = muted.clone();
                a.updated_at = now;
                changed.insert(a.id.clone());
            }
            if muted.is_none() {
                let (steps, repeat) = steps_of(rule, policies);
                let k = a.escalation_step.max(0) as usize;
                let mut channels = Vec::new();
                let fired = a.fired_at.unwrap_or(now);
                if k < steps.len() {
                    expand(&steps[k].channels, rule, &mut channels);
                    if steps[k].quarantine_agent {
                        match a.labels.get("agent") {
                            Some(agent) => plan.quarantine.push((a.id.clone(), agent.clone())),
                            None => plan.event(
                                &a.id,
                                "quarantine_skipped",
                                "the alert has no agent label",
                            ),
                        }
                    }
                    plan.event(&a.id, "escalated", format!("step {}", k + 1));
                    a.escalation_step = k as i64 + 1;
                    a.next_notify_at = match steps.get(k + 1) {
                        Some(next) => Some((fired + next.after_seconds as i64 * 1000).max(now)),
                        None => repeat.map(|r| now + r * 1000),
                    };
                } else {
                    for s in &steps {
                        expand(&s.channels, rule, &mut channels);
                    }
                    plan.event(&a.id, "repeated", "");
                    a.next_notify_at = repeat.map(|r| now + r * 1000);
                }
                a.updated_at = now;
                changed.insert(a.id.clone());
                if !channels.is_empty() {
                    plan.notify.push((a.clone(), Kind::Firing, channels));
                }
            }
        }
        if inserted.contains(&a.id) {
            plan.inserts.push(a);
        } else if changed.contains(&a.id) {
            plan.updates.push(a);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::expr::Value;
    use crate::db::silences::MatcherRow;

    fn rule(name: &str, severity: &str, policy: Option<&str>) -> RuleRow {
        RuleRow {
            name: name.into(),
            expression: "x > 1".into(),
            severity: severity.into(),
            channels: vec!["slack".into(), "email".into()],
            escalation_policy: policy.map(String::from),
            labels: Labels::new(),
            annotations: Labels::from([(
                "summary".into(),
                "{{ $labels.agent }} at {{ $value }}".into(),
            )]),
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn hit(agent: &str, v: f64) -> Hit {
        Hit {
            labels: Labels::from([("agent".into(), agent.into())]),
            value: Value::Number(v),
        }
    }

    fn policies() -> HashMap<String, PolicyRow> {
        let p = PolicyRow {
            name: "standard".into(),
            description: String::new(),
            steps: vec![
                Step {
                    after_seconds: 0,
                    channels: vec!["@rule".into()],
                    quarantine_agent: false,
                },
                Step {
                    after_seconds: 900,
                    channels: vec!["pagerduty".into()],
                    quarantine_agent: true,
                },
            ],
            repeat_seconds: Some(3600),
            created_at: 0,
            updated_at: 0,
        };
        HashMap::from([("standard".into(), p)])
    }

    struct Run {
        rules: HashMap<String, RuleRow>,
        open: Vec<AlertRow>,
        n: u32,
    }

    impl Run {
        fn new(rules: Vec<RuleRow>) -> Run {
            Run {
                rules: rules.into_iter().map(|r| (r.name.clone(), r)).collect(),
                open: vec![],
                n: 0,
            }
        }

        fn step(
            &mut self,
            name: &str,
            for_ms: i64,
            hits: Vec<Hit>,
            silences: &[Active],
            now: i64,
        ) -> Plan {
            let r = self.rules.get(name).unwrap().clone();
            let ev = [Evaluated {
                rule: &r,
                for_ms,
                hits,
            }];
            let mut n = self.n;
            let p = plan(
                &ev,
                &self.rules,
                self.open.clone(),
                silences,
                &policies(),
                now,
                &mut || {
                    n += 1;
                    format!("a{n}")
                },
            );
            self.n = n;
            for a in p.inserts.iter().chain(p.updates.iter()) {
                self.open.retain(|o| o.id != a.id);
                if a.state.is_active() {
                    self.open.push(a.clone());
                }
            }
            p
        }
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut run = Run::new(vec![rule("r", "major", None)]);
        let p = run.step("r", 2000, vec![hit("a", 5.0)], &[], 1000);
        assert_eq!(p.inserts[0].state, AlertState::Pending);
        assert!(p.notify.is_empty());
        assert_eq!(p.inserts[0].annotations["summary"], "a at 5");
        let p = run.step("r", 2000, vec![hit("a", 6.0)], &[], 2000);
        assert!(p.notify.is_empty(), "1 s of 2 s");
        let p = run.step("r", 2000, vec![hit("a", 6.0)], &[], 3000);
        assert_eq!(p.updates[0].state, AlertState::Firing);
        assert_eq!(p.notify.len(), 1);
        assert_eq!(
            p.notify[0].2,
            vec!["slack".to_string(), "email".to_string()]
        );
        let p = run.step("r", 2000, vec![], &[], 4000);
        assert_eq!(p.updates[0].state, AlertState::Resolved);
        assert_eq!(p.resolved.len(), 1);
    }

    #[test]
    fn pending_that_stops_goes_inactive_without_notification() {
        let mut run = Run::new(vec![rule("r", "major", None)]);
        run.step("r", 60_000, vec![hit("a", 5.0)], &[], 0);
        let p = run.step("r", 60_000, vec![], &[], 1000);
        assert_eq!(p.updates[0].state, AlertState::Inactive);
        assert!(p.resolved.is_empty() && p.notify.is_empty());
    }

    #[test]
    fn one_alert_per_series() {
        let mut run = Run::new(vec![rule("r", "major", None)]);
        let p = run.step("r", 0, vec![hit("a", 5.0), hit("b", 7.0)], &[], 0);
        assert_eq!(p.inserts.len(), 2);
        assert_ne!(p.inserts[0].fingerprint, p.inserts[1].fingerprint);
        assert_eq!(p.notify.len(), 2);
    }

    #[test]
    fn escalation_steps_then_repeat_until_acknowledged() {
        let mut run = Run::new(vec![rule("r", "major", Some("standard"))]);
        let p = run.step("r", 0, vec![hit("a", 5.0)], &[], 0);
        assert_eq!(
            p.notify[0].2,
            vec!["slack".to_string(), "email".to_string()]
        );
        assert!(run
            .step("r", 0, vec![hit("a", 5.0)], &[], 899_000)
            .notify
            .is_empty());
        let p = run.step("r", 0, vec![hit("a", 5.0)], &[], 900_000);
        assert_eq!(p.notify[0].2, vec!["pagerduty".to_string()]);
        assert_eq!(p.quarantine, vec![("a1".to_string(), "a".to_string())]);
        let p = run.step("r", 0, vec![hit("a", 5.0)], &[], 900_000 + 3_600_000);
        assert_eq!(p.notify[0].2.len(), 3, "repeat tells every step's channels");
        // Acknowledged: nothing more.
        run.open[0].acknowledged_at = Some(1);
        let p = run.step("r", 0, vec![hit("a", 5.0)], &[], 900_000 + 7_200_000);
        assert!(p.notify.is_empty());
    }

    #[test]
    fn silenced_alerts_are_not_notified_until_the_silence_ends() {
        let mut run = Run::new(vec![rule("r", "major", None)]);
        let silence = Active::of(&[crate::db::silences::SilenceRow {
            id: "s1".into(),
            matchers: vec![MatcherRow {
                name: "agent".into(),
                op: crate::label_match::MatchOp::Eq,
                value: "a".into(),
            }],
            starts_at: 0,
            ends_at: 10,
            created_by: "x".into(),
            comment: "x".into(),
            created_at: 0,
            expired_at: None,
        }]);
        let p = run.step("r", 0, vec![hit("a", 5.0)], &silence, 0);
        assert!(p.notify.is_empty());
        assert_eq!(p.inserts[0].suppressed_by.as_deref(), Some("silence:s1"));
        let p = run.step("r", 0, vec![hit("a", 5.0)], &[], 1000);
        assert_eq!(p.notify.len(), 1, "told once the silence is over");
    }

    #[test]
    fn a_firing_critical_inhibits_lesser_alerts_of_the_same_agent() {
        let mut run = Run::new(vec![
            rule("crit", "critical", None),
            rule("minor", "minor", None),
        ]);
        run.step("crit", 0, vec![hit("a", 1.0)], &[], 0);
        let p = run.step("minor", 0, vec![hit("a", 1.0), hit("b", 1.0)], &[], 0);
        let muted: Vec<_> = p
            .inserts
            .iter()
            .map(|a| a.suppressed_by.is_some())
            .collect();
        assert_eq!(muted, vec![true, false]);
        assert_eq!(p.notify.len(), 1);
    }

    #[test]
    fn disabled_rules_resolve_their_alerts() {
        let mut run = Run::new(vec![rule("r", "major", None)]);
        run.step("r", 0, vec![hit("a", 5.0)], &[], 0);
        run.rules.get_mut("r").unwrap().enabled = false;
        let mut n = 0;
        let p = plan(
            &[],
            &run.rules,
            run.open.clone(),
            &[],
            &policies(),
            10,
            &mut || {
                n += 1;
                n.to_string()
            },
        );
        assert_eq!(p.updates[0].state, AlertState::Resolved);
        assert_eq!(p.events[0].2, "rule disabled");
    }
}
