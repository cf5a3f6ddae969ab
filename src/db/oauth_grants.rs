//! Consents (`oauth_grants`), authorization codes (`oauth_codes`) and
//! refresh tokens (`oauth_refresh_tokens`). Codes and refresh tokens arrive
//! here hashed.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub resource: String,
    /// Space-separated, sorted.
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const GRANT_COLUMNS: &str = "id, user_id, client_id, resource, scope, created_at, last_used_at";

fn grant(r: &Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        client_id: r.get(2)?,
        resource: r.get(3)?,
        scope: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
    })
}

pub fn insert_grant(conn: &Connection, g: &GrantRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO oauth_grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        g.id,
        g.user_id,
        g.client_id,
        g.resource,
        g.scope,
        g.created_at,
        g.last_used_at
    ])?;
    Ok(())
}

/// The consent a user gave this client for this resource and scope set.
pub fn find_grant(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    resource: &str,
    scope: &str,
) -> Result<Option<GrantRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants \
                 WHERE user_id = ?1 AND client_id = ?2 AND resource = ?3 AND scope = ?4"
        ))?
        .query_row(params![user_id, client_id, resource, scope], grant)
        .optional()?)
}

pub fn grant_by_id(conn: &Connection, id: &str) -> Result<Option<GrantRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE id = ?1"
        ))?
        .query_row([id], grant)
        .optional()?)
}

/// A user's grants, most recently used first.
pub fn grants_of_user(conn: &Connection, user_id: &str) -> Result<Vec<GrantRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE user_id = ?1 \
         ORDER BY COALESCE(last_used_at, created_at) DESC, id"
    ))?;
    let rows = stmt.query_map([user_id], grant)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many grants each client has.
pub fn grant_counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT client_id, COUNT(*) FROM oauth_grants GROUP BY client_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many grants one client has.
pub fn grant_count(conn: &Connection, client_id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM oauth_grants WHERE client_id = ?1")?
        .query_row([client_id], |r| r.get(0))?)
}

pub fn touch_grant(conn: &Connection, id: &str, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE oauth_grants SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// Deletes a grant with its codes and refresh tokens (cascade).
pub fn delete_grant(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM oauth_grants WHERE id = ?1")?
        .execute([id])?
        > 0)
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// What the code's redemption issued, for revoking on reuse.
    pub family_id: Option<String>,
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
}

const CODE_COLUMNS: &str = "code_hash, grant_id, redirect_uri, code_challenge, created_at, \
                            expires_at, used_at, family_id, access_jti, access_expires_at";

fn code(r: &Row<'_>) -> rusqlite::Result<CodeRow> {
    Ok(CodeRow {
        code_hash: r.get(0)?,
        grant_id: r.get(1)?,
        redirect_uri: r.get(2)?,
        code_challenge: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
        used_at: r.get(6)?,
        family_id: r.get(7)?,
        access_jti: r.get(8)?,
        access_expires_at: r.get(9)?,
    })
}

pub fn insert_code(conn: &Connection, c: &CodeRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO oauth_codes ({CODE_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        c.code_hash,
        c.grant_id,
        c.redirect_uri,
        c.code_challenge,
        c.created_at,
        c.expires_at,
        c.used_at,
        c.family_id,
        c.access_jti,
        c.access_expires_at
    ])?;
    Ok(())
}

pub fn code_by_hash(conn: &Connection, hash: &str) -> Result<Option<CodeRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CODE_COLUMNS} FROM oauth_codes WHERE code_hash = ?1"
        ))?
        .query_row([hash], code)
        .optional()?)
}

/// A code with the grant it was issued under.
pub fn code_with_grant(conn: &Connection, hash: &str) -> Result<Option<(CodeRow, GrantRow)>> {
    let Some(code) = code_by_hash(conn, hash)? else {
        return Ok(None);
    };
    Ok(grant_by_id(conn, &code.grant_id)?.map(|g| (code, g)))
}

/// Marks a code used with what it issued; false when it already was.
pub fn redeem_code(
    conn: &Connection,
    hash: &str,
    at: i64,
    family_id: &str,
    access_jti: &str,
    access_expires_at: i64,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE oauth_codes SET used_at = ?2, family_id = ?3, access_jti = ?4, \
         access_expires_at = ?5 WHERE code_hash = ?1 AND used_at IS NULL",
        )?
        .execute(params![hash, at, family_id, access_jti, access_expires_at])?
        > 0)
}

/// Forgets codes that expired before `before` and were never used (used
/// ones are kept as long as their grant, to catch a late reuse).
pub fn purge_codes(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM oauth_codes WHERE expires_at < ?1 AND used_at IS NULL")?
        .execute([before])?)
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRow {
    pub token_hash: String,
    pub family_id: String,
    pub grant_id: String,
    pub scope: String,
    pub created_at: i64,
    pub family_created_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const REFRESH_COLUMNS: &str = "token_hash, family_id, grant_id, scope, created_at, \
                               family_created_at, rotated_at, revoked_at";

fn refresh(r: &Row<'_>) -> rusqlite::Result<RefreshRow> {
    Ok(RefreshRow {
        token_hash: r.get(0)?,
        family_id: r.get(1)?,
        grant_id: r.get(2)?,
        scope: r.get(3)?,
        created_at: r.get(4)?,
        family_created_at: r.get(5)?,
        rotated_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

pub fn insert_refresh(conn: &Connection, t: &RefreshRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO oauth_refresh_tokens ({REFRESH_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        t.token_hash,
        t.family_id,
        t.grant_id,
        t.scope,
        t.created_at,
        t.family_created_at,
        t.rotated_at,
        t.revoked_at
    ])?;
    Ok(())
}

pub fn refresh_by_hash(conn: &Connection, hash: &str) -> Result<Option<RefreshRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REFRESH_COLUMNS} FROM oauth_refresh_tokens WHERE token_hash = ?1"
        ))?
        .query_row([hash], refresh)
        .optional()?)
}

/// A refresh token with the grant it belongs to.
pub fn refresh_with_grant(conn: &Connection, hash: &str) -> Result<Option<(RefreshRow, GrantRow)>> {
    let Some(token) = refresh_by_hash(conn, hash)? else {
        return Ok(None);
    };
    Ok(grant_by_id(conn, &token.grant_id)?.map(|g| (token, g)))
}

/// Marks a live token replaced; false when it was not live any more.
pub fn rotate_refresh(conn: &Connection, hash: &str, at: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE oauth_refresh_tokens SET rotated_at = ?2 \
         WHERE token_hash = ?1 AND rotated_at IS NULL AND revoked_at IS NULL",
        )?
        .execute(params![hash, at])?
        > 0)
}

/// Revokes every live token of a family; how many.
pub fn revoke_family(conn: &Connection, family_id: &str, at: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE oauth_refresh_tokens SET revoked_at = ?2 \
         WHERE family_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![family_id, at])?)
}

/// Revokes every live refresh token issued to a client; how many.
pub fn revoke_client_refresh(conn: &Connection, client_id: &str, at: i64) -> Result<usize> {
    Ok(conn.prepare_cached("UPDATE oauth_refresh_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND grant_id IN \
         (SELECT id FROM oauth_grants WHERE client_id = ?1)")?.execute(params![client_id, at])?)
}
