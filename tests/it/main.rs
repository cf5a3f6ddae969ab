//! The integration tests: one binary, the real server on loopback.

#[path = "../support/mod.rs"]
mod support;

mod agents;
mod alerting;
mod audit;
mod backup;
mod browser;
mod browser_charts;
mod browser_history;
mod browser_hubs;
mod browser_layout;
mod browser_mcp;
mod browser_telemetry;
mod browser_triage;
mod cli;
mod client_keys;
mod containment;
mod crypto;
mod crypto_keys;
mod exchange;
mod faults;
mod forward_auth;
mod gateway;
mod gateway_faults;
mod gateway_settings;
mod http_edge;
mod layers;
mod lifecycle;
mod login;
mod mcp_sdk;
mod mcp_servers;
mod metrics;
mod monitoring;
mod notify;
mod oauth;
mod oauth_code;
mod outbound;
mod packaging;
mod rbac;
mod security;
mod storage;
mod telemetry;
mod tls;
mod upgrade;
mod users;
