//! agentry and the Model Context Protocol: the MCP servers registered as
//! resources that agentry issues tokens for.

pub mod servers;

pub use servers::{McpServerSpec, McpServerView, McpServers, ResourceMetadata};
