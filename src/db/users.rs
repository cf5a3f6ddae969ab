//! The `users` table and its lockout bookkeeping.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub enabled: bool,
    pub locked_until: Option<i64>,
    pub password_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The OpenID Connect subject the user signs on as (`{issuer} {sub}`).
    pub oidc_subject: Option<String>,
}

const COLUMNS: &str = "id, username, display_name, email, password_hash, enabled, locked_until, \
                       password_changed_at, created_at, updated_at, oidc_subject";

fn from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        email: r.get(3)?,
        password_hash: r.get(4)?,
        enabled: r.get(5)?,
        locked_until: r.get(6)?,
        password_changed_at: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        oidc_subject: r.get(10)?,
    })
}

pub fn insert(conn: &Connection, u: &UserRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            u.id,
            u.username,
            u.display_name,
            u.email,
            u.password_hash,
            u.enabled,
            u.locked_until,
            u.password_changed_at,
            u.created_at,
            u.updated_at,
            u.oidc_subject
        ],
    )?;
    Ok(())
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<UserRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

pub fn by_username(conn: &Connection, username: &str) -> Result<Option<UserRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"),
            [username],
            from_row,
        )
        .optional()?)
}

/// The user linked to an OpenID Connect subject (`{issuer} {sub}`).
pub fn by_oidc_subject(conn: &Connection, subject: &str) -> Result<Option<UserRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE oidc_subject = ?1"),
            [subject],
            from_row,
        )
        .optional()?)
}

/// Every user as (id, username).
pub fn all_names(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, username FROM users ORDER BY username")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

/// Sets a new password hash and clears lockout state.
pub fn set_password(conn: &Connection, id: &str, hash: &str, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2, password_changed_at = ?3, updated_at = ?3,
                          locked_until = NULL
         WHERE id = ?1",
        params![id, hash, now],
    )?;
    conn.execute("DELETE FROM login_failures WHERE user_id = ?1", [id])?;
    Ok(n == 1)
}

/// Records one failed login and returns how many failures fall inside the
/// window that starts at `since`.
pub fn record_failure(conn: &Connection, id: &str, now: i64, since: i64) -> Result<u32> {
    conn.execute(
        "DELETE FROM login_failures WHERE user_id = ?1 AND failed_at < ?2",
        params![id, since],
    )?;
    conn.execute(
        "INSERT INTO login_failures (user_id, failed_at) VALUES (?1, ?2)",
        params![id, now],
    )?;
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM login_failures WHERE user_id = ?1 AND failed_at >= ?2",
        params![id, since],
        |r| r.get(0),
    )?)
}

pub fn lock_until(conn: &Connection, id: &str, until: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET locked_until = ?2 WHERE id = ?1",
        params![id, until],
    )?;
    Ok(())
}

/// Clears failures and any lock (successful login, admin unlock).
pub fn clear_lockout(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM login_failures WHERE user_id = ?1", [id])?;
    conn.execute("UPDATE users SET locked_until = NULL WHERE id = ?1", [id])?;
    Ok(())
}

/// Deletes failure rows older than `before` (housekeeping).
pub fn prune_failures(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM login_failures WHERE failed_at < ?1", [before])?)
}

/// Accounts currently locked (a health figure).
pub fn count_locked(conn: &Connection, now: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM users WHERE locked_until > ?1",
        [now],
        |r| r.get(0),
    )?)
}

/// A page of users ordered by id (ids are time-ordered), after `after`.
/// Rows whose username, display_name, email contain `needle` (lowercase; empty:
/// all), by id after the cursor; and how many match in all.
pub fn matching(
    conn: &Connection,
    needle: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<UserRow>, i64)> {
    let filter = "(?3 = '' OR instr(lower(coalesce(username, '')), ?3) > 0 OR instr(lower(coalesce(display_name, '')), ?3) > 0 OR instr(lower(coalesce(email, '')), ?3) > 0)";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE id > ?1 AND {filter} ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![after.unwrap_or(""), limit, needle], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let total = conn.query_row(
        "SELECT COUNT(*) FROM users WHERE ?1 = '' OR instr(lower(coalesce(username, '')), ?1) > 0 OR instr(lower(coalesce(display_name, '')), ?1) > 0 OR instr(lower(coalesce(email, '')), ?1) > 0",
        params![needle],
        |r| r.get(0),
    )?;
    Ok((rows, total))
}

pub fn list(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<UserRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after.unwrap_or(""), limit], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Updates the editable profile fields.
pub fn update_profile(conn: &Connection, u: &UserRow, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET display_name = ?2, email = ?3, enabled = ?4, updated_at = ?5,
            oidc_subject = ?6 WHERE id = ?1",
        params![
            u.id,
            u.display_name,
            u.email,
            u.enabled,
            now,
            u.oidc_subject
        ],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM users WHERE id = ?1", [id])? == 1)
}
