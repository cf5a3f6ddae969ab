//! The `signing_keys` and `revoked_tokens` tables.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_key: String,
    pub private_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

pub fn insert_key(conn: &Connection, k: &SigningKeyRow) -> Result<()> {
    conn.execute(
        "INSERT INTO signing_keys (kid, alg, public_key, private_key, created_at, retired_at, publish_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![k.kid, k.alg, k.public_key, k.private_key, k.created_at, k.retired_at, k.publish_until],
    )?;
    Ok(())
}

/// Keys still published (active, or retired but with live tokens), newest first.
pub fn published_keys(conn: &Connection, now: i64) -> Result<Vec<SigningKeyRow>> {
    let mut stmt = conn.prepare(
        "SELECT kid, alg, public_key, private_key, created_at, retired_at, publish_until FROM signing_keys
         WHERE publish_until IS NULL OR publish_until > ?1 ORDER BY created_at DESC",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(SigningKeyRow {
            kid: r.get(0)?,
            alg: r.get(1)?,
            public_key: r.get(2)?,
            private_key: r.get(3)?,
            created_at: r.get(4)?,
            retired_at: r.get(5)?,
            publish_until: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Retires every active key.
pub fn retire_active(conn: &Connection, now: i64, publish_until: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE signing_keys SET retired_at = ?1, publish_until = ?2 WHERE retired_at IS NULL",
        params![now, publish_until],
    )?)
}

pub fn revoke_token(
    conn: &Connection,
    jti: &str,
    subject: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO revoked_tokens (jti, subject, revoked_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![jti, subject, now, expires_at],
    )?;
    Ok(())
}

pub fn is_revoked(conn: &Connection, jti: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM revoked_tokens WHERE jti = ?1", [jti], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

pub fn prune_revoked(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?1", [now])?)
}

/// Voids every token of an agent issued before `at`.
pub fn void_agent_tokens(conn: &Connection, agent_id: &str, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE agents SET tokens_not_before = ?2 WHERE id = ?1",
        params![agent_id, at],
    )?;
    Ok(())
}

/// Voids every token of a user issued before `at`.
pub fn void_user_tokens(conn: &Connection, user_id: &str, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET tokens_not_before = ?2 WHERE id = ?1",
        params![user_id, at],
    )?;
    Ok(())
}

/// The instant before which a user's tokens are void, if any.
pub fn user_tokens_not_before(conn: &Connection, user_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT tokens_not_before FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// (enabled, tokens_not_before) of an agent.
pub fn agent_token_state(conn: &Connection, agent_id: &str) -> Result<Option<(bool, Option<i64>)>> {
    Ok(conn
        .query_row(
            "SELECT enabled, tokens_not_before FROM agents WHERE id = ?1",
            [agent_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Ids of revoked tokens that have not expired yet.
pub fn revoked_ids(conn: &Connection, now: i64) -> Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare("SELECT jti FROM revoked_tokens WHERE expires_at > ?1")?;
    let rows = stmt.query_map([now], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every signing key's sealed private key, as (kid, sealed).
pub fn sealed_private_keys(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT kid, private_key FROM signing_keys ORDER BY kid")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_private_key(conn: &Connection, kid: &str, sealed: &str) -> Result<()> {
    conn.execute(
        "UPDATE signing_keys SET private_key = ?2 WHERE kid = ?1",
        params![kid, sealed],
    )?;
    Ok(())
}
