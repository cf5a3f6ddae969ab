//! A held call waiting for its request's decision (SPEC §18): woken by
//! every decision and expiry in this process (and, belt and braces, every
//! few seconds), it ends when the request is approved (and then used up
//! for this call), denied, expired, used by an identical call that joined
//! it, or gone with its rule. Dropping the wait (the client went away)
//! leaves the request as it is, for the client's retry to join.

use std::time::Duration;

use super::requests::Approvals;
use super::ApprovalState;
use crate::audit::Context;
use crate::db::{self, approvals as repo};
use crate::error::Result;

/// A wait looks at its request again at least this often.
const RECHECK: Duration = Duration::from_secs(5);

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// Approved, and used up for this call: it goes ahead.
    Proceed,
    /// An approver said no (with their reason, if given).
    Denied { reason: Option<String> },
    /// Nobody decided in time.
    Expired,
    /// Approved, but an identical call that joined the same request went
    /// ahead with it (an approval is used once).
    UsedElsewhere,
    /// The request is gone (its rule was deleted).
    Gone,
    /// The appliance is stopping; the request stays as it is.
    Interrupted,
}

impl Waited {
    /// What the caller is told when the call does not go ahead.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Waited::Proceed => None,
            Waited::Denied { reason: Some(r) } => {
                Some(format!("the call was denied by an approver: {r}"))
            }
            Waited::Denied { reason: None } => Some("the call was denied by an approver".into()),
            Waited::Expired => {
                Some("nobody approved the call in time: the approval request expired".into())
            }
            Waited::UsedElsewhere => Some(
                "the approval was used by an identical call; an approval lets one call through"
                    .into(),
            ),
            Waited::Gone => Some("the approval request was withdrawn with its rule".into()),
            Waited::Interrupted => Some(
                "agentry is restarting; the approval request stays: retry the identical call \
                 to wait for its decision again"
                    .into(),
            ),
        }
    }
}

impl Approvals<'_> {
    /// Waits until request `id` is decided or expires; see [`Waited`].
    pub async fn wait(&self, ctx: &Context, id: &str) -> Result<Waited> {
        let mut changes = self.live.watch();
        loop {
            changes.borrow_and_update();
            if self.live.is_closing() {
                return Ok(Waited::Interrupted);
            }
            let aid = id.to_string();
            let Some(row) = self.db.read(move |c| repo::get(c, &aid)).await? else {
                return Ok(Waited::Gone);
            };
            let now = db::now_ms();
            match row.binding.state_at(now) {
                ApprovalState::Approved => {
                    if self.use_up(ctx, id).await? {
                        return Ok(Waited::Proceed);
                    }
                    // Used or expired meanwhile: the next read says which.
                }
                ApprovalState::Pending => {
                    let left = u64::try_from(row.binding.expires_at - now).unwrap_or(0);
                    tokio::select! {
                        changed = changes.changed() => {
                            if changed.is_err() {
                                tokio::time::sleep(RECHECK).await;
                            }
                        }
                        () = tokio::time::sleep(Duration::from_millis(left)) => {
                            self.expire(ctx).await?;
                        }
                        () = tokio::time::sleep(RECHECK) => {}
                    }
                }
                ApprovalState::Denied => return Ok(Waited::Denied { reason: row.reason }),
                ApprovalState::Expired => return Ok(Waited::Expired),
                ApprovalState::Used => return Ok(Waited::UsedElsewhere),
            }
        }
    }
}
