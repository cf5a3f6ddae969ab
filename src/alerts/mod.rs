//! Alerting (README, "Alerting"): rule expressions, rules, evaluation and the alert
//! lifecycle, silences, inhibition and escalation. Notifications leave
//! through `notify`'s outbox.
//!
//! - [`expr`]: the expression language (lexer, parser, evaluator).
//! - [`rules`], [`policies`], [`silences`]: validated, audited configuration.
//! - [`source`]: the metric catalog and the per-cycle snapshot of series;
//!   [`mcp_series`]: the gateway's series, from the audit log.
//! - [`plan`]: one cycle's decisions, pure; [`engine`] reads, plans, writes.
//! - [`labels`]: alert labels, fingerprints, annotation templates, inhibition.

pub use crate::db::alerts::AlertState;

pub mod engine;
pub mod expr;
pub mod labels;
pub mod mcp_series;
pub mod plan;
pub mod policies;
pub mod rules;
pub mod silences;
pub mod source;
