//! Human approval of risky calls (SPEC §18): approval rules, the binding of
//! an approval to the exact call, and the decisions over held calls, as
//! pure functions over data (`binding`, `rules`), apart from their I/O.

pub mod access;
pub mod binding;
pub mod cooperative;
pub mod links;
pub mod live;
pub mod notice;
pub mod requests;
pub mod rules;
pub mod store;
pub mod waiting;

pub use crate::db::approvals::ApprovalState;
