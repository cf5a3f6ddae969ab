//! `[gateway]`: how agentry's MCP gateway treats upstream servers.

use serde::{Deserialize, Serialize};

use super::check::within;
use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Longest an upstream may take to answer one request the gateway
    /// forwarded, headers and the whole answer (10-3600); then the client
    /// gets a JSON-RPC error and the upstream connection is closed.
    pub call_timeout_seconds: u32,
    /// A server-sent event stream opened with GET that carries nothing for
    /// this long is closed (the client resumes it with Last-Event-ID;
    /// 10-86400).
    pub stream_idle_seconds: u32,
    /// Largest answer (one JSON body, or one server-sent event) the gateway
    /// takes from an upstream, in bytes (65536-268435456); a larger one is
    /// an upstream failure.
    pub max_response_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            call_timeout_seconds: 300,
            stream_idle_seconds: 600,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

impl GatewayConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "gateway.call_timeout_seconds",
            self.call_timeout_seconds,
            10..=3600,
        )?;
        within(
            "gateway.stream_idle_seconds",
            self.stream_idle_seconds,
            10..=86_400,
        )?;
        within(
            "gateway.max_response_bytes",
            self.max_response_bytes,
            65_536..=268_435_456,
        )
    }
}
