//! The one decision path.
//!
//! Every "may S do P (on R)?" is answered here: the decision API, the guard
//! on agentry's own endpoints, the UI's "check access" page (and, with
//! Part II, the gateway for every tool call). One function, so containment
//! (a disabled or quarantined subject is denied whoever asks), token scope
//! and the compiled policy are applied the same way everywhere, and every
//! answer comes with the audit record its purpose calls for.

use std::collections::HashMap;
use std::sync::Arc;

use super::engine::{Decision, Policy, Subject};
use super::patterns;
use super::view::PolicyView;
use crate::audit::{Audit, Context, Event, Outcome};
use crate::db::Db;
use crate::error::Result;
use crate::identity::principals::{PrincipalCache, PrincipalState};

/// What a decision is for: it names the audit action and which outcomes
/// are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A permission one of agentry's own endpoints requires of its caller
    /// (`authz.check`): denials are recorded; allowed calls are the
    /// endpoint's own business.
    Guard,
    /// A question put to the decision API or the "check access" page
    /// (`authz.decision`): denials are recorded, and allowed answers when
    /// `record_allowed` says so (`authz.audit_decisions`).
    Query { record_allowed: bool },
}

impl Purpose {
    fn action(self) -> &'static str {
        match self {
            Purpose::Guard => "authz.check",
            Purpose::Query { .. } => "authz.decision",
        }
    }

    fn records(self, allowed: bool) -> bool {
        match self {
            Purpose::Guard => !allowed,
            Purpose::Query { record_allowed } => !allowed || record_allowed,
        }
    }
}

/// One question.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub subject: &'a Subject,
    pub permission: &'a str,
    /// `(type, id)` of the resource acted on, for scoped assignments.
    pub resource: Option<(&'a str, &'a str)>,
    /// The permissions of the token the subject called with, if it did:
    /// the permission must be among them as well as held.
    pub scope: Option<&'a [String]>,
}

/// A decision and, when its purpose records it, its audit record (not yet
/// committed: a batch commits its records together).
#[derive(Debug)]
pub struct Answer {
    pub decision: Decision,
    pub record: Option<Event>,
}

/// What deciding reads.
pub struct Decider<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub policy: &'a PolicyView,
    pub principals: &'a PrincipalCache,
}

impl Decider<'_> {
    /// Decides one question; `ctx` is whoever asks (the actor of the record).
    pub async fn decide(&self, ctx: &Context, purpose: Purpose, q: Question<'_>) -> Result<Answer> {
        let mut answers = self.decide_all(ctx, purpose, &[q]).await?;
        Ok(answers.remove(0))
    }

    /// Decides one question and commits its audit record, if its purpose
    /// calls for one.
    pub async fn decide_recorded(
        &self,
        ctx: &Context,
        purpose: Purpose,
        q: Question<'_>,
    ) -> Result<Decision> {
        let answer = self.decide(ctx, purpose, q).await?;
        if let Some(record) = answer.record {
            self.audit.record(record).await?;
        }
        Ok(answer.decision)
    }

    /// Decides several questions against one snapshot of the policy, in
    /// order.
    pub async fn decide_all(
        &self,
        ctx: &Context,
        purpose: Purpose,
        questions: &[Question<'_>],
    ) -> Result<Vec<Answer>> {
        let policy = self.policy.get(self.db, self.audit).await?;
        let mut states: HashMap<&Subject, Option<Arc<PrincipalState>>> = HashMap::new();
        let mut out = Vec::with_capacity(questions.len());
        for q in questions {
            let state = match states.get(q.subject) {
                Some(s) => s.clone(),
                None => {
                    let s = self
                        .principals
                        .get(self.db, self.audit, q.subject.kind, &q.subject.id)
                        .await?;
                    states.insert(q.subject, s.clone());
                    s
                }
            };
            let decision = decide(&policy, state.as_deref(), q);
            let record = purpose
                .records(decision.allowed)
                .then(|| record(ctx, purpose, q, &decision));
            out.push(Answer { decision, record });
        }
        Ok(out)
    }
}

