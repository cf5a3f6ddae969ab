//! The master key check value and the appliance's own keys.
//!
//! The audit chain MAC key and the CSRF token key must outlive a master key
//! rotation (old audit records stay verifiable), so they are stored sealed
//! under the master key rather than derived from it on every start. The
//! check value — an HKDF output of the master key under its own label,
//! which reveals nothing about the key or its other outputs — lets start-up
//! refuse a wrong master key before anything is read or written with it.

use rusqlite::Connection;

use super::data_keys;
use super::{constant_time_eq, hex, sealed, DerivedKey, MasterKey};
use crate::db::{self, key_material as repo, keyrings};
use crate::error::Error;

pub const CHECK: &str = "master-key-check";
/// HKDF label of the key that seals the rows of `key_material`.
pub const WRAP_KEY_LABEL: &str = "key-material-wrap";
/// The sealed keys, by row name. The names are the HKDF labels these keys
/// were derived from before they were stored, which keeps databases made
/// by earlier versions verifiable.
pub const AUDIT_CHAIN: &str = "audit-chain";
pub const CSRF: &str = "csrf-token";
/// HKDF label of the key that seals the token signing keys (derived, not
/// stored).
pub const SIGNING_KEY_WRAP: &str = "signing-key-wrap";
const SEALED: &[&str] = &[AUDIT_CHAIN, CSRF];

pub struct ApplianceKeys {
    pub audit_chain: DerivedKey,
    pub csrf: DerivedKey,
}

#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error(
        "the master key does not belong to this database (its check value differs): \
         was master.key replaced, or AGENTRY_MASTER_KEY set to another installation's key? \
         Start with the key this database was created with; nothing can be read without it"
    )]
    WrongMasterKey,
    #[error("the appliance key {0} cannot be unsealed; the database is damaged")]
    Damaged(String),
    #[error("database: {0}")]
    Database(#[from] Error),
}

pub fn check_value(master: &MasterKey) -> String {
    hex(master.derive(CHECK).as_ref())
}

/// Whether `master` is this database's master key; `None` when the
/// database holds nothing to tell (no check value and no data key yet).
pub fn matches(conn: &Connection, master: &MasterKey) -> Result<Option<bool>, Error> {
    if let Some(stored) = repo::get(conn, CHECK)? {
        return Ok(Some(constant_time_eq(
            stored.as_bytes(),
            check_value(master).as_bytes(),
        )));
    }
    // A database from before check values: try a data key.
    let wrap = master.derive(data_keys::WRAP_KEY_LABEL);
    Ok(keyrings::keys(conn)?.first().map(|k| {
        sealed::open_key(&wrap, &data_keys::key_aad(&k.key_id, k.version), &k.wrapped).is_some()
    }))
}

/// Checks the master key against the database and returns the appliance
/// keys, storing the check value and the keys on the first call.
pub fn unlock(conn: &mut Connection, master: &MasterKey) -> Result<ApplianceKeys, UnlockError> {
    if matches(conn, master)? == Some(false) {
        return Err(UnlockError::WrongMasterKey);
    }
    let wrap = master.derive(WRAP_KEY_LABEL);
    let mut keys = Vec::with_capacity(SEALED.len());
    let mut damaged = None;
    db::write_tx(conn, |tx| {
        let now = db::now_ms();
        if repo::get(tx, CHECK)?.is_none() {
            repo::put(tx, CHECK, &check_value(master), now)?;
        }
        for name in SEALED {
            match repo::get(tx, name)? {
                Some(s) => match sealed::open_key(&wrap, name.as_bytes(), &s) {
                    Some(k) => keys.push(k),
                    None => {
                        damaged = Some(name.to_string());
                        return Err(Error::internal("an appliance key cannot be unsealed"));
                    }
                },
                None => {
                    let key = master.derive(name);
                    repo::put(
                        tx,
                        name,
                        &sealed::seal(&wrap, name.as_bytes(), key.as_ref()),
                        now,
                    )?;
                    keys.push(key);
                }
            }
        }
        Ok(())
    })
    .map_err(|e| match damaged.take() {
        Some(name) => UnlockError::Damaged(name),
        None => UnlockError::Database(e),
    })?;
    let csrf = keys.pop().expect("two keys");
    let audit_chain = keys.pop().expect("two keys");
    Ok(ApplianceKeys { audit_chain, csrf })
}

