//! `approval_rules` and `approvals` (migration 0029).

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

crate::closed_set! {
    /// Where an approval request stands.
    pub enum ApprovalState {
        Pending = "pending",
        Approved = "approved",
        Denied = "denied",
        Expired = "expired",
        /// Approved, and its call went ahead (an approval is used once).
        Used = "used",
    }
}

/// An approval request's binding: who asked for which exact call under
/// which rule version, and where it stands (what `approvals::binding`
/// decides over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub principal_type: String,
    pub principal_id: String,
    pub server: String,
    pub tool: String,
    pub arguments_digest: String,
    pub rule_id: String,
    pub rule_version: i64,
    pub state: ApprovalState,
    pub expires_at: i64,
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: String,
    pub name: String,
    pub server: String,
    pub tools: String,
    pub permission: Option<String>,
    pub approver_role: String,
    pub timeout_seconds: i64,
    /// JSON list of channel names.
    pub channels: String,
    pub escalation_policy: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const RULE_COLUMNS: &str = "id, name, server, tools, permission, approver_role, timeout_seconds, \
                            channels, escalation_policy, version, created_at, updated_at";

fn rule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        server: r.get(2)?,
        tools: r.get(3)?,
        permission: r.get(4)?,
        approver_role: r.get(5)?,
        timeout_seconds: r.get(6)?,
        channels: r.get(7)?,
        escalation_policy: r.get(8)?,
        version: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

pub fn insert_rule(conn: &Connection, r: &RuleRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO approval_rules ({RULE_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            r.id,
            r.name,
            r.server,
            r.tools,
            r.permission,
            r.approver_role,
            r.timeout_seconds,
            r.channels,
            r.escalation_policy,
            r.version,
            r.created_at,
            r.updated_at
        ],
    )?;
    Ok(())
}

/// Replaces a rule's settings; its version grows by one (approvals asked
/// under the old version no longer bind). False when there is no such rule.
pub fn update_rule(conn: &Connection, r: &RuleRow, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE approval_rules SET name = ?2, server = ?3, tools = ?4, permission = ?5,
            approver_role = ?6, timeout_seconds = ?7, channels = ?8, escalation_policy = ?9,
            version = version + 1, updated_at = ?10
         WHERE id = ?1",
        params![
            r.id,
            r.name,
            r.server,
            r.tools,
            r.permission,
            r.approver_role,
            r.timeout_seconds,
            r.channels,
            r.escalation_policy,
            now
        ],
    )? == 1)
}

pub fn get_rule(conn: &Connection, id: &str) -> Result<Option<RuleRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {RULE_COLUMNS} FROM approval_rules WHERE id = ?1"),
            [id],
            rule_row,
        )
        .optional()?)
}

/// Every rule, by name.
pub fn rules(conn: &Connection) -> Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM approval_rules ORDER BY name"
    ))?;
    let rows = stmt.query_map([], rule_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_rule(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM approval_rules WHERE id = ?1", [id])? == 1)
}

/// An approval request as stored (the arguments still sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub binding: Request,
    pub client_id: Option<String>,
    /// Sealed package (JSON) of the call's arguments.
    pub arguments: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by_type: Option<String>,
    pub decided_by_id: Option<String>,
    pub reason: Option<String>,
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "id, principal_type, principal_id, server, tool, arguments_digest, rule_id, \
                       rule_version, state, expires_at, client_id, arguments, created_at, \
                       decided_at, decided_by_type, decided_by_id, reason, used_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        binding: Request {
            id: r.get(0)?,
            principal_type: r.get(1)?,
            principal_id: r.get(2)?,
            server: r.get(3)?,
            tool: r.get(4)?,
            arguments_digest: r.get(5)?,
            rule_id: r.get(6)?,
            rule_version: r.get(7)?,
            state: r.get(8)?,
            expires_at: r.get(9)?,
        },
        client_id: r.get(10)?,
        arguments: r.get(11)?,
        created_at: r.get(12)?,
        decided_at: r.get(13)?,
        decided_by_type: r.get(14)?,
        decided_by_id: r.get(15)?,
        reason: r.get(16)?,
        used_at: r.get(17)?,
    })
}

pub fn insert(conn: &Connection, a: &ApprovalRow) -> Result<()> {
    let b = &a.binding;
    conn.execute(
        "INSERT INTO approvals (id, principal_type, principal_id, server, tool, arguments_digest,
            rule_id, rule_version, state, expires_at, client_id, arguments, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            b.id,
            b.principal_type,
            b.principal_id,
            b.server,
            b.tool,
            b.arguments_digest,
            b.rule_id,
            b.rule_version,
            b.state,
            b.expires_at,
            a.client_id,
            a.arguments,
            a.created_at
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<ApprovalRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

/// The requests of a principal for one call (server, tool, digest), every
/// state: what `binding::decide` reads.
pub fn bound(
    conn: &Connection,
    principal_id: &str,
    server: &str,
    tool: &str,
    digest: &str,
) -> Result<Vec<ApprovalRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals
         WHERE principal_id = ?1 AND server = ?2 AND tool = ?3 AND arguments_digest = ?4"
    ))?;
    let rows = stmt.query_map(params![principal_id, server, tool, digest], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Requests in `state`, newest first, at most `limit`.
pub fn in_state(conn: &Connection, state: ApprovalState, limit: u32) -> Result<Vec<ApprovalRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE state = ?1 ORDER BY created_at DESC, id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![state, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many requests of a principal are waiting (pending, unexpired).
pub fn pending_of(
    conn: &Connection,
    principal_type: &str,
    principal_id: &str,
    now: i64,
) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM approvals WHERE principal_id = ?2 AND principal_type = ?1
            AND state = 'pending' AND expires_at > ?3",
        params![principal_type, principal_id, now],
        |r| r.get(0),
    )?)
}

