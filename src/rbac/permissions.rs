//! The permissions agentry's own endpoints and pages require, named once:
//! the guard, the pages, the system roles and the checks use these; the
//! OpenAPI security requirements spell them out (attribute literals) and a
//! test holds every one of those to this list.
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
