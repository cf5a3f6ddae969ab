//! Sections about who gets in and how far: sessions, sign-in, API keys,
//! tokens, request budgets, decisions and the audit trail.

use serde::{Deserialize, Serialize};

use super::check::{within, zero_or_up_to};
use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Sign-out after this long without a request (1-1440 minutes).
    pub idle_timeout_minutes: u64,
    /// Sign-out at the latest (1-720 hours).
    pub absolute_lifetime_hours: u64,
    /// Force the `Secure` cookie flag (always on when serving TLS). Set it
    /// when a TLS-terminating reverse proxy sits in front.
    pub cookie_secure: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout_minutes: 30,
            absolute_lifetime_hours: 12,
            cookie_secure: false,
        }
    }
}

impl SessionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "session.idle_timeout_minutes",
            self.idle_timeout_minutes,
            1..=24 * 60,
        )?;
        within(
            "session.absolute_lifetime_hours",
            self.absolute_lifetime_hours,
            1..=24 * 30,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins within `failure_window_minutes` that lock an account
    /// (1-100).
    pub max_failures: u32,
    /// 1-1440 minutes.
    pub failure_window_minutes: u64,
    /// 1-10080 minutes.
    pub lockout_minutes: u64,
    /// Login attempts one client IP may make per minute (then 429;
    /// 1-100000).
    pub rate_limit_per_minute: u32,
    /// Users holding any of these roles (directly or through inheritance,
    /// at any scope) must give a second factor; one who has none is sent
    /// to enrol one right after the password (SPEC §16). `[]` asks no one.
    pub require_second_factor: Vec<String>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failures: 5,
            failure_window_minutes: 15,
            lockout_minutes: 15,
            rate_limit_per_minute: 30,
            require_second_factor: vec!["system_admin".into()],
        }
    }
}

impl LoginConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within("login.max_failures", self.max_failures, 1..=100)?;
        within(
            "login.failure_window_minutes",
            self.failure_window_minutes,
            1..=24 * 60,
        )?;
        within(
            "login.lockout_minutes",
            self.lockout_minutes,
            1..=7 * 24 * 60,
        )?;
        within(
            "login.rate_limit_per_minute",
            self.rate_limit_per_minute,
            1..=100_000,
        )?;
        if let Some(bad) = self
            .require_second_factor
            .iter()
            .find(|r| !crate::names::is_lower_snake(r))
        {
            return Err(ConfigError::Invalid {
                key: "login.require_second_factor",
                message: format!("{bad:?} is not a role name (lower_snake_case)"),
            });
        }
        if self.require_second_factor.len() > 100 {
            return Err(ConfigError::Invalid {
                key: "login.require_second_factor",
                message: "at most 100 roles".into(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Records older than this many days are pruned (behind a checkpoint
    /// that keeps the rest verifiable). 0 keeps everything.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 365,
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        zero_or_up_to(
            "audit.retention_days",
            self.retention_days,
            36_500,
            "keep forever",
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// Longest lifetime a key may be given, and the lifetime of keys created
    /// without one. 0: no maximum, and keys without expiry are allowed.
    pub max_lifetime_days: u32,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig {
            max_lifetime_days: 365,
        }
    }
}

impl ApiKeysConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        zero_or_up_to(
            "api_keys.max_lifetime_days",
            self.max_lifetime_days,
            36_500,
            "no maximum",
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Refused bearer credentials (API keys, access tokens, malformed
    /// `Authorization` headers) one client IP may send per minute; further
    /// refusals are answered 429 and not audited one by one.
    pub auth_failures_per_minute: u32,
    /// Requests one client IP may send per minute to the endpoints that
    /// need no credential (probes, published documents, static assets, the
    /// login page, unknown paths); further ones are answered 429. 0 turns
    /// the limit off.
    pub anonymous_requests_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            auth_failures_per_minute: 60,
            anonymous_requests_per_minute: 6000,
        }
    }
}

impl ApiConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "api.auth_failures_per_minute",
            self.auth_failures_per_minute,
            1..=1_000_000,
        )?;
        zero_or_up_to(
            "api.anonymous_requests_per_minute",
            self.anonymous_requests_per_minute,
            10_000_000,
            "off",
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Lifetime of issued access tokens (60-86400 seconds).
    pub lifetime_seconds: u32,
    /// The signing key is rotated when it is this many days old (0: only
    /// on demand).
    pub signing_key_rotation_days: u32,
    /// Token, introspection and revocation requests one client IP may make
    /// per minute.
    pub rate_limit_per_minute: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            lifetime_seconds: 900,
            signing_key_rotation_days: 30,
            rate_limit_per_minute: 600,
        }
    }
}

impl TokensConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "tokens.lifetime_seconds",
            self.lifetime_seconds,
            60..=86_400,
        )?;
        zero_or_up_to(
            "tokens.signing_key_rotation_days",
            self.signing_key_rotation_days,
            3650,
            "on demand only",
        )?;
        within(
            "tokens.rate_limit_per_minute",
            self.rate_limit_per_minute,
            1..=1_000_000,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecisions {
    All,
    Denials,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzConfig {
    /// Which decisions of the decision API are recorded: "all" or "denials".
    pub audit_decisions: AuditDecisions,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        AuthzConfig {
            audit_decisions: AuditDecisions::All,
        }
    }
}
