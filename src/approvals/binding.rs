//! The binding of an approval to the exact call (SPEC §18), as a pure
//! function: an approval covers a call only for the same principal,
//! server, tool, arguments digest, rule and rule version; it is used once
//! and expires. A retry of an identical call joins the request under way.

use super::ApprovalState;

/// A call held (or checked) under a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    pub principal_type: &'a str,
    pub principal_id: &'a str,
    pub server: &'a str,
    pub tool: &'a str,
    /// SHA-256 of the arguments in RFC 8785 canonical JSON (hex).
    pub arguments_digest: &'a str,
    pub rule_id: &'a str,
    pub rule_version: i64,
}

pub use crate::db::approvals::Request;

impl Request {
    /// Whether this request is for exactly `call`.
    pub fn binds(&self, call: &Call<'_>) -> bool {
        self.principal_type == call.principal_type
            && self.principal_id == call.principal_id
            && self.server == call.server
            && self.tool == call.tool
            && self.arguments_digest == call.arguments_digest
            && self.rule_id == call.rule_id
            && self.rule_version == call.rule_version
    }

    /// The state at `now`: pending and approved requests past their
    /// expiry are expired, whatever is stored.
    pub fn state_at(&self, now: i64) -> ApprovalState {
        match self.state {
            ApprovalState::Pending | ApprovalState::Approved if self.expires_at <= now => {
                ApprovalState::Expired
            }
            s => s,
        }
    }
}

/// What to do with a call that a rule covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An approved, unused request binds it: the call goes ahead and the
    /// approval is used up (by the caller, in the same transaction).
    Proceed { approval_id: String },
    /// A pending request binds it (a retry): wait on that one.
    Join { approval_id: String },
    /// Nothing binds it: a new request is made and the call waits.
    Ask,
}

/// Decides a covered call against the requests stored for its binding
/// (any order). Denied, expired and used requests never let a call
/// through; an identical call after them asks again.
pub fn decide(call: &Call<'_>, requests: &[Request], now: i64) -> Verdict {
    let bound = requests.iter().filter(|r| r.binds(call));
    let mut pending = None;
    for r in bound {
        match r.state_at(now) {
            ApprovalState::Approved => {
                return Verdict::Proceed {
                    approval_id: r.id.clone(),
                }
            }
            ApprovalState::Pending => pending = pending.or(Some(r.id.clone())),
            _ => {}
        }
    }
    match pending {
        Some(approval_id) => Verdict::Join { approval_id },
        None => Verdict::Ask,
    }
}

/// Why a person may not decide a request (four eyes and the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionRefused {
    /// The approver asked for it.
    OwnRequest,
    /// It is no longer pending (decided, used or expired).
    NotPending(ApprovalState),
}

/// Whether `approver` may approve or deny `request` at `now` (holding the
/// rule's approver role is checked by the decision engine, not here).
pub fn may_decide(
    request: &Request,
    approver_type: &str,
    approver_id: &str,
    now: i64,
) -> Result<(), DecisionRefused> {
    if request.principal_type == approver_type && request.principal_id == approver_id {
        return Err(DecisionRefused::OwnRequest);
    }
    match request.state_at(now) {
        ApprovalState::Pending => Ok(()),
        other => Err(DecisionRefused::NotPending(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call<'static> {
        Call {
            principal_type: "agent",
            principal_id: "a1",
            server: "workflows",
            tool: "delete_workflow",
            arguments_digest: "d1",
            rule_id: "r1",
            rule_version: 3,
        }
    }

    /// The stored fixture's binding, in `state`, under rule version 3.
    fn request(id: &str, state: ApprovalState, expires_at: i64) -> Request {
        Request {
            state,
            rule_version: 3,
            ..crate::db::approvals::tests::request(id, expires_at).binding
        }
    }

    #[test]
    fn an_approval_lets_only_its_exact_call_through() {
        let approved = request("x", ApprovalState::Approved, 100);
        assert_eq!(
            decide(&call(), std::slice::from_ref(&approved), 50),
            Verdict::Proceed {
                approval_id: "x".into()
            }
        );
        let others = [
            Call {
                arguments_digest: "d2",
                ..call()
            },
            Call {
                principal_id: "a2",
                ..call()
            },
            Call {
                principal_type: "user",
                ..call()
            },
            Call {
                tool: "delete_all",
                ..call()
            },
            Call {
                server: "other",
                ..call()
            },
            Call {
                rule_id: "r2",
                ..call()
            },
            Call {
                rule_version: 4,
                ..call()
            },
        ];
        for other in others {
            assert_eq!(
                decide(&other, std::slice::from_ref(&approved), 50),
                Verdict::Ask,
                "{other:?}"
            );
        }
    }

    #[test]
    fn used_denied_and_expired_approvals_never_let_a_call_through() {
        for state in [
            ApprovalState::Used,
            ApprovalState::Denied,
            ApprovalState::Expired,
        ] {
            assert_eq!(
                decide(&call(), &[request("x", state, 100)], 50),
                Verdict::Ask,
                "{state}"
            );
        }
        // Approved but past its expiry.
        assert_eq!(
            decide(&call(), &[request("x", ApprovalState::Approved, 100)], 100),
            Verdict::Ask
        );
    }

    #[test]
    fn a_retry_joins_the_pending_request_and_an_approval_wins() {
        let pending = request("p", ApprovalState::Pending, 100);
        assert_eq!(
            decide(&call(), std::slice::from_ref(&pending), 50),
            Verdict::Join {
                approval_id: "p".into()
            }
        );
        assert_eq!(
            decide(&call(), std::slice::from_ref(&pending), 100),
            Verdict::Ask,
            "expired"
        );
        let approved = request("a", ApprovalState::Approved, 100);
        assert_eq!(
            decide(&call(), &[pending, approved], 50),
            Verdict::Proceed {
                approval_id: "a".into()
            }
        );
    }

    #[test]
    fn four_eyes_and_only_while_pending() {
        let r = request("p", ApprovalState::Pending, 100);
        assert_eq!(
            may_decide(&r, "agent", "a1", 50),
            Err(DecisionRefused::OwnRequest)
        );
        assert_eq!(
            may_decide(&r, "user", "a1", 50),
            Ok(()),
            "another kind, same id"
        );
        assert_eq!(may_decide(&r, "user", "u9", 50), Ok(()));
        assert_eq!(
            may_decide(&r, "user", "u9", 100),
            Err(DecisionRefused::NotPending(ApprovalState::Expired))
        );
        let done = request("p", ApprovalState::Approved, 100);
        assert_eq!(
            may_decide(&done, "user", "u9", 50),
            Err(DecisionRefused::NotPending(ApprovalState::Approved))
        );
    }
}
