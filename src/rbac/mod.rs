//! Roles and permissions. This module holds the seeded system roles; the
//! compiled decision engine builds on the same tables.

pub mod system_roles;
