//! `[oauth]`: agentry as the authorization server of MCP deployments.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// A token request's `resource` must be agentry's own API or the URI
    /// of an enabled registered MCP server (else `invalid_target`); false
    /// admits any absolute URI, as earlier versions did.
    pub require_registered_resource: bool,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            require_registered_resource: true,
        }
    }
}
