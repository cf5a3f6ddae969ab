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
    let outcome = match user {
        None => failure(FailureReason::UnknownUser, None),
        Some(u) if is_locked(&u) => failure(FailureReason::Locked, Some(u.id)),
        Some(u) if !u.enabled => failure(FailureReason::Disabled, Some(u.id)),
        Some(u) if !verified => {
            let reason = if count_failure(db, policy, &u.id).await? {
                FailureReason::BadPasswordNowLocked
            } else {
                FailureReason::BadPassword
            };
            failure(reason, Some(u.id))
        }
        // Failures are cleared when the session is made full (after a
        // second factor, where one is due), not here.
        Some(u) => return Ok(LoginOutcome::Success(u)),
    };
    if let LoginOutcome::Failure { reason, user_id } = &outcome {
        record_failure(audit, ctx, username, *reason, user_id.as_deref()).await?;
    }
    if let Some(rest) = FAILURE_FLOOR.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    Ok(outcome)
}

/// Counts a failed password or second factor toward the lockout; true
/// when this failure locked the account.
async fn count_failure(db: &Db, policy: LockoutPolicy, user_id: &str) -> Result<bool> {
    let id = user_id.to_string();
    let now = db::now_ms();
    db.write(move |tx| {
        let n = users::record_failure(tx, &id, now, now - policy.window_ms)?;
        if n >= policy.max_failures {
            users::lock_until(tx, &id, now + policy.lockout_ms)?;
            return Ok(true);
        }
        Ok(false)
    })
    .await
}

/// A wrong second factor: counted toward the lockout like a wrong
/// password (its own failure is audited by the factor check). Returns
/// true when it locked the account, which is then audited here.
pub async fn second_factor_failed(
    db: &Db,
    audit: &Audit,
    policy: LockoutPolicy,
    ctx: &Context,
    user_id: &str,
) -> Result<bool> {
    let locked = count_failure(db, policy, user_id).await?;
    if locked {
        audit
            .record(
                ctx.event("auth.lockout", Outcome::Success)
                    .target(crate::identity::PrincipalKind::User.as_str(), user_id)
                    .reason("too many failed second factors"),
            )
            .await?;
    }
    Ok(locked)
}

/// Whether a user is locked out now.
pub fn is_locked(user: &users::UserRow) -> bool {
    user.locked_until.is_some_and(|t| t > db::now_ms())
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
