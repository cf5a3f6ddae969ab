//! Who is calling: users and their passwords, browser sessions, the login
//! flow with its lockout (first start is the top-level `bootstrap`).

pub mod agents;
pub mod api_keys;
pub mod auth_stats;
pub mod factors;
pub mod login;
pub mod oidc;
pub mod passkeys;
pub mod passwords;
pub mod principals;
pub mod ratelimit;
pub mod recovery;
pub mod sessions;
pub mod signin;
pub mod totp;
pub mod users;

use serde::Serialize;

crate::closed_set! {
    /// Kind of an authenticated principal.
    pub enum PrincipalKind {
        User = "user",
        Agent = "agent",
    }
}

/// An authenticated caller, whatever the credential it used.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Principal {
    #[serde(rename = "type")]
    pub kind: PrincipalKind,
    pub id: String,
    pub name: String,
}

impl Principal {
    /// A user as the principal.
    pub fn of_user(user: &crate::db::users::UserRow) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: user.id.clone(),
            name: user.username.clone(),
        }
    }
}

/// User names: 1-64 characters of letters, digits and `._-@`, starting with
/// a letter or digit. Kept narrow so names are safe in logs, URLs and
/// audit records without escaping surprises.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok_len = (1..=64).contains(&name.chars().count());
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_first && ok_chars {
        Ok(())
    } else {
        Err("must be 1-64 characters of letters, digits, '.', '_', '-' or '@', starting with a letter or digit".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["admin", "a", "jane.doe@example.com", "ops_1-x"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", " admin", "-x", "a b", "é", "<script>", long.as_str()] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
