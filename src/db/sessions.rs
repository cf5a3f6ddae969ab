//! The `sessions` table. Rows are keyed by the SHA-256 of the cookie value.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

crate::closed_set! {
    /// How far a session's sign-in got: signed in (`full`), or the password
    /// was right and a second factor is still to be given
    /// (`second_factor`) or enrolled first (`enrol`).
    pub enum Stage {
        Full = "full",
        SecondFactor = "second_factor",
        Enrol = "enrol",
    }
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub stage: Stage,
}

pub fn insert(conn: &Connection, s: &SessionRow) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, source_ip,
            user_agent, stage)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.token_hash,
            s.user_id,
            s.created_at,
            s.last_seen_at,
            s.expires_at,
            s.source_ip,
            s.user_agent,
            s.stage
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, token_hash: &str) -> Result<Option<SessionRow>> {
    Ok(conn
        .query_row(
            "SELECT token_hash, user_id, created_at, last_seen_at, expires_at, source_ip,
                user_agent, stage
             FROM sessions WHERE token_hash = ?1",
            [token_hash],
            |r| {
                Ok(SessionRow {
                    token_hash: r.get(0)?,
                    user_id: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    source_ip: r.get(5)?,
                    user_agent: r.get(6)?,
                    stage: r.get(7)?,
                })
            },
        )
        .optional()?)
}

pub fn touch(conn: &Connection, token_hash: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
        params![token_hash, now],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, token_hash: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])? == 1)
}

pub fn delete_for_user(conn: &Connection, user_id: &str) -> Result<usize> {
    Ok(conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?)
}

/// Removes sessions past their absolute lifetime or idle for longer than
/// the idle timeout.
pub fn prune(conn: &Connection, now: i64, idle_cutoff: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at < ?2",
        params![now, idle_cutoff],
    )?)
}

/// Ends every session of a user except `keep` (the caller's own).
pub fn delete_for_user_except(conn: &Connection, user_id: &str, keep: &str) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2",
        params![user_id, keep],
    )?)
}
