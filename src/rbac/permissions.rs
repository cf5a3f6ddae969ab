//! The permissions agentry's own endpoints and pages require, named once:
//! the guard, the pages, the system roles, the checks and the OpenAPI
//! security requirements (written by `web::needs` where a route is
//! registered) use these.
//!
//! Permissions of the fleet's own applications (`workflow:execute`,
//! `knowledge:read`, ...) are data, in roles; only the ones agentry itself
//! checks are here.

crate::closed_set! {
    /// A permission agentry checks.
    pub enum Permission {
        UserManage = "user:manage",
        AgentManage = "agent:manage",
        RoleManage = "role:manage",
        KeyManage = "key:manage",
        AuditRead = "audit:read",
        AuthzCheck = "authz:check",
        CryptoEncrypt = "crypto:encrypt",
        CryptoDecrypt = "crypto:decrypt",
        MetricsReport = "metrics:report",
        MonitorManage = "monitor:manage",
        HealthView = "health:view",
        AlertRead = "alert:read",
        AlertAcknowledge = "alert:acknowledge",
        AlertManage = "alert:manage",
        TokenIntrospect = "token:introspect",
        /// Register MCP servers as resources agentry issues tokens for.
        McpManage = "mcp:manage",
        /// Exchange a token addressed to oneself for one to a downstream
        /// MCP server (RFC 8693), on resource `mcp_server/<its name>`.
        TokenExchange = "token:exchange",
        /// Register, change and remove OAuth clients.
        OAuthClientManage = "oauth_client:manage",
        /// Through the MCP gateway: call a tool (resource
        /// `mcp_tool/<server>/<tool>`, unless the server maps the tool to
        /// another permission) or another method (`mcp_method/...`).
        McpCall = "mcp:call",
        /// Through the MCP gateway: read a resource
        /// (`mcp_resource/<server>/<uri>`).
        McpRead = "mcp:read",
        /// Through the MCP gateway: get a prompt (`mcp_prompt/<server>/<name>`).
        McpPrompt = "mcp:prompt",
        /// Send traces, logs and metrics to the OTLP receiver (`/v1/*`).
        TelemetryWrite = "telemetry:write",
        /// Read traces and logs (`/api/v1/traces`, `/api/v1/logs`).
        TelemetryRead = "telemetry:read",
        /// Write approval rules and see and decide every approval request.
        ApprovalManage = "approval:manage",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_is_a_valid_pattern() {
        for p in Permission::ALL {
            assert!(super::super::patterns::valid_permission(p.as_str()), "{p}");
        }
    }
}
