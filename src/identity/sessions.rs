//! Browser sessions: a 256-bit random token in the cookie, its SHA-256 in
//! the database, an idle timeout and an absolute lifetime.

use zeroize::Zeroizing;

use crate::audit::{Audit, Context, Outcome};
use crate::crypto::{random, sha256_hex};
use crate::db::{self, sessions as repo, users, Db};
use crate::error::Result;

pub use crate::db::sessions::Stage;

/// A half-done sign-in (password given, second factor not yet) lasts this
/// long.
pub const PENDING_MS: i64 = 10 * 60_000;

/// Last-seen updates are written at most this often, so that a busy page
/// does not turn every read into a write.
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl SessionPolicy {
    pub fn from_config(c: &crate::config::SessionConfig) -> SessionPolicy {
        SessionPolicy {
            idle_ms: (c.idle_timeout_minutes * 60_000) as i64,
            absolute_ms: (c.absolute_lifetime_hours * 3_600_000) as i64,
        }
    }
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// SHA-256 of the cookie value: identifies the session without being it.
    pub id_hash: String,
    pub user: users::UserRow,
    pub expires_at: i64,
    pub stage: Stage,
}

pub struct NewSession {
    /// The cookie value; shown to the browser once, never stored.
    pub token: Zeroizing<String>,
    pub id_hash: String,
}

/// Starts a session for a user who just proved who they are (`method`:
/// `password`, `password+totp`, `passkey`, `oidc`, ...), recording the
/// successful login in the same transaction. A full session clears the
/// failures counted toward lockout. A half-done one (`stage` other than
/// full) lasts [`PENDING_MS`] and is recorded as `auth.password`. `ctx` is
/// the user's context.
pub async fn create(
    audit: &Audit,
    ctx: &Context,
    user_id: &str,
    policy: SessionPolicy,
    stage: Stage,
    method: &str,
) -> Result<NewSession> {
    start(audit, ctx, user_id, policy, stage, method, None).await
}

/// Finishes a half-done sign-in: the pending session is replaced by a new
/// full one (a new cookie value), in one transaction.
pub async fn upgrade(
    audit: &Audit,
    ctx: &Context,
    pending: &ActiveSession,
    policy: SessionPolicy,
    method: &str,
) -> Result<NewSession> {
    let user_id = pending.user.id.clone();
    let old = pending.id_hash.clone();
    start(audit, ctx, &user_id, policy, Stage::Full, method, Some(old)).await
}

async fn start(
    audit: &Audit,
    ctx: &Context,
    user_id: &str,
    policy: SessionPolicy,
    stage: Stage,
    method: &str,
    replaces: Option<String>,
) -> Result<NewSession> {
    let (source_ip, user_agent) = (ctx.source_ip.clone(), ctx.user_agent.clone());
    let token = Zeroizing::new(random::token());
    let id_hash = sha256_hex(token.as_bytes());
    let now = db::now_ms();
    let lifetime = match stage {
        Stage::Full => policy.absolute_ms,
        Stage::SecondFactor | Stage::Enrol => PENDING_MS,
    };
    let row = repo::SessionRow {
        token_hash: id_hash.clone(),
        user_id: user_id.to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + lifetime,
        source_ip,
        user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
        stage,
    };
    let event = match stage {
        Stage::Full => ctx.event("auth.login", Outcome::Success),
        _ => ctx
            .event("auth.password", Outcome::Success)
            .detail("next", stage.as_str()),
    };
    let event = event
        .target(crate::identity::PrincipalKind::User.as_str(), user_id)
        .detail("method", method)
        .detail("session", &id_hash[..12]);
    let uid = user_id.to_string();
    audit
        .apply(event, move |c| {
            if let Some(old) = &replaces {
                if !repo::delete(c, old)? {
                    // The half-done sign-in expired or was finished by a
                    // racing request.
                    return Err(crate::error::Error::Unauthenticated);
                }
            }
            if stage == Stage::Full {
                // Failures before a full sign-in no longer count toward a lock.
                users::clear_lockout(c, &uid)?;
            }
            repo::insert(c, &row)
        })
        .await?;
    Ok(NewSession { token, id_hash })
}

/// Resolves a cookie value to a live session. Expired or idle sessions are
/// deleted on sight; sessions of disabled users do not resolve.
pub async fn resolve(db: &Db, token: &str, policy: SessionPolicy) -> Result<Option<ActiveSession>> {
    // Cookie values we issue are exactly 43 base64url characters; anything
    // else cannot match and need not touch the database.
    if token.len() != 43 {
        return Ok(None);
    }
    let id_hash = sha256_hex(token.as_bytes());
    let now = db::now_ms();
    let found = {
        let id_hash = id_hash.clone();
        db.read(move |c| {
            let Some(s) = repo::get(c, &id_hash)? else {
                return Ok(None);
            };
            let user = users::by_id(c, &s.user_id)?;
            Ok(user.map(|u| (s, u)))
        })
        .await?
    };
    let Some((session, user)) = found else {
        return Ok(None);
    };
    let expired = session.expires_at <= now || session.last_seen_at + policy.idle_ms <= now;
    if expired || !user.enabled {
        destroy(db, &id_hash).await?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY_MS {
        let h = id_hash.clone();
        db.write(move |tx| repo::touch(tx, &h, now)).await?;
    }
    Ok(Some(ActiveSession {
        id_hash,
        user,
        expires_at: session.expires_at,
        stage: session.stage,
    }))
}

/// Ends a session at the user's request (logout), audited.
pub async fn logout(audit: &Audit, ctx: &Context, session: &ActiveSession) -> Result<bool> {
    let h = session.id_hash.clone();
    let event = ctx
        .event("auth.logout", Outcome::Success)
        .target(
            crate::identity::PrincipalKind::User.as_str(),
            &session.user.id,
        )
        .detail("session", &h[..12]);
    audit.apply(event, move |c| repo::delete(c, &h)).await
}

/// Drops a session that expired or whose user is gone or disabled.
pub async fn destroy(db: &Db, id_hash: &str) -> Result<bool> {
    let h = id_hash.to_string();
    db.write(move |tx| repo::delete(tx, &h)).await
}

/// Deletes expired and idle sessions (a scheduled job).
pub async fn prune(db: &Db, policy: SessionPolicy) -> Result<usize> {
    let now = db::now_ms();
    db.write(move |tx| repo::prune(tx, now, now - policy.idle_ms))
        .await
}
