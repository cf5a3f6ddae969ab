//! The `audit_log` and `audit_checkpoint` tables: the audit trail keeps
//! its own storage, so the database layer knows nothing of records.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::chain::Checkpoint;
use super::record::{ActorType, Outcome, Record};
use crate::error::Result;

const COLUMNS: &str =
    "seq, at, actor_type, actor_id, actor_name, action, target_type, target_id, outcome, \
                       reason, source_ip, user_agent, request_id, details, prev_hash, hash";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Record> {
    let at: i64 = r.get(1)?;
    let actor_type: String = r.get(2)?;
    let outcome: String = r.get(8)?;
    let details_json: String = r.get(13)?;
    Ok(Record {
        seq: r.get(0)?,
        at,
        time: crate::timefmt::rfc3339(at),
        // Unknown values can only come from tampering; verification reports
        // it because the canonical form then differs.
        actor_type: ActorType::parse(&actor_type).unwrap_or(ActorType::Anonymous),
        actor_id: r.get(3)?,
        actor_name: r.get(4)?,
        action: r.get(5)?,
        target_type: r.get(6)?,
        target_id: r.get(7)?,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Error),
        reason: r.get(9)?,
        source_ip: r.get(10)?,
        user_agent: r.get(11)?,
        request_id: r.get(12)?,
        details: serde_json::from_str(&details_json).unwrap_or(serde_json::Value::Null),
        details_json,
        prev_hash: r.get(14)?,
        hash: r.get(15)?,
    })
}

/// Raw column text, for verification: a tampered enum value must be
/// hashed as stored, not as parsed.
pub struct RawRecord {
    pub record: Record,
    pub actor_type: String,
    pub outcome: String,
}

impl RawRecord {
    /// The canonical form over the stored text.
    pub fn canonical(&self) -> Vec<u8> {
        let r = &self.record;
        super::record::canonical(
            r.seq,
            r.at,
            &self.actor_type,
            r.actor_id.as_deref(),
            r.actor_name.as_deref(),
            &r.action,
            r.target_type.as_deref(),
            r.target_id.as_deref(),
            &self.outcome,
            r.reason.as_deref(),
            r.source_ip.as_deref(),
            r.user_agent.as_deref(),
            r.request_id.as_deref(),
            &r.details_json,
        )
    }
}

pub fn insert(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?;
    stmt.execute(params![
        r.seq,
        r.at,
        r.actor_type.as_str(),
        r.actor_id,
        r.actor_name,
        r.action,
        r.target_type,
        r.target_id,
        r.outcome.as_str(),
        r.reason,
        r.source_ip,
        r.user_agent,
        r.request_id,
        r.details_json,
        r.prev_hash,
        r.hash
    ])?;
    Ok(())
}

pub fn checkpoint(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    conn.query_row(
        "SELECT seq, hash, mac FROM audit_checkpoint WHERE id = 1",
        [],
        |r| {
            Ok(Checkpoint {
                seq: r.get(0)?,
                hash: r.get(1)?,
                mac: r.get(2)?,
            })
        },
    )
    .optional()
}

/// The newest record's seq and hash; else the checkpoint's; else none.
pub fn head(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    let last = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match last {
        Some(h) => Ok(Some(h)),
        None => Ok(checkpoint(conn)?.map(|c| (c.seq, c.hash))),
    }
}

pub fn by_seq(conn: &Connection, seq: i64) -> Result<Option<Record>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM audit_log WHERE seq = ?1"),
            [seq],
            from_row,
        )
        .optional()?)
}

