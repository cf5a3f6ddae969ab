//! agentry and the Model Context Protocol: the MCP servers registered as
//! resources that agentry issues tokens for, and the gateway's message
//! model and policy (its HTTP plumbing lives in `web/`).

pub mod gateway;
pub mod limits;
pub mod message;
pub mod policy;
pub mod probe;
pub mod record;
pub mod servers;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod trace;
pub mod verdict;

pub use servers::{McpServerSpec, McpServerView, McpServers, ResourceMetadata};
