//! The `oauth_clients` table: clients that sign users in.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::json_column;
use crate::error::Result;

crate::closed_set! {
    /// How a client came to be known.
    pub enum Registration {
        /// Registered by an admin (API or page).
        Admin = "admin",
        /// Its `client_id` is the https URL of its metadata document.
        MetadataDocument = "metadata_document",
        /// RFC 7591 dynamic registration at `/oauth/register`.
        Dynamic = "dynamic",
    }
}

crate::closed_set! {
    /// How a client authenticates at the token endpoint.
    pub enum AuthMethod {
        /// A public client: no secret (PKCE protects its codes).
        None = "none",
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub registration: Registration,
    pub auth_method: AuthMethod,
    /// SHA-256 hex of a confidential client's secret.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub client_uri: Option<String>,
    pub registered_from: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, name, registration, auth_method, secret_hash, redirect_uris, \
                       client_uri, registered_from, enabled, created_at, updated_at, last_used_at";

fn row(r: &Row<'_>) -> rusqlite::Result<ClientRow> {
    Ok(ClientRow {
        id: r.get(0)?,
        name: r.get(1)?,
        registration: r.get(2)?,
        auth_method: r.get(3)?,
        secret_hash: r.get(4)?,
        redirect_uris: json_column(r, 5)?,
        client_uri: r.get(6)?,
        registered_from: r.get(7)?,
        enabled: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        last_used_at: r.get(11)?,
    })
}

pub fn insert(conn: &Connection, c: &ClientRow) -> Result<()> {
    insert_or(conn, c, "")
}

/// Inserts `c`; `on_conflict` says what an existing row with its id gets.
fn insert_or(conn: &Connection, c: &ClientRow, on_conflict: &str) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO oauth_clients ({COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) {on_conflict}"
    ))?
    .execute(params![
        c.id,
        c.name,
        c.registration,
        c.auth_method,
        c.secret_hash,
        serde_json::to_string(&c.redirect_uris).expect("strings serialise"),
        c.client_uri,
        c.registered_from,
        c.enabled,
        c.created_at,
        c.updated_at,
        c.last_used_at
    ])?;
    Ok(())
}

/// Changes what an admin may change: name, redirect URIs, enabled.
pub fn update(conn: &Connection, c: &ClientRow) -> Result<bool> {
    Ok(conn.prepare_cached("UPDATE oauth_clients SET name = ?2, redirect_uris = ?3, enabled = ?4, updated_at = ?5 \
         WHERE id = ?1")?.execute(params![
            c.id,
            c.name,
            serde_json::to_string(&c.redirect_uris).expect("strings serialise"),
            c.enabled,
            c.updated_at
        ])? > 0)
}

/// Stores a client read from its metadata document: a new row, or the
/// document's current name, redirect URIs and URI on the existing one
/// (whether it is enabled is the admin's, and stays).
pub fn upsert_document(conn: &Connection, c: &ClientRow) -> Result<()> {
    insert_or(
        conn,
        c,
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, \
         redirect_uris = excluded.redirect_uris, client_uri = excluded.client_uri, \
         updated_at = excluded.updated_at",
    )
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<ClientRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM oauth_clients WHERE id = ?1"
        ))?
        .query_row([id], row)
        .optional()?)
}

/// A page of clients, newest first.
pub fn list(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<ClientRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM oauth_clients WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Voids the client's access tokens issued before `at`.
pub fn cut_off(conn: &Connection, id: &str, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE oauth_clients SET tokens_not_before = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// (client id, tokens valid after) of every client with a cut-off.
pub fn cutoffs(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tokens_not_before FROM oauth_clients WHERE tokens_not_before IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn touch(conn: &Connection, id: &str, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE oauth_clients SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM oauth_clients WHERE id = ?1")?
        .execute([id])?
        > 0)
}
