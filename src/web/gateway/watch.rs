//! What the gateway does with the upstream's answer to one request: a
//! `*/list` answer is filtered to what the sender may use, and a call's
//! outcome is recorded (linked to its decision record) when the answer
//! passes, when the upstream fails, or when the client goes away first.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::audit::Context;
use crate::mcp::gateway::{Gateway, Route, Who};
use crate::mcp::message::Kind;
use crate::mcp::policy::LISTS;
use crate::mcp::record::{outcome_of, Call, CallOutcome};
use crate::rbac::engine::Policy;

pub struct Watch {
    pub gateway: Gateway,
    pub policy: Arc<Policy>,
    pub who: Arc<Who>,
    pub route: Arc<Route>,
    pub ctx: Context,
    pub call: Call,
    /// Set for a recorded call: its decision record.
    pub decision_seq: Option<i64>,
    pub started: Instant,
    /// The answer has passed (or the failure is recorded).
    settled: bool,
}

impl Watch {
    /// A watch over the answer to `call`, when there is anything to do
    /// with it (a list to filter, a result to record).
    #[allow(clippy::too_many_arguments)]
    pub fn over(
        gateway: &Gateway,
        policy: Arc<Policy>,
        who: Arc<Who>,
        route: Arc<Route>,
        ctx: Context,
        call: Call,
        decision_seq: Option<i64>,
        started: Instant,
    ) -> Option<Watch> {
        Self::wanted(&call, decision_seq).then(|| Watch {
            gateway: gateway.clone(),
            policy,
            who,
            route,
            ctx,
            call,
            decision_seq,
            started,
            settled: false,
        })
    }

    /// Whether the answer to `call` is watched: a list to filter or a
    /// recorded call.
    pub fn wanted(call: &Call, decision_seq: Option<i64>) -> bool {
        list_method(call).is_some() || decision_seq.is_some()
    }

    /// The id of the request whose answer is watched.
    pub fn id(&self) -> Option<&Value> {
        match &self.call.message.kind {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Whether `message` is the answer watched for.
    pub fn is_answer(&self, message: &Value) -> bool {
        (message.get("result").is_some() || message.get("error").is_some())
            && message.get("id") == self.id()
    }

    /// Takes the answer: filters a list (true when it changed it) and
    /// records a call's outcome.
    pub fn answer(&mut self, answer: &mut Value) -> bool {
        let mut changed = false;
        if let Some(method) = list_method(&self.call) {
            changed = self
                .gateway
                .filter(&self.policy, &self.who, &self.route, method, answer)
                > 0;
        }
        let (outcome, detail) = outcome_of(answer);
        self.settle(outcome, detail.as_deref());
        changed
    }

    /// The upstream gave no usable answer.
    pub fn failed(&mut self, detail: &str) {
        self.settle(CallOutcome::UpstreamFailure, Some(detail));
    }

    /// The call was held for approval and is not forwarded.
    pub fn not_approved(&mut self, detail: &str) {
        self.settle(CallOutcome::NotApproved, Some(detail));
    }

    /// The call goes upstream now (after waiting for an approval): its
    /// latency counts from here.
    pub fn forwarding_now(&mut self) {
        self.started = Instant::now();
    }

    fn settle(&mut self, outcome: CallOutcome, detail: Option<&str>) {
        if self.settled {
            return;
        }
        self.settled = true;
        match self.decision_seq {
            Some(seq) => {
                self.gateway
                    .finish(&self.ctx, &self.call, seq, outcome, detail, self.started)
            }
            // A list: only its span.
            None => self.gateway.end_span(
                &self.call,
                (outcome != CallOutcome::Ok).then(|| detail.unwrap_or(outcome.as_str())),
            ),
        }
    }
}

impl Drop for Watch {
    /// The answer never passed: the client went away (its stream was
    /// dropped) before the upstream answered.
    fn drop(&mut self) {
        self.settle(
            CallOutcome::Cancelled,
            Some("the client closed the connection before the answer"),
        );
    }
}

fn list_method(call: &Call) -> Option<&'static str> {
    let method = call.message.method()?;
    LISTS.iter().map(|(m, _)| *m).find(|m| *m == method)
}