/// What a master key rotation rewrapped.
#[derive(Debug, Default)]
pub struct Rewrapped {
    pub data_keys: usize,
    pub signing_keys: usize,
    pub appliance_keys: usize,
}

/// Re-seals every key stored under `old` with `new` and replaces the check
/// value. Call inside one transaction: either everything moves or nothing.
pub fn rewrap_all(conn: &Connection, old: &MasterKey, new: &MasterKey) -> Result<Rewrapped, Error> {
    let mut out = Rewrapped::default();
    let damaged = |what: String| {
        Error::internal(format!(
            "{what} cannot be unsealed with the current master key"
        ))
    };
    let (from, to) = (
        old.derive(data_keys::WRAP_KEY_LABEL),
        new.derive(data_keys::WRAP_KEY_LABEL),
    );
    for k in keyrings::keys(conn)? {
        let aad = data_keys::key_aad(&k.key_id, k.version);
        let moved = sealed::reseal(&from, &to, &aad, &k.wrapped)
            .ok_or_else(|| damaged(format!("data key {}", k.key_id)))?;
        keyrings::set_wrapped(conn, &k.key_id, &moved)?;
        out.data_keys += 1;
    }
    let label = SIGNING_KEY_WRAP;
    let (from, to) = (old.derive(label), new.derive(label));
    for (kid, s) in db::tokens::sealed_private_keys(conn)? {
        let moved = sealed::reseal(&from, &to, kid.as_bytes(), &s)
            .ok_or_else(|| damaged(format!("signing key {kid}")))?;
        db::tokens::set_private_key(conn, &kid, &moved)?;
        out.signing_keys += 1;
    }
    let (from, to) = (old.derive(WRAP_KEY_LABEL), new.derive(WRAP_KEY_LABEL));
    let now = db::now_ms();
    for (name, s) in repo::all(conn)? {
        if name == CHECK {
            continue;
        }
        let moved = sealed::reseal(&from, &to, name.as_bytes(), &s)
            .ok_or_else(|| damaged(format!("appliance key {name}")))?;
        repo::put(conn, &name, &moved, now)?;
        out.appliance_keys += 1;
    }
    repo::put(conn, CHECK, &check_value(new), now)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_check_values_is_judged_by_its_data_keys() {
        let conn = crate::db::migrate::in_memory();
        let (a, b) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
        );
        assert_eq!(matches(&conn, &a).unwrap(), None, "nothing to tell yet");
        keyrings::insert_ring(&conn, "internal", false, None, 0).unwrap();
        let wrap = a.derive(data_keys::WRAP_KEY_LABEL);
        keyrings::insert_key(
            &conn,
            &keyrings::DataKeyRow {
                key_id: "dk_1".into(),
                classification: "internal".into(),
                version: 1,
                wrapped: sealed::seal(&wrap, &data_keys::key_aad("dk_1", 1), &[7; 32]),
                created_at: 0,
                encryptions: 0,
            },
        )
        .unwrap();
        assert_eq!(matches(&conn, &a).unwrap(), Some(true));
        assert_eq!(matches(&conn, &b).unwrap(), Some(false));
    }

    #[test]
    fn unlock_stores_the_check_value_and_refuses_another_key() {
        let mut conn = crate::db::migrate::in_memory();
        let (a, b) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
        );
        let first = unlock(&mut conn, &a).unwrap();
        // Keys are stable across starts, and equal to what earlier
        // versions derived, so existing audit chains keep verifying.
        let again = unlock(&mut conn, &a).unwrap();
        assert_eq!(*first.audit_chain, *again.audit_chain);
        assert_eq!(*first.audit_chain, *a.derive(AUDIT_CHAIN));
        assert!(matches!(
            unlock(&mut conn, &b),
            Err(UnlockError::WrongMasterKey)
        ));
        // After a rewrap only the new key opens it, with the same keys.
        rewrap_all(&conn, &a, &b).unwrap();
        assert!(matches!(
            unlock(&mut conn, &a),
            Err(UnlockError::WrongMasterKey)
        ));
        assert_eq!(*unlock(&mut conn, &b).unwrap().csrf, *first.csrf);
    }
}
