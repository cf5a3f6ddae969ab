//! The `mcp_servers` table: MCP servers as registered resources.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::json_column;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct McpServerRow {
    pub id: String,
    pub name: String,
    /// The resource URI of a server agentry does not proxy; `None` for a
    /// proxied one (its URI is agentry's own `/mcp/{name}`).
    pub uri: Option<String>,
    pub upstream_url: Option<String>,
    pub agent_id: Option<String>,
    pub description: String,
    pub scopes_supported: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Gateway: calls per minute per principal.
    pub calls_per_minute: Option<u32>,
    /// Gateway: per-tool settings, as the JSON object the domain reads.
    pub tools: String,
    /// Gateway: the upstream headers, sealed (an envelope package as JSON).
    pub upstream_headers: Option<String>,
    pub upstream_header_names: Vec<String>,
    /// Gateway: the resource URI a caller's token is exchanged for, sent
    /// upstream as its bearer token.
    pub upstream_token_exchange: Option<String>,
}

const COLUMNS: &str = "id, name, uri, upstream_url, agent_id, description, scopes_supported, \
                       enabled, created_at, updated_at, calls_per_minute, tools, \
                       upstream_headers, upstream_header_names, upstream_token_exchange";

fn row(r: &Row<'_>) -> rusqlite::Result<McpServerRow> {
    Ok(McpServerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        uri: r.get(2)?,
        upstream_url: r.get(3)?,
        agent_id: r.get(4)?,
        description: r.get(5)?,
        scopes_supported: json_column(r, 6)?,
        enabled: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        calls_per_minute: r.get(10)?,
        tools: r.get(11)?,
        upstream_headers: r.get(12)?,
        upstream_header_names: json_column(r, 13)?,
        upstream_token_exchange: r.get(14)?,
    })
}

/// A list column's JSON text.
fn list_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serialises")
}

pub fn insert(conn: &Connection, s: &McpServerRow) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO mcp_servers ({COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            s.id,
            s.name,
            s.uri,
            s.upstream_url,
            s.agent_id,
            s.description,
            list_json(&s.scopes_supported),
            s.enabled,
            s.created_at,
            s.updated_at,
            s.calls_per_minute,
            s.tools,
            s.upstream_headers,
            list_json(&s.upstream_header_names),
            s.upstream_token_exchange
        ],
    )?;
    Ok(())
}

pub fn update(conn: &Connection, s: &McpServerRow) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE mcp_servers SET name = ?2, uri = ?3, upstream_url = ?4, agent_id = ?5, \
         description = ?6, scopes_supported = ?7, enabled = ?8, updated_at = ?9, \
         calls_per_minute = ?10, tools = ?11, upstream_headers = ?12, \
         upstream_header_names = ?13, upstream_token_exchange = ?14 WHERE id = ?1",
        params![
            s.id,
            s.name,
            s.uri,
            s.upstream_url,
            s.agent_id,
            s.description,
            list_json(&s.scopes_supported),
            s.enabled,
            s.updated_at,
            s.calls_per_minute,
            s.tools,
            s.upstream_headers,
            list_json(&s.upstream_header_names),
            s.upstream_token_exchange
        ],
    )? > 0)
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<McpServerRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM mcp_servers WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

/// By name, ignoring case (names are unique that way).
pub fn by_name(conn: &Connection, name: &str) -> Result<Option<McpServerRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM mcp_servers WHERE name = ?1 COLLATE NOCASE"
        ))?
        .query_row([name], row)
        .optional()?)
}

/// The server whose stored (not proxied) resource URI is `uri`.
pub fn by_uri(conn: &Connection, uri: &str) -> Result<Option<McpServerRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM mcp_servers WHERE uri = ?1"))?
        .query_row([uri], row)
        .optional()?)
}

/// A page of servers by name.
pub fn list(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<McpServerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM mcp_servers WHERE (?1 IS NULL OR name > ?1) ORDER BY name LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM mcp_servers WHERE id = ?1", [id])? > 0)
}
