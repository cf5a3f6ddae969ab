//! Outbound requests that an admin can aim (health checks, notification
//! channels, MCP upstreams): the rules of which addresses they may reach
//! ([`rules::OutboundRules`], from `network.outbound_deny` and
//! `network.outbound_allow_private`) and the one client and resolver that
//! apply them at every connection and redirect hop ([`client`]).

pub mod client;
pub mod rules;
pub mod target;

pub use client::{request_failure, resolve, root_cause, Outbound, ResolveError};
pub use rules::{OutboundRules, Refusal};
pub use target::validate_url;
