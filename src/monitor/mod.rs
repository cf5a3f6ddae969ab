//! Monitoring: agent instances, scheduled health checks and their state,
//! and the system health summary.

pub mod checker;
pub mod exposition;
pub mod health;
pub mod history;
pub mod instances;
pub mod metrics;
pub mod rollup;
pub mod runtime;
pub mod self_stats;
pub mod state;
pub mod status_spec;
pub mod telemetry_stats;
