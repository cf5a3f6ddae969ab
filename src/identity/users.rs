//! User accounts: create, read, update, delete, passwords, unlock, sessions.
//! Validation lives here so the API, the UI and the CLI apply the same rules.

use zeroize::Zeroizing;

use super::passwords::{self, Hasher};
use super::validate_username;
use crate::audit::{Audit, Context, Event, Outcome};
use crate::db::{self, roles, sessions, users, Db};
use crate::error::{Error, FieldErrors, Result};

pub use users::UserRow;

pub const MAX_DISPLAY_NAME: usize = 128;
pub const MAX_EMAIL: usize = 254;

#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub password: Zeroizing<String>,
    pub display_name: String,
    pub email: Option<String>,
    pub enabled: bool,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub display_name: Option<String>,
    /// `Some(None)` clears the address.
    pub email: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// The OpenID Connect subject to sign on as (`{issuer} {sub}`);
    /// `Some(None)` unlinks.
    pub oidc_subject: Option<Option<String>>,
}

fn check_display_name(name: &str, errors: &mut FieldErrors) {
    if name.chars().count() > MAX_DISPLAY_NAME {
        errors.insert(
            "display_name".into(),
            format!("must be at most {MAX_DISPLAY_NAME} characters"),
        );
    } else if name.chars().any(char::is_control) {
        errors.insert(
            "display_name".into(),
            "must not contain control characters".into(),
        );
    }
}

fn check_email(email: &str, errors: &mut FieldErrors) {
    let plausible = email.len() <= MAX_EMAIL
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        errors.insert(
            "email".into(),
            "must be an e-mail address such as ops@example.com".into(),
        );
    }
}

/// Validation errors are audited as failures before anything else is done.
async fn check(audit: &Audit, event: &Event, errors: FieldErrors) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(audit.fail(event.clone(), Error::fields(errors)).await)
    }
}

pub async fn create(
    audit: &Audit,
    hasher: &Hasher,
    ctx: &Context,
    new: NewUser,
) -> Result<UserRow> {
    let id = db::new_id();
    let event = ctx
        .event("user.create", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), id.clone())
        .detail("username", &new.username)
        .detail("enabled", new.enabled);
    let mut errors = FieldErrors::new();
    if let Err(m) = validate_username(&new.username) {
        errors.insert("username".into(), m);
    }
    if let Err(m) = passwords::check_policy(&new.username, &new.password) {
        errors.insert("password".into(), m);
    }
    check_display_name(&new.display_name, &mut errors);
    if let Some(e) = &new.email {
        check_email(e, &mut errors);
    }
    check(audit, &event, errors).await?;
    let hash = hasher.hash(new.password).await?;
    let now = db::now_ms();
    let row = UserRow {
        id,
        username: new.username,
        display_name: new.display_name,
        email: new.email,
        password_hash: hash,
        enabled: new.enabled,
        locked_until: None,
        password_changed_at: now,
        created_at: now,
        updated_at: now,
        oidc_subject: None,
    };
    audit
        .apply(event, move |c| {
            users::insert(c, &row).map_err(|e| {
                if db::is_unique_violation(&e) {
                    Error::Conflict(format!("a user named {} already exists", row.username))
                } else {
                    e.into()
                }
            })?;
            Ok(row)
        })
        .await
}

pub async fn get(db: &Db, id: &str) -> Result<UserRow> {
    let id = id.to_string();
    db.read(move |c| users::by_id(c, &id)?.ok_or_else(|| Error::NotFound(format!("user {id}"))))
        .await
}

/// A page of those matching `q` (case-insensitive, part of a name or
/// type, description, e-mail), and how many match in all.
pub async fn search(
    db: &Db,
    q: &str,
    after: Option<String>,
    limit: u32,
) -> Result<(Vec<UserRow>, i64)> {
    let needle = q.trim().to_lowercase();
    db.read(move |c| users::matching(c, &needle, after.as_deref(), limit))
        .await
}

pub async fn list(db: &Db, after: Option<String>, limit: u32) -> Result<Vec<UserRow>> {
    db.read(move |c| users::list(c, after.as_deref(), limit))
        .await
}

fn load(c: &rusqlite::Connection, id: &str) -> Result<UserRow> {
    users::by_id(c, id)?.ok_or_else(|| Error::NotFound(format!("user {id}")))
}

