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

/// Everything the decision engine compiles: every role with its grants and
/// parents, and every assignment.
pub fn policy_data(conn: &Connection) -> Result<crate::rbac::engine::PolicyData> {
    use crate::rbac::engine::{Assignment, PolicyData, Subject};
    let mut data = PolicyData::default();
    let mut stmt = conn.prepare("SELECT name FROM roles")?;
    for name in stmt.query_map([], |r| r.get::<_, String>(0))? {
        data.roles.insert(name?, (Vec::new(), Vec::new()));
    }
    let mut stmt = conn.prepare("SELECT role, pattern FROM role_permissions")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (role, pattern) = row?;
        if let Some(entry) = data.roles.get_mut(&role) {
            entry.0.push(pattern);
        }
    }
    let mut stmt = conn.prepare("SELECT role, parent FROM role_inherits")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (role, parent) = row?;
        if let Some(entry) = data.roles.get_mut(&role) {
            entry.1.push(parent);
        }
    }
    let mut stmt = conn.prepare(
        "SELECT role, user_id, agent_id, scope_type, scope_pattern FROM role_assignments",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    for row in rows {
        let (role, user, agent, stype, spattern) = row?;
        let subject = match (user, agent) {
            (Some(u), _) => Subject {
                kind: "user",
                id: u,
            },
            (_, Some(a)) => Subject {
                kind: "agent",
                id: a,
            },
            _ => continue,
        };
        let scope = stype.zip(spattern);
        data.assignments
            .entry(subject)
            .or_default()
            .push(Assignment { role, scope });
    }
    Ok(data)
}