/// Requests in every state, newest first, at most `limit`.
pub fn recent(conn: &Connection, limit: u32) -> Result<Vec<ApprovalRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC, id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Approves or denies a pending, unexpired request; false when it was not
/// (two approvers racing: the update decides).
pub fn decide(
    conn: &Connection,
    id: &str,
    to: ApprovalState,
    by_type: &str,
    by_id: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE approvals SET state = ?2, decided_at = ?6, decided_by_type = ?3,
            decided_by_id = ?4, reason = ?5
         WHERE id = ?1 AND state = 'pending' AND expires_at > ?6",
        params![id, to, by_type, by_id, reason, now],
    )? == 1)
}

/// Uses an approved, unexpired request for its call; false when it was
/// not (used already, or expired).
pub fn use_approval(conn: &Connection, id: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE approvals SET state = 'used', used_at = ?2
         WHERE id = ?1 AND state = 'approved' AND expires_at > ?2",
        params![id, now],
    )? == 1)
}

/// Marks pending and approved requests past their expiry as expired;
/// returns their ids (to answer their held calls and audit).
pub fn expire(conn: &Connection, now: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "UPDATE approvals SET state = 'expired'
         WHERE state IN ('pending', 'approved') AND expires_at <= ?1 RETURNING id",
    )?;
    let ids = stmt.query_map([now], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A rule holding `delete_*` on `workflows` for `workflow_manager`.
    pub(crate) fn rule() -> RuleRow {
        RuleRow {
            id: "r1".into(),
            name: "deletes".into(),
            server: "workflows".into(),
            tools: "delete_*".into(),
            permission: None,
            approver_role: "workflow_manager".into(),
            timeout_seconds: 300,
            channels: "[]".into(),
            escalation_policy: None,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// A pending request of agent `a1` to call `delete_workflow` on
    /// `workflows` with the digest `d1`, under rule `r1` version 1.
    pub(crate) fn request(id: &str, expires_at: i64) -> ApprovalRow {
        ApprovalRow {
            binding: Request {
                id: id.into(),
                principal_type: "agent".into(),
                principal_id: "a1".into(),
                server: "workflows".into(),
                tool: "delete_workflow".into(),
                arguments_digest: "d1".into(),
                rule_id: "r1".into(),
                rule_version: 1,
                state: ApprovalState::Pending,
                expires_at,
            },
            client_id: None,
            arguments: "{sealed}".into(),
            created_at: 0,
            decided_at: None,
            decided_by_type: None,
            decided_by_id: None,
            reason: None,
            used_at: None,
        }
    }

    #[test]
    fn a_request_is_decided_once_used_once_and_expires() {
        let conn = crate::db::migrate::in_memory();
        insert_rule(&conn, &rule()).unwrap();
        insert(&conn, &request("x", 100)).unwrap();
        insert(&conn, &request("y", 100)).unwrap();
        assert!(!use_approval(&conn, "x", 10).unwrap(), "not approved yet");
        assert!(decide(&conn, "x", ApprovalState::Approved, "user", "u1", None, 10).unwrap());
        assert!(
            !decide(&conn, "x", ApprovalState::Denied, "user", "u2", None, 11).unwrap(),
            "decided once"
        );
        assert!(use_approval(&conn, "x", 12).unwrap());
        assert!(!use_approval(&conn, "x", 13).unwrap(), "used once");
        assert_eq!(
            get(&conn, "x").unwrap().unwrap().binding.state,
            ApprovalState::Used
        );
        assert!(!decide(&conn, "y", ApprovalState::Approved, "user", "u1", None, 100).unwrap());
        assert_eq!(expire(&conn, 100).unwrap(), vec!["y".to_string()]);
        assert_eq!(
            bound(&conn, "a1", "workflows", "delete_workflow", "d1")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            in_state(&conn, ApprovalState::Expired, 10).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_changed_rule_has_a_new_version_and_its_requests_go_with_it() {
        let conn = crate::db::migrate::in_memory();
        insert_rule(&conn, &rule()).unwrap();
        assert!(update_rule(
            &conn,
            &RuleRow {
                tools: "drop_*".into(),
                ..rule()
            },
            5
        )
        .unwrap());
        let r = get_rule(&conn, "r1").unwrap().unwrap();
        assert_eq!((r.version, r.tools.as_str()), (2, "drop_*"));
        insert(&conn, &request("x", 100)).unwrap();
        assert!(delete_rule(&conn, "r1").unwrap());
        assert!(get(&conn, "x").unwrap().is_none(), "cascade");
        assert!(rules(&conn).unwrap().is_empty());
    }
}
