//! First start: system roles and the first `system_admin` user.
//!
//! Idempotent: seeding only inserts what is missing, and the admin is
//! created only while the database holds no user at all, so a second start
//! changes nothing.

use rusqlite::Connection;
use secrecy::{ExposeSecret, SecretString};

use crate::audit::writer::{self, Item};
use crate::audit::{ChainKey, Context, Outcome};
use crate::crypto::random;
use crate::db::{self, roles, users};
use crate::error::{Error, Result};
use crate::rbac::system_roles::{self, SYSTEM_ADMIN};

/// What a start created, for the caller to report.
#[derive(Debug, Default)]
pub struct Seeded {
    pub roles_added: usize,
    pub admin: Option<FirstAdmin>,
}

#[derive(Debug)]
pub struct FirstAdmin {
    pub username: String,
    /// Set when the password was generated; it must be shown exactly once.
    pub generated_password: Option<SecretString>,
}

pub fn seed(
    conn: &mut Connection,
    key: &ChainKey,
    admin_user: &str,
    admin_password: Option<&SecretString>,
) -> Result<Seeded> {
    db::write_tx(conn, |tx| {
        let now = db::now_ms();
        let ctx = Context::system("bootstrap");
        let roles_added = system_roles::seed(tx, now)?;
        let mut events = Vec::new();
        if roles_added > 0 {
            events.push(
                ctx.event("role.seed", Outcome::Success)
                    .detail("roles_added", roles_added),
            );
        }
        let admin = if users::count(tx)? == 0 {
            let (admin, id) = create_first_admin(tx, admin_user, admin_password, now)?;
            events.push(
                ctx.event("user.create", Outcome::Success)
                    .target(crate::identity::PrincipalKind::User.as_str(), id)
                    .detail("username", admin_user)
                    .detail("roles", [SYSTEM_ADMIN])
                    .detail(
                        "password",
                        if admin.generated_password.is_some() {
                            "generated"
                        } else {
                            "from environment"
                        },
                    ),
            );
            Some(admin)
        } else {
            None
        };
        let mut items: Vec<Item> = events.into_iter().map(|e| Item::new(e, None)).collect();
        writer::append_in(tx, key, &mut items)?;
        Ok(Seeded { roles_added, admin })
    })
}

fn create_first_admin(
    conn: &Connection,
    username: &str,
    password: Option<&SecretString>,
    now: i64,
) -> Result<(FirstAdmin, String)> {
    let (plain, generated) = match password {
        Some(p) => {
            crate::identity::passwords::check_policy(username, p.expose_secret())
                .map_err(|m| Error::field("AGENTRY_ADMIN_PASSWORD", m))?;
            (SecretString::from(p.expose_secret().to_string()), false)
        }
        None => (SecretString::from(random::password()), true),
    };
    let hash = crate::identity::passwords::hash_sync(plain.expose_secret())?;
    let id = db::new_id();
    insert_admin(conn, &id, username, "Administrator", hash, now)?;
    Ok((
        FirstAdmin {
            username: username.to_string(),
            generated_password: generated.then_some(plain),
        },
        id,
    ))
}

/// Inserts an enabled user holding the unscoped `system_admin` role (first
/// start and `agentry admin create`) under the given id; a taken name is a
/// conflict.
pub fn insert_admin(
    conn: &Connection,
    id: &str,
    username: &str,
    display_name: &str,
    password_hash: String,
    now: i64,
) -> Result<()> {
    users::insert(
        conn,
        &users::UserRow {
            id: id.to_string(),
            username: username.to_string(),
            display_name: display_name.to_string(),
            email: None,
            password_hash,
            enabled: true,
            locked_until: None,
            password_changed_at: now,
            created_at: now,
            updated_at: now,
            oidc_subject: None,
        },
    )
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            Error::Conflict(format!("user {username} already exists"))
        } else {
            e.into()
        }
    })?;
    roles::assign_to_user(conn, &db::new_id(), SYSTEM_ADMIN, id, now)?;
    Ok(())
}
