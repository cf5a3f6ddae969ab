//! Who is calling: users and their passwords, browser sessions, the login
//! flow with its lockout, and first-start bootstrap.

pub mod agents;
pub mod api_keys;
pub mod auth_stats;
pub mod bootstrap;
pub mod login;
pub mod passwords;
pub mod principals;
pub mod ratelimit;
pub mod sessions;
pub mod users;

use serde::{Deserialize, Serialize};

/// Kind of an authenticated principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Agent,
}

impl PrincipalKind {
    pub const ALL: [PrincipalKind; 2] = [PrincipalKind::User, PrincipalKind::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<PrincipalKind> {
        PrincipalKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
