//! The `roles`, `role_permissions`, `role_inherits` and `role_assignments`
//! tables.

use rusqlite::{params, Connection};

use crate::error::Result;

/// Inserts a role with its grants if no role of that name exists; an
/// existing role (possibly edited by an admin) is left untouched.
pub fn insert_if_missing(
    conn: &Connection,
    name: &str,
    description: &str,
    system: bool,
    permissions: &[&str],
    inherits: &[&str],
    now: i64,
) -> Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO roles (name, description, system, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![name, description, system, now],
    )?;
    if n == 0 {
        return Ok(false);
    }
    for p in permissions {
        conn.execute(
            "INSERT INTO role_permissions (role, pattern) VALUES (?1, ?2)",
            params![name, p],
        )?;
    }
    for parent in inherits {
        conn.execute(
            "INSERT INTO role_inherits (role, parent) VALUES (?1, ?2)",
            params![name, parent],
        )?;
    }
    Ok(true)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM roles", [], |r| r.get(0))?)
}

/// Binds `role` to a user (unscoped). Returns false when it already exists.
pub fn assign_to_user(
    conn: &Connection,
    id: &str,
    role: &str,
    user_id: &str,
    now: i64,
) -> Result<bool> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM role_assignments
                       WHERE role = ?1 AND user_id = ?2 AND scope_type IS NULL)",
        params![role, user_id],
        |r| r.get(0),
    )?;
    if exists {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO role_assignments (id, role, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, role, user_id, now],
    )?;
    Ok(true)
}

/// Removes a user's unscoped assignment of `role`; false when there was
/// none.
pub fn unassign_from_user(conn: &Connection, role: &str, user_id: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM role_assignments WHERE role = ?1 AND user_id = ?2 AND scope_type IS NULL",
        params![role, user_id],
    )? > 0)
}

/// Names of the roles bound to a user without a scope, sorted.
pub fn unscoped_roles_of_user(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT role FROM role_assignments WHERE user_id = ?1 AND scope_type IS NULL ORDER BY role",
    )?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every permission pattern granted to a user through unscoped
/// assignments, following inheritance, sorted and de-duplicated.
pub fn effective_patterns_of_user(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    effective_patterns(conn, "user_id", user_id)
}

/// The same for an agent.
pub fn effective_patterns_of_agent(conn: &Connection, agent_id: &str) -> Result<Vec<String>> {
    effective_patterns(conn, "agent_id", agent_id)
}

/// `column` is one of two constants above, never caller input.
fn effective_patterns(conn: &Connection, column: &str, id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "WITH RECURSIVE granted(role) AS (
             SELECT role FROM role_assignments WHERE {column} = ?1 AND scope_type IS NULL
             UNION
             SELECT ri.parent FROM role_inherits ri JOIN granted g ON ri.role = g.role
         )
         SELECT DISTINCT rp.pattern FROM role_permissions rp JOIN granted g ON rp.role = g.role
         ORDER BY rp.pattern"
    ))?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether a user holds any of `roles`: assigned at any scope, or
