//! `recovery_codes` (migration 0028): each user's one-time recovery codes,
//! kept as SHA-256 hashes.

use rusqlite::{params, Connection};

use crate::error::Result;

/// Replaces a user's codes with `hashes`.
pub fn replace(conn: &Connection, user_id: &str, hashes: &[String], now: i64) -> Result<()> {
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)",
    )?;
    for h in hashes {
        stmt.execute(params![user_id, h, now])?;
    }
    Ok(())
}

/// Uses the code with this hash; false when the user has no such unused
/// code (two sign-ins racing with one code: the update decides).
pub fn use_code(conn: &Connection, user_id: &str, hash: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![user_id, hash, now],
    )? == 1)
}

/// How many unused codes a user has.
pub fn unused(conn: &Connection, user_id: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )?)
}

pub fn delete_all(conn: &Connection, user_id: &str) -> Result<usize> {
    Ok(conn.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_replacing_drops_the_old_ones() {
        let conn = crate::db::migrate::in_memory();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, password_changed_at, created_at, updated_at)
             VALUES ('u1', 'alice', 'x', 0, 0, 0), ('u2', 'bob', 'x', 0, 0, 0);",
        )
        .unwrap();
        replace(&conn, "u1", &["a".into(), "b".into()], 1).unwrap();
        assert_eq!(unused(&conn, "u1").unwrap(), 2);
        assert!(
            !use_code(&conn, "u2", "a", 2).unwrap(),
            "another user's code"
        );
        assert!(use_code(&conn, "u1", "a", 2).unwrap());
        assert!(!use_code(&conn, "u1", "a", 3).unwrap(), "used twice");
        assert_eq!(unused(&conn, "u1").unwrap(), 1);
        replace(&conn, "u1", &["c".into()], 4).unwrap();
        assert!(!use_code(&conn, "u1", "b", 5).unwrap(), "replaced");
        assert!(use_code(&conn, "u1", "c", 5).unwrap());
        assert_eq!(delete_all(&conn, "u1").unwrap(), 1);
    }
}
