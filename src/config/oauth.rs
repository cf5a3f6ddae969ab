//! `[oauth]`: agentry as the authorization server of MCP deployments.

use serde::{Deserialize, Serialize};

use super::check::within;
use super::{invalid, ConfigError};

/// `oauth.dynamic_registration`: whether `POST /oauth/register` works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicRegistration {
    /// Registered clients can be used at once.
    Open,
    /// Registered clients are disabled until an admin enables them.
    Approval,
    /// The endpoint is not offered.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// A token request's `resource` must be agentry's own API or the URI
    /// of an enabled registered MCP server (else `invalid_target`); false
    /// admits any absolute URI, as earlier versions did.
    pub require_registered_resource: bool,
    /// A refresh token unused this many days is void (1-3650).
    pub refresh_idle_days: u32,
    /// A refresh token family (a sign-in and its refreshes) ends this many
    /// days after the sign-in (1-3650, at least refresh_idle_days).
    pub refresh_absolute_days: u32,
    /// RFC 7591 registration at /oauth/register: open, approval or off.
    pub dynamic_registration: DynamicRegistration,
    /// Registrations one client IP may make per minute (1-10000).
    pub registrations_per_minute: u32,
    /// Client ID metadata documents: a client_id that is an https URL is
    /// fetched for the client's name and redirect URIs ("on" or "off").
    pub client_metadata_documents: Switch,
    /// Also admit http://127.0.0.1/... (and [::1]) client ids, for local
    /// testing only.
    pub allow_http_loopback_client_ids: bool,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            require_registered_resource: true,
            refresh_idle_days: 30,
            refresh_absolute_days: 90,
            dynamic_registration: DynamicRegistration::Open,
            registrations_per_minute: 10,
            client_metadata_documents: Switch::On,
            allow_http_loopback_client_ids: false,
        }
    }
}

impl OAuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within("oauth.refresh_idle_days", self.refresh_idle_days, 1..=3650)?;
        within(
            "oauth.refresh_absolute_days",
            self.refresh_absolute_days,
            1..=3650,
        )?;
        if self.refresh_absolute_days < self.refresh_idle_days {
            return Err(invalid(
                "oauth.refresh_absolute_days",
                "must be at least oauth.refresh_idle_days",
            ));
        }
        within(
            "oauth.registrations_per_minute",
            self.registrations_per_minute,
            1..=10_000,
        )
    }
}
