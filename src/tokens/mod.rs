//! Tokens: signing keys and the JWKS, JWT access tokens, and the OAuth 2.0
//! client-credentials grant with introspection and revocation.

pub mod cache;
pub mod client_keys;
pub mod exchange;
pub mod jwt;
pub mod keys;
pub mod oauth;

pub use jwt::{Claims, TokenFailure};
pub use keys::SigningKeys;
