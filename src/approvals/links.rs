//! The link a notification carries to a request's page (SPEC §18): signed
//! by the appliance (HMAC-SHA256 under the key the form tokens use, with
//! its own purpose), so a link names only a request agentry told of. The
//! link changes nothing by being opened: the page it leads to decides by
//! a form (a signed-in approver, the session's CSRF token), once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::{constant_time_eq, DerivedKey};

const PURPOSE: &[u8] = b"approval-link";

/// The signature of request `id`'s link.
pub fn signature(key: &DerivedKey, id: &str) -> String {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref()).expect("HMAC takes any key length");
    m.update(PURPOSE);
    m.update(&[0]);
    m.update(id.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Whether `given` is request `id`'s link signature.
pub fn verify(key: &DerivedKey, id: &str, given: &str) -> bool {
    constant_time_eq(signature(key, id).as_bytes(), given.as_bytes())
}

/// The page of request `id` as a notification links to it.
pub fn review_url(key: &DerivedKey, external_url: &str, id: &str) -> String {
    format!(
        "{}/approvals/{id}?link={}",
        external_url.trim_end_matches('/'),
        signature(key, id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_names_one_request_under_one_key() {
        let key = DerivedKey::new([7u8; 32]);
        let other = DerivedKey::new([8u8; 32]);
        let sig = signature(&key, "a1");
        assert!(verify(&key, "a1", &sig));
        assert!(!verify(&key, "a2", &sig), "another request");
        assert!(!verify(&other, "a1", &sig), "another appliance");
        assert!(!verify(&key, "a1", ""));
        assert_eq!(
            review_url(&key, "https://agentry.example/", "a1"),
            format!("https://agentry.example/approvals/a1?link={sig}")
        );
    }
}
