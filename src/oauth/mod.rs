//! agentry as the OAuth authorization server of MCP clients: clients,
//! the authorization-code flow with PKCE and consent, refresh tokens.
//! Machine-to-machine grants (client credentials) are `tokens::oauth`'s.

pub mod authorize;
pub mod clients;
pub mod grants;
pub mod metadata_document;
pub mod pkce;
pub mod redirect;
pub mod registration;