/// Records with `seq > after`, ascending, at most `limit` (export and
/// verification read in chunks like this to keep memory constant).
pub fn chunk_after(
    conn: &Connection,
    after: i64,
    up_to: i64,
    limit: u32,
) -> rusqlite::Result<Vec<RawRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![after, up_to, limit], |r| {
        Ok(RawRecord {
            record: from_row(r)?,
            actor_type: r.get(2)?,
            outcome: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Search filters; every one optional, all combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Matches the actor's id or name.
    pub actor: Option<String>,
    /// Exact action, or a prefix when it ends with `*` (`auth.*`).
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    /// Matches the target's id.
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Filter {
    fn sql(&self, clauses: &mut Vec<String>, args: &mut Vec<Value>) {
        if let Some(a) = &self.actor {
            args.push(Value::Text(a.clone()));
            clauses.push(format!(
                "(actor_id = ?{0} OR actor_name = ?{0})",
                args.len()
            ));
        }
        if let Some(a) = &self.action {
            match a.strip_suffix('*') {
                Some(prefix) => {
                    // Escape LIKE wildcards in the user's prefix.
                    let escaped = prefix
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_");
                    args.push(Value::Text(format!("{escaped}%")));
                    clauses.push(format!("action LIKE ?{} ESCAPE '\\'", args.len()));
                }
                None => {
                    args.push(Value::Text(a.clone()));
                    clauses.push(format!("action = ?{}", args.len()));
                }
            }
        }
        if let Some(o) = self.outcome {
            args.push(Value::Text(o.as_str().into()));
            clauses.push(format!("outcome = ?{}", args.len()));
        }
        if let Some(t) = &self.target {
            args.push(Value::Text(t.clone()));
            clauses.push(format!("target_id = ?{}", args.len()));
        }
        if let Some(s) = self.since {
            args.push(Value::Integer(s));
            clauses.push(format!("at >= ?{}", args.len()));
        }
        if let Some(u) = self.until {
            args.push(Value::Integer(u));
            clauses.push(format!("at < ?{}", args.len()));
        }
    }
}

/// Direction of a filtered read.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    /// Newest first, `seq < cursor` (the API list).
    NewestBefore(Option<i64>),
    /// Oldest first, `seq > cursor` (export).
    OldestAfter(i64),
}

pub fn search(conn: &Connection, filter: &Filter, order: Order, limit: u32) -> Result<Vec<Record>> {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    filter.sql(&mut clauses, &mut args);
    let order_sql = match order {
        Order::NewestBefore(cursor) => {
            if let Some(c) = cursor {
                args.push(Value::Integer(c));
                clauses.push(format!("seq < ?{}", args.len()));
            }
            "seq DESC"
        }
        Order::OldestAfter(after) => {
            args.push(Value::Integer(after));
            clauses.push(format!("seq > ?{}", args.len()));
            "seq ASC"
        }
    };
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    args.push(Value::Integer(i64::from(limit)));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log {where_sql} ORDER BY {order_sql} LIMIT ?{}",
        args.len()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Moves the checkpoint to `seq` (whose hash is `hash`) and deletes every
/// record up to it. Returns the number deleted.
pub fn prune_through(
    conn: &Connection,
    seq: i64,
    hash: &str,
    mac: &str,
    now: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO audit_checkpoint (id, seq, hash, mac, created_at) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac,
                                        created_at = excluded.created_at",
        params![seq, hash, mac, now],
    )?;
    conn.execute("DELETE FROM audit_log WHERE seq <= ?1", [seq])
}

/// The newest record older than `before`, if any.
pub fn newest_before(conn: &Connection, before: i64) -> rusqlite::Result<Option<(i64, String)>> {
    conn.query_row(
        "SELECT seq, hash FROM audit_log WHERE at < ?1 ORDER BY seq DESC LIMIT 1",
        [before],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Failed authentication attempts (password logins, bearer credentials,
/// OAuth client authentication) recorded at or after `since`.
pub fn count_failed_auth(conn: &Connection, since: i64) -> Result<i64> {
    Ok(conn.query_row(
        // INDEXED BY: left to itself the planner prefers the action index
        // and walks every authentication record ever kept.
        "SELECT COUNT(*) FROM audit_log INDEXED BY audit_log_failures_at
         WHERE at >= ?1 AND outcome = 'failure'
           AND action IN ('auth.login', 'auth.bearer', 'oauth.token', 'oauth.introspect', 'oauth.revoke')",
        [since],
        |r| r.get(0),
    )?)
}

/// One gateway tool call as the audit log has it: a decision record
/// (`result` none) or a result record.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRow {
    pub server: String,
    pub tool: String,
    /// `denied` for a refused decision, else the record's outcome.
    pub outcome: String,
    /// A result record's `result` (`ok`, `tool_error`, ...).
    pub result: Option<String>,
    pub latency_ms: Option<i64>,
}

/// The gateway's tool-call records from `since` (ms) on, of one `server`
/// or all: what the `mcp_tool_*` alert series and a server's calls per
/// tool are computed from.
pub fn tool_calls_since(
    conn: &Connection,
    since: i64,
    server: Option<&str>,
) -> Result<Vec<ToolCallRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT target_id, json_extract(details, '$.name'), outcome,
                json_extract(details, '$.result'), json_extract(details, '$.latency_ms')
         FROM audit_log INDEXED BY audit_log_action_at
         WHERE action IN ('mcp.tool_call', 'mcp.tool_call.result') AND at >= ?1
           AND (?2 IS NULL OR target_id = ?2)",
    )?;
    let rows = stmt.query_map(params![since, server], |r| {
        Ok(ToolCallRow {
            server: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            tool: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            outcome: r.get(2)?,
            result: r.get(3)?,
            latency_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Records per hour and outcome in [from, to): (hour start, outcome, count).
pub fn counts_by_hour(conn: &Connection, from: i64, to: i64) -> Result<Vec<(i64, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at - at % 3600000 AS h, outcome, COUNT(*) FROM audit_log
         WHERE at >= ?1 AND at < ?2 GROUP BY h, outcome",
    )?;
    let rows = stmt.query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
