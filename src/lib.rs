//! agentry: the security and operations control plane for a fleet of AI
//! agents, in one binary. See `README.md` for operating it and
//! `ARCHITECTURE.md`-style module docs for where things live.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod app;
pub mod approvals;
pub mod audit;
pub mod bootstrap;
pub mod cache;
pub mod cli;
pub mod closed_set;
pub mod config;
pub mod crypto;
pub mod db;
pub mod encryption;
pub mod error;
pub mod formats;
pub mod identity;
pub mod label_match;
pub mod mcp;
pub mod monitor;
pub mod names;
pub mod net;
pub mod notify;
pub mod oauth;
pub mod rbac;
pub mod scheduler;
pub mod server;
pub mod telemetry;
pub mod timefmt;
pub mod tokens;
pub mod web;

pub use config::Config;
pub use server::{Running, StartError};

/// Starts the appliance on an already-bound listener; used by `serve` and
/// by the integration tests (which bind `127.0.0.1:0`).
pub async fn start(config: Config, listener: std::net::TcpListener) -> Result<Running, StartError> {
    server::start(config, listener).await
}
