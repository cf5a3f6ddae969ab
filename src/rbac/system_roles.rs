//! The system roles seeded at first start (README, "Roles and authorization decisions"). Their grants are data:
//! an admin may edit descriptions; seeding never overwrites an existing row.

use rusqlite::Connection;

use crate::db::roles;
use crate::error::Result;
use crate::rbac::Permission;

pub const SYSTEM_ADMIN: &str = "system_admin";

pub struct SystemRole {
    pub name: &'static str,
    pub description: &'static str,
    pub inherits: &'static [&'static str],
    pub permissions: &'static [&'static str],
}

/// Parents come before children so inheritance rows always find their
/// target.
pub const SYSTEM_ROLES: &[SystemRole] = &[
    SystemRole {
        name: SYSTEM_ADMIN,
        description: "Full system administration access",
        inherits: &[],
        permissions: &["*"],
    },
    SystemRole {
        name: "workflow_viewer",
        description: "View workflow status and results",
        inherits: &[],
        permissions: &["workflow:view", "workflow:status", "results:view"],
    },
    SystemRole {
        name: "workflow_operator",
        description: "Execute and monitor workflows",
        inherits: &["workflow_viewer"],
        permissions: &[
            "workflow:execute",
            "workflow:monitor",
            "workflow:restart",
            "agent:view",
            "validation:view",
        ],
    },
    SystemRole {
        name: "workflow_manager",
        description: "Manage workflows and agents",
        inherits: &["workflow_operator"],
        permissions: &[
            "workflow:create",
            "workflow:delete",
            "workflow:modify",
            Permission::AgentManage.as_str(),
            "agent:configure",
            "validation:override",
        ],
    },
    SystemRole {
        name: "agent_service",
        description: "Service account for MCP agents",
        inherits: &[],
        permissions: &[
            "knowledge:read",
            "knowledge:write",
            "validation:execute",
            "workflow:update_status",
            Permission::MetricsReport.as_str(),
            Permission::TelemetryWrite.as_str(),
        ],
    },
    SystemRole {
        name: "validation_service",
        description: "Service account for validation agents",
        inherits: &[],
        permissions: &[
            "validation:execute",
            "validation:report",
            "knowledge:read",
            "workflow:validate",
            "code:analyze",
        ],
    },
    SystemRole {
        name: "auditor",
        description: "Read-only access to the audit log",
        inherits: &[],
        permissions: &[Permission::AuditRead.as_str()],
    },
];

/// Inserts the system roles that are missing. Returns how many were added.
pub fn seed(conn: &Connection, now: i64) -> Result<usize> {
    let mut added = 0;
    for r in SYSTEM_ROLES {
        if roles::insert_if_missing(
            conn,
            r.name,
            r.description,
            true,
            r.permissions,
            r.inherits,
            now,
        )? {
            added += 1;
        }
    }
    Ok(added)
}
