//! `agent_jwks` (agents' public keys for client assertions) and
//! `client_assertion_jtis` (assertions already used).

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// The agent's JWK Set as stored (JSON), and when it was set.
pub fn get(conn: &Connection, agent_id: &str) -> Result<Option<(String, i64)>> {
    Ok(conn
        .query_row(
            "SELECT jwks, updated_at FROM agent_jwks WHERE agent_id = ?1",
            [agent_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn set(conn: &Connection, agent_id: &str, jwks: &str, at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO agent_jwks (agent_id, jwks, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(agent_id) DO UPDATE SET jwks = excluded.jwks, updated_at = excluded.updated_at",
        params![agent_id, jwks, at],
    )?;
    Ok(())
}

/// Records an assertion id; false when it was used before. Forgets ids
/// whose assertions have expired.
pub fn use_jti(
    conn: &Connection,
    jti: &str,
    client_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool> {
    conn.execute(
        "DELETE FROM client_assertion_jtis WHERE expires_at < ?1",
        [now],
    )?;
    Ok(conn.execute(
        "INSERT OR IGNORE INTO client_assertion_jtis (jti, client_id, expires_at) VALUES (?1, ?2, ?3)",
        params![jti, client_id, expires_at],
    )? > 0)
}
