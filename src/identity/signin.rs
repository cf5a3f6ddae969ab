//! What a sign-in needs after the password (SPEC §16): nothing more, a
//! second factor (the user has one), or enrolment of one (the user holds
//! a role that requires it and has none). And the second step itself: a
//! TOTP code or a recovery code, whose failures count toward the lockout
//! like wrong passwords.

use super::factors::Factors;
use super::login::{self, LockoutPolicy};
use super::recovery;
use super::sessions::Stage;
use crate::audit::Context;
use crate::db::{self, roles, users::UserRow, Db};
use crate::error::Result;

/// The stage a session starts in once `user`'s password was right.
pub async fn stage_after_password(
    factors: &Factors<'_>,
    required_roles: &[String],
    user: &UserRow,
) -> Result<Stage> {
    if factors.any_confirmed(&user.id).await? {
        return Ok(Stage::SecondFactor);
    }
    if must_have_factor(factors.db, required_roles, &user.id).await? {
        return Ok(Stage::Enrol);
    }
    Ok(Stage::Full)
}

/// Whether the user holds a role that requires a second factor.
pub async fn must_have_factor(db: &Db, required_roles: &[String], user_id: &str) -> Result<bool> {
    let (uid, required) = (user_id.to_string(), required_roles.to_vec());
    db.read(move |c| roles::user_holds_any(c, &uid, &required))
        .await
}

/// How a second-step code went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Accepted; the sign-in method to record.
    Accepted(&'static str),
    /// Wrong or used; counted toward the lockout.
    Refused,
    /// The account is locked (now, or by this failure): the sign-in ends.
    Locked,
}

/// Checks a second-step code for `user`: six digits are a TOTP code,
/// twelve letters a recovery code.
pub async fn check_code(
    factors: &Factors<'_>,
    policy: LockoutPolicy,
    ctx: &Context,
    user: &UserRow,
    code: &str,
) -> Result<CodeCheck> {
    let fresh = {
        let id = user.id.clone();
        factors.db.read(move |c| db::users::by_id(c, &id)).await?
    };
    if fresh.as_ref().is_none_or(login::is_locked) {
        return Ok(CodeCheck::Locked);
    }
    let code = code.trim();
    let (ok, method) = if recovery::looks_like_code(code) {
        let ok = recovery::redeem(factors.audit, ctx, &user.id, code).await?;
        (ok, "password+recovery_code")
    } else {
        let ok = factors
            .check_totp(ctx, &user.id, &user.username, code)
            .await?;
        (ok, "password+totp")
    };
    if ok {
        return Ok(CodeCheck::Accepted(method));
    }
    if login::second_factor_failed(factors.db, factors.audit, policy, ctx, &user.id).await? {
        return Ok(CodeCheck::Locked);
    }
    Ok(CodeCheck::Refused)
}
