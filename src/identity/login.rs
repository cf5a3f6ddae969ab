//! Password login with brute-force lockout and equalised timing.
//!
//! Every attempt runs one argon2 verification, whether or not the user
//! exists, is locked or is disabled, and failures are padded to a common
//! floor, so neither the message nor the timing says which case it was.
//! The reason is kept for the audit trail only.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::passwords::Hasher;
use crate::audit::{Audit, Context, Outcome};
use crate::config::LoginConfig;
use crate::db::{self, users, Db};
use crate::error::Result;

/// Failed logins take at least this long (covers the database writes that
/// only some failure paths make).
const FAILURE_FLOOR: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

impl LockoutPolicy {
    pub fn from_config(c: &LoginConfig) -> LockoutPolicy {
        LockoutPolicy {
            max_failures: c.max_failures,
            window_ms: (c.failure_window_minutes * 60_000) as i64,
            lockout_ms: (c.lockout_minutes * 60_000) as i64,
        }
    }
}

/// Why a login failed. For the audit trail, never for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownUser,
    BadPassword,
    /// This failure crossed the threshold and locked the account.
    BadPasswordNowLocked,
    Locked,
    Disabled,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::UnknownUser => "unknown_user",
            FailureReason::BadPassword => "bad_password",
            FailureReason::BadPasswordNowLocked => "bad_password_account_locked",
            FailureReason::Locked => "account_locked",
            FailureReason::Disabled => "account_disabled",
        }
    }
}

#[derive(Debug)]
pub enum LoginOutcome {
    Success(users::UserRow),
    Failure {
        reason: FailureReason,
        /// The user's id when the name matched a user.
        user_id: Option<String>,
    },
}

/// Checks a password login. Failures (and a lock they cause) are audited
/// here; a success is audited when its session is created.
pub async fn login(
    db: &Db,
    audit: &Audit,
    hasher: &Hasher,
    policy: LockoutPolicy,
    ctx: &Context,
    username: &str,
    password: Zeroizing<String>,
) -> Result<LoginOutcome> {
    let started = Instant::now();
    let name = username.to_string();
    let user = if super::validate_username(username).is_ok() {
        db.read(move |c| users::by_username(c, &name)).await?
    } else {
        None
    };
    let verified = hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let now = db::now_ms();

    let outcome = match user {
        None => failure(FailureReason::UnknownUser, None),
        Some(u) if u.locked_until.is_some_and(|t| t > now) => {
            failure(FailureReason::Locked, Some(u.id))
        }
        Some(u) if !u.enabled => failure(FailureReason::Disabled, Some(u.id)),
        Some(u) if !verified => {
            let id = u.id.clone();
            let locked = db
                .write(move |tx| {
                    let n = users::record_failure(tx, &id, now, now - policy.window_ms)?;
                    if n >= policy.max_failures {
                        users::lock_until(tx, &id, now + policy.lockout_ms)?;
                        return Ok(true);
                    }
                    Ok(false)
                })
                .await?;
            let reason = if locked {
                FailureReason::BadPasswordNowLocked
            } else {
                FailureReason::BadPassword
            };
            failure(reason, Some(u.id))
        }
        Some(u) => {
            // Failures before a success no longer count toward a lock.
            let id = u.id.clone();
            db.write(move |tx| users::clear_lockout(tx, &id)).await?;
            return Ok(LoginOutcome::Success(u));
        }
    };
    if let LoginOutcome::Failure { reason, user_id } = &outcome {
        record_failure(audit, ctx, username, *reason, user_id.as_deref()).await?;
    }
    if let Some(rest) = FAILURE_FLOOR.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    Ok(outcome)
}

fn failure(reason: FailureReason, user_id: Option<String>) -> LoginOutcome {
    LoginOutcome::Failure { reason, user_id }
}

async fn record_failure(
    audit: &Audit,
    ctx: &Context,
    username: &str,
    reason: FailureReason,
    user_id: Option<&str>,
) -> Result<()> {
    // The attempted name is kept (short, printable) so that guessing shows
    // up in the trail; the password never is.
    let attempted: String = username
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let mut ev = ctx
        .event("auth.login", Outcome::Failure)
        .reason(reason.as_str())
        .detail("method", "password")
        .detail("username", &attempted);
    ev.actor_name = Some(attempted);
    if let Some(id) = user_id {
        ev = ev.target(crate::identity::PrincipalKind::User.as_str(), id);
    }
    audit.record(ev).await?;
    if let (FailureReason::BadPasswordNowLocked, Some(id)) = (reason, user_id) {
        audit
            .record(
                ctx.event("auth.lockout", Outcome::Success)
                    .target(crate::identity::PrincipalKind::User.as_str(), id)
                    .reason("too many failed logins"),
            )
            .await?;
    }
    Ok(())
}