/// The decision itself, pure: the subject must exist and be enabled, the
/// permission must be in the token's scope (if any), and the policy must
/// grant it.
pub fn decide(policy: &Policy, state: Option<&PrincipalState>, q: &Question<'_>) -> Decision {
    if let Err(reason) = admitted(q.subject, state) {
        return deny(reason);
    }
    if let Some(scope) = q.scope {
        if !patterns::any_grants(scope, q.permission) {
            return deny(format!(
                "the token's scope does not include {}",
                q.permission
            ));
        }
    }
    policy.check(q.subject, q.permission, q.resource)
}

/// Whether a subject can be granted anything at all: it exists and is not
/// contained (disabled or quarantined). Else the reason.
pub fn admitted(subject: &Subject, state: Option<&PrincipalState>) -> Result<(), String> {
    let Some(state) = state else {
        return Err(format!(
            "there is no {} with id {}",
            subject.kind, subject.id
        ));
    };
    match state.contained() {
        Some(reason) => Err(reason.to_string()),
        None => Ok(()),
    }
}

fn deny(reason: String) -> Decision {
    Decision {
        allowed: false,
        granted_by: Vec::new(),
        reason,
    }
}

fn record(ctx: &Context, purpose: Purpose, q: &Question<'_>, d: &Decision) -> Event {
    let outcome = if d.allowed {
        Outcome::Success
    } else {
        Outcome::Denied
    };
    let mut ev = ctx
        .event(purpose.action(), outcome)
        .target(q.subject.kind.as_str(), &q.subject.id)
        .detail("permission", q.permission)
        .detail("granted_by", &d.granted_by);
    if let Some((kind, id)) = q.resource {
        ev = ev.detail("resource", serde_json::json!({"type": kind, "id": id}));
    }
    if !d.allowed {
        ev = ev.reason(d.reason.clone());
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrincipalKind;
    use crate::rbac::engine::{Assignment, PolicyData};

    fn policy(subject: &Subject) -> Policy {
        let mut data = PolicyData::default();
        data.roles
            .insert("svc".into(), (vec!["knowledge:read".into()], vec![]));
        data.assignments.insert(
            subject.clone(),
            vec![Assignment {
                role: "svc".into(),
                scope: None,
            }],
        );
        Policy::compile(data)
    }

    fn state(enabled: bool, quarantined_at: Option<i64>) -> PrincipalState {
        PrincipalState {
            kind: PrincipalKind::Agent,
            id: "a1".into(),
            name: "svc".into(),
            enabled,
            tokens_not_before: None,
            quarantined_at,
            roles: vec!["svc".into()],
        }
    }

    #[test]
    fn containment_scope_and_existence_come_before_the_policy() {
        let subject = Subject {
            kind: PrincipalKind::Agent,
            id: "a1".into(),
        };
        let p = policy(&subject);
        let q = Question {
            subject: &subject,
            permission: "knowledge:read",
            resource: None,
            scope: None,
        };
        assert!(decide(&p, Some(&state(true, None)), &q).allowed);
        let d = decide(&p, Some(&state(false, None)), &q);
        assert_eq!(
            (d.allowed, d.reason.as_str()),
            (false, "subject is disabled")
        );
        let d = decide(&p, Some(&state(false, Some(1))), &q);
        assert_eq!(
            (d.allowed, d.reason.as_str()),
            (false, "subject is disabled (quarantined)")
        );
        let d = decide(&p, None, &q);
        assert!(
            !d.allowed && d.reason.contains("there is no agent"),
            "{d:?}"
        );
        let narrow = ["metrics:report".to_string()];
        let d = decide(
            &p,
            Some(&state(true, None)),
            &Question {
                scope: Some(&narrow),
                ..q
            },
        );
        assert!(!d.allowed && d.reason.contains("scope"), "{d:?}");
    }

    #[test]
    fn purposes_record_what_they_should() {
        assert!(Purpose::Guard.records(false) && !Purpose::Guard.records(true));
        let all = Purpose::Query {
            record_allowed: true,
        };
        let denials = Purpose::Query {
            record_allowed: false,
        };
        assert!(all.records(true) && all.records(false));
        assert!(!denials.records(true) && denials.records(false));
    }
}
