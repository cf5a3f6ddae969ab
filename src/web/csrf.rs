//! CSRF protection: a per-session synchronizer token plus Fetch-Metadata.
//!
//! Tokens are HMAC-SHA256 (key derived from the master key) over the
//! session's id hash, or over a random pre-login nonce kept in a cookie for
//! the login form. They need no storage and cannot be forged without the
//! master key, even by someone who can read the database or set cookies.
//! Browsers that send `Sec-Fetch-Site` are additionally refused any
//! state-changing request that does not come from our own origin.

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::{constant_time_eq, DerivedKey};

/// Form field carrying the token.
pub const FORM_FIELD: &str = "csrf_token";
/// Header carrying the token on JSON calls authenticated by the cookie.
pub const HEADER: &str = "x-csrf-token";

fn mac(key: &DerivedKey, purpose: &str, value: &str) -> String {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref()).expect("HMAC takes any key length");
    m.update(purpose.as_bytes());
    m.update(&[0]);
    m.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// The token for pages of a logged-in session.
pub fn session_token(key: &DerivedKey, session_id_hash: &str) -> String {
    mac(key, "session", session_id_hash)
}

/// The token for the login form, bound to the pre-login nonce cookie.
pub fn login_token(key: &DerivedKey, nonce: &str) -> String {
    mac(key, "login", nonce)
}

pub fn matches(expected: &str, given: &str) -> bool {
    constant_time_eq(expected.as_bytes(), given.as_bytes())
}

/// True when the browser says the request comes from another site.
pub fn is_cross_site(req: &HttpRequest) -> bool {
    match req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => false,
    }
}