/// inherited by a role so assigned.
pub fn user_holds_any(conn: &Connection, user_id: &str, roles: &[String]) -> Result<bool> {
    if roles.is_empty() {
        return Ok(false);
    }
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE held(role) AS (
             SELECT role FROM role_assignments WHERE user_id = ?1
             UNION
             SELECT ri.parent FROM role_inherits ri JOIN held h ON ri.role = h.role
         )
         SELECT role FROM held",
    )?;
    let held = stmt.query_map([user_id], |r| r.get::<_, String>(0))?;
    for role in held {
        if roles.contains(&role?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True when `user_id` is the only enabled user holding system_admin.
pub fn is_last_enabled_admin(conn: &Connection, user_id: &str) -> Result<bool> {
    let (holds, others): (bool, i64) = conn.query_row(
        "SELECT
             EXISTS(SELECT 1 FROM role_assignments WHERE role = 'system_admin' AND user_id = ?1 AND scope_type IS NULL),
             (SELECT COUNT(DISTINCT ra.user_id) FROM role_assignments ra JOIN users u ON u.id = ra.user_id
              WHERE ra.role = 'system_admin' AND ra.scope_type IS NULL AND u.enabled = 1 AND u.id <> ?1)",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(holds && others == 0)
}

/// Names of the roles bound to an agent without a scope, sorted.
pub fn unscoped_roles_of_agent(conn: &Connection, agent_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT role FROM role_assignments WHERE agent_id = ?1 AND scope_type IS NULL ORDER BY role",
    )?;
    let rows = stmt.query_map([agent_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Everything the decision engine compiles, as stored: every role, its
/// grants and parents, and every assignment.
#[derive(Debug, Clone, Default)]
pub struct PolicyRows {
    pub roles: Vec<String>,
    /// `(role, pattern)`
    pub grants: Vec<(String, String)>,
    /// `(role, parent)`
    pub inherits: Vec<(String, String)>,
    pub assignments: Vec<AssignmentRow>,
}

pub fn policy_rows(conn: &Connection) -> Result<PolicyRows> {
    let pairs = |sql: &str| -> Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let mut stmt = conn.prepare("SELECT name FROM roles")?;
    let roles = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments"
    ))?;
    let assignments = stmt
        .query_map([], assignment_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(PolicyRows {
        roles,
        grants: pairs("SELECT role, pattern FROM role_permissions")?,
        inherits: pairs("SELECT role, parent FROM role_inherits")?,
        assignments,
    })
}

#[derive(Debug, Clone)]
pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub system: bool,
    pub permissions: Vec<String>,
    pub inherits: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn strings(conn: &Connection, sql: &str, key: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([key], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get_role(conn: &Connection, name: &str) -> Result<Option<RoleRow>> {
    use rusqlite::OptionalExtension;
    let base = conn
        .query_row(
            "SELECT name, description, system, created_at, updated_at FROM roles WHERE name = ?1",
            [name],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            },
        )
        .optional()?;
    let Some((name, description, system, created_at, updated_at)) = base else {
        return Ok(None);
    };
    Ok(Some(RoleRow {
        permissions: strings(
            conn,
            "SELECT pattern FROM role_permissions WHERE role = ?1 ORDER BY pattern",
            &name,
        )?,
        inherits: strings(
            conn,
            "SELECT parent FROM role_inherits WHERE role = ?1 ORDER BY parent",
            &name,
        )?,
        name,
        description,
        system,
        created_at,
        updated_at,
    }))
}

/// Role names after `after`, in name order.
pub fn role_names(conn: &Connection, after: Option<&str>, limit: u32) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM roles WHERE name > ?1 ORDER BY name LIMIT ?2")?;
    let rows = stmt.query_map(params![after.unwrap_or(""), limit], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Inserts or replaces a role's description, grants and parents.
pub fn save_role(conn: &Connection, r: &RoleRow, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO roles (name, description, system, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, updated_at = excluded.updated_at",
        params![r.name, r.description, r.system, now],
    )?;
    conn.execute("DELETE FROM role_permissions WHERE role = ?1", [&r.name])?;
    conn.execute("DELETE FROM role_inherits WHERE role = ?1", [&r.name])?;
    for p in &r.permissions {
        conn.execute(
            "INSERT INTO role_permissions (role, pattern) VALUES (?1, ?2)",
            params![r.name, p],
        )?;
    }
    for parent in &r.inherits {
        conn.execute(
            "INSERT INTO role_inherits (role, parent) VALUES (?1, ?2)",
            params![r.name, parent],
        )?;
    }
    Ok(())
}

/// Every (role, parent) edge.
pub fn all_inherits(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT role, parent FROM role_inherits")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Roles that inherit `name`, and how many assignments bind it.
pub fn usage(conn: &Connection, name: &str) -> Result<(Vec<String>, i64)> {
    let children = strings(
        conn,
        "SELECT role FROM role_inherits WHERE parent = ?1 ORDER BY role",
        name,
    )?;
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM role_assignments WHERE role = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok((children, n))
}

pub fn delete_role(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM roles WHERE name = ?1", [name])? == 1)
}

#[derive(Debug, Clone)]
pub struct AssignmentRow {
    pub id: String,
    pub role: String,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub scope_type: Option<String>,
    pub scope_pattern: Option<String>,
    pub created_at: i64,
}

const ASSIGNMENT_COLUMNS: &str =
    "id, role, user_id, agent_id, scope_type, scope_pattern, created_at";

fn assignment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AssignmentRow> {
    Ok(AssignmentRow {
        id: r.get(0)?,
        role: r.get(1)?,
        user_id: r.get(2)?,
        agent_id: r.get(3)?,
        scope_type: r.get(4)?,
        scope_pattern: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn insert_assignment(conn: &Connection, a: &AssignmentRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO role_assignments ({ASSIGNMENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![a.id, a.role, a.user_id, a.agent_id, a.scope_type, a.scope_pattern, a.created_at],
    )?;
    Ok(())
}

/// Assignments after `after` (by id), optionally of one role, one user
/// and/or one agent.
pub fn list_assignments(
    conn: &Connection,
    role: Option<&str>,
    (user, agent): (Option<&str>, Option<&str>),
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AssignmentRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM role_assignments
         WHERE id > ?1 AND (?2 IS NULL OR role = ?2) AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR agent_id = ?4)
         ORDER BY id LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![after.unwrap_or(""), role, user, agent, limit],
        assignment_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_assignment(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM role_assignments WHERE id = ?1", [id])? == 1)
}