pub async fn update(
    audit: &Audit,
    ctx: &Context,
    id: &str,
    changes: UserChanges,
) -> Result<UserRow> {
    let mut event = ctx
        .event("user.update", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), id);
    if let Some(n) = &changes.display_name {
        event = event.detail("display_name", n);
    }
    if let Some(e) = &changes.email {
        event = event.detail("email", e);
    }
    if let Some(en) = changes.enabled {
        event = event.detail("enabled", en);
    }
    if let Some(sub) = &changes.oidc_subject {
        event = event.detail("oidc_subject", sub);
    }
    let mut errors = FieldErrors::new();
    if let Some(n) = &changes.display_name {
        check_display_name(n, &mut errors);
    }
    if let Some(Some(e)) = &changes.email {
        check_email(e, &mut errors);
    }
    check(audit, &event, errors).await?;
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            let mut u = load(c, &id)?;
            if let Some(n) = changes.display_name {
                u.display_name = n;
            }
            if let Some(e) = changes.email {
                u.email = e;
            }
            if let Some(subject) = changes.oidc_subject {
                if let Some(s) = &subject {
                    if users::by_oidc_subject(c, s)?.is_some_and(|other| other.id != u.id) {
                        return Err(Error::Conflict(
                            "another user is linked to this sign-on subject".into(),
                        ));
                    }
                }
                u.oidc_subject = subject;
            }
            if let Some(enabled) = changes.enabled {
                if !enabled && roles::is_last_enabled_admin(c, &u.id)? {
                    return Err(Error::Conflict(
                        "cannot disable the last enabled system_admin user".into(),
                    ));
                }
                if u.enabled && !enabled {
                    // A disabled account keeps no live session, and tokens
                    // issued before now stay void after it is enabled again.
                    sessions::delete_for_user(c, &u.id)?;
                    crate::db::tokens::void_user_tokens(c, &u.id, db::now_ms())?;
                }
                u.enabled = enabled;
            }
            let now = db::now_ms();
            users::update_profile(c, &u, now)?;
            u.updated_at = now;
            Ok(u)
        })
        .await
}

/// Deletes a user. Refuses to delete the last enabled system_admin, so the
/// appliance can never be left without an administrator.
pub async fn delete(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("user.delete", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            load(c, &id)?;
            if roles::is_last_enabled_admin(c, &id)? {
                return Err(Error::Conflict(
                    "cannot delete the last enabled system_admin user".into(),
                ));
            }
            users::delete(c, &id)?;
            Ok(())
        })
        .await
}

/// Sets a new password. When the user changes their own password
/// (`current` is given) the current one must verify. Ends every session of
/// the user except `keep_session`.
pub async fn set_password(
    audit: &Audit,
    hasher: &Hasher,
    ctx: &Context,
    user: &UserRow,
    new_password: Zeroizing<String>,
    current: Option<Zeroizing<String>>,
    keep_session: Option<String>,
) -> Result<()> {
    let action = if current.is_some() {
        "user.password.change"
    } else {
        "user.password.reset"
    };
    let event = ctx
        .event(action, Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), &user.id);
    if let Some(current) = current {
        if !hasher
            .verify(current, Some(user.password_hash.clone()))
            .await?
        {
            return Err(audit
                .fail(event, Error::field("current_password", "does not match"))
                .await);
        }
    }
    if let Err(m) = passwords::check_policy(&user.username, &new_password) {
        return Err(audit.fail(event, Error::field("password", m)).await);
    }
    let hash = hasher.hash(new_password).await?;
    let id = user.id.clone();
    audit
        .apply(event, move |c| {
            if !users::set_password(c, &id, &hash, db::now_ms())? {
                return Err(Error::NotFound(format!("user {id}")));
            }
            match keep_session {
                Some(keep) => sessions::delete_for_user_except(c, &id, &keep)?,
                None => sessions::delete_for_user(c, &id)?,
            };
            Ok(())
        })
        .await
}

pub async fn unlock(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("user.unlock", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            load(c, &id)?;
            users::clear_lockout(c, &id)
        })
        .await
}

/// Ends every session of a user; returns how many.
pub async fn revoke_sessions(audit: &Audit, ctx: &Context, id: &str) -> Result<usize> {
    let event = ctx
        .event("user.sessions.revoke", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            load(c, &id)?;
            sessions::delete_for_user(c, &id)
        })
        .await
}
