//! `user_factors` (migration 0028): users' second factors.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

crate::closed_set! {
    /// What kind of second factor a row is.
    pub enum FactorKind {
        Totp = "totp",
        Passkey = "passkey",
    }
}

impl FactorKind {
    /// How the account page names it.
    pub fn title(self) -> &'static str {
        match self {
            FactorKind::Totp => "Authenticator app",
            FactorKind::Passkey => "Passkey",
        }
    }
}

/// A factor as stored (the secret still sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct FactorRow {
    pub id: String,
    pub user_id: String,
    pub kind: FactorKind,
    pub label: String,
    pub secret: String,
    /// Passkeys: the credential id (base64url), public.
    pub credential_id: Option<String>,
    pub confirmed_at: Option<i64>,
    pub last_step: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, kind, label, secret, credential_id, confirmed_at, last_step,
    created_at, last_used_at";

fn row(r: &rusqlite::Row) -> rusqlite::Result<FactorRow> {
    Ok(FactorRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        kind: r.get(2)?,
        label: r.get(3)?,
        secret: r.get(4)?,
        credential_id: r.get(5)?,
        confirmed_at: r.get(6)?,
        last_step: r.get(7)?,
        created_at: r.get(8)?,
        last_used_at: r.get(9)?,
    })
}

pub fn insert(conn: &Connection, f: &FactorRow) -> Result<()> {
    conn.execute(
        "INSERT INTO user_factors (id, user_id, kind, label, secret, credential_id, confirmed_at,
            last_step, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            f.id,
            f.user_id,
            f.kind,
            f.label,
            f.secret,
            f.credential_id,
            f.confirmed_at,
            f.last_step,
            f.created_at,
            f.last_used_at
        ],
    )?;
    Ok(())
}

/// A user's factors, oldest first (pending ones included).
pub fn of_user(conn: &Connection, user_id: &str) -> Result<Vec<FactorRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user_factors WHERE user_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([user_id], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, user_id: &str, id: &str) -> Result<Option<FactorRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM user_factors WHERE user_id = ?1 AND id = ?2"
        ))?
        .query_row(params![user_id, id], row)
        .optional()?)
}

/// Marks a pending factor confirmed with its first step; false when it
/// was not pending.
pub fn confirm(conn: &Connection, id: &str, step: i64, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE user_factors SET confirmed_at = ?3, last_step = ?2, last_used_at = ?3
         WHERE id = ?1 AND confirmed_at IS NULL",
        params![id, step, now],
    )? == 1)
}

/// Records that `step` was accepted, only if it is later than the last
/// one (two sign-ins racing with the same code: one wins); false when it
/// was not.
pub fn use_step(conn: &Connection, id: &str, step: i64, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE user_factors SET last_step = ?2, last_used_at = ?3
         WHERE id = ?1 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < ?2)",
        params![id, step, now],
    )? == 1)
}

pub fn delete(conn: &Connection, user_id: &str, id: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM user_factors WHERE user_id = ?1 AND id = ?2",
        params![user_id, id],
    )? == 1)
}

/// Removes every factor of a user; returns how many.
pub fn delete_all(conn: &Connection, user_id: &str) -> Result<usize> {
    Ok(conn.execute("DELETE FROM user_factors WHERE user_id = ?1", [user_id])?)
}

/// The confirmed passkey with this credential id, whoever holds it.
pub fn by_credential(conn: &Connection, credential_id: &str) -> Result<Option<FactorRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM user_factors
             WHERE credential_id = ?1 AND kind = 'passkey' AND confirmed_at IS NOT NULL"
        ))?
        .query_row([credential_id], row)
        .optional()?)
}

/// Replaces a factor's sealed secret (a passkey's counter moved) and
/// records its use.
pub fn reseal(conn: &Connection, id: &str, secret: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE user_factors SET secret = ?2, last_used_at = ?3 WHERE id = ?1",
        params![id, secret, now],
    )? == 1)
}

/// Records a factor's use.
pub fn used(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE user_factors SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// Pending enrolments older than `before` (never confirmed) go.
pub fn prune_pending(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM user_factors WHERE confirmed_at IS NULL AND created_at < ?1",
        [before],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(id: &str, user: &str, at: i64) -> FactorRow {
        FactorRow {
            id: id.into(),
            user_id: user.into(),
            kind: FactorKind::Totp,
            label: "phone".into(),
            secret: "{sealed}".into(),
            credential_id: None,
            confirmed_at: None,
            last_step: None,
            created_at: at,
            last_used_at: None,
        }
    }

    #[test]
    fn a_factor_is_confirmed_once_and_each_step_used_once() {
        let conn = crate::db::migrate::in_memory();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, password_changed_at, created_at, updated_at)
             VALUES ('u1', 'alice', 'x', 0, 0, 0);",
        )
        .unwrap();
        insert(&conn, &factor("f1", "u1", 10)).unwrap();
        assert!(
            !use_step(&conn, "f1", 5, 20).unwrap(),
            "not before confirmation"
        );
        assert!(confirm(&conn, "f1", 5, 20).unwrap());
        assert!(!confirm(&conn, "f1", 6, 21).unwrap(), "confirmed once");
        assert!(
            !use_step(&conn, "f1", 5, 22).unwrap(),
            "the confirming step is used"
        );
        assert!(use_step(&conn, "f1", 6, 23).unwrap());
        assert!(!use_step(&conn, "f1", 6, 24).unwrap());
        let f = get(&conn, "u1", "f1").unwrap().unwrap();
        assert_eq!((f.last_step, f.last_used_at), (Some(6), Some(23)));
        insert(&conn, &factor("f2", "u1", 10)).unwrap();
        assert_eq!(prune_pending(&conn, 11).unwrap(), 1, "only the pending one");
        assert_eq!(of_user(&conn, "u1").unwrap().len(), 1);
        assert!(
            get(&conn, "u2", "f1").unwrap().is_none(),
            "another user's id"
        );
        assert_eq!(delete_all(&conn, "u1").unwrap(), 1);
    }
}
