//! TOTP second factors (RFC 6238 as authenticator apps implement it:
//! HMAC-SHA-1, 6 digits, 30-second steps), codes accepted one step either
//! side of now, each step at most once. Computing codes is `totp-rs`'s;
//! which step matched (so that it cannot be used again) and the
//! constant-time comparison are ours.

use totp_rs::{Algorithm, Builder, Secret};

use crate::error::{Error, Result};

pub const DIGITS: u8 = 6;
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of now (clock drift between phone and host).
pub const SKEW_STEPS: u16 = 1;
/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// A new random secret.
pub fn new_secret() -> [u8; SECRET_BYTES] {
    crate::crypto::random::bytes::<SECRET_BYTES>()
}

pub struct Totp(totp_rs::Totp);

impl Totp {
    /// The factor of `secret`, named `account` at `issuer` in apps (neither
    /// may hold a `:`).
    pub fn new(secret: &[u8], issuer: &str, account: &str) -> Result<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::from(secret))
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map(Totp)
            .map_err(|e| Error::internal(format!("TOTP parameters: {e}")))
    }

    /// The `otpauth://totp/...` address an authenticator app scans.
    pub fn uri(&self) -> Result<String> {
        self.0
            .to_url()
            .map_err(|e| Error::internal(format!("TOTP address: {e}")))
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn secret_base32(&self) -> String {
        self.0.secret().to_base32()
    }

    /// The step `code` is valid for at `unix_secs` (one step either side;
    /// compared in constant time by the library), if it is later than
    /// `used_up_to`, the last step accepted before: each code once.
    pub fn verify(&self, code: &str, unix_secs: u64, used_up_to: Option<u64>) -> Option<u64> {
        let code = code.trim();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let step = self.0.check(code, unix_secs)?;
        used_up_to.is_none_or(|u| step > u).then_some(step)
    }

    /// The code at `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.0.generate(unix_secs).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, cut to 6 digits.
    #[test]
    fn rfc_6238_vectors() {
        let t = Totp::new(b"12345678901234567890", "agentry", "admin").unwrap();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(t.code_at(time), code, "at {time}");
        }
    }

    #[test]
    fn codes_pass_within_a_step_once_and_never_again() {
        let t = Totp::new(&new_secret(), "agentry", "admin").unwrap();
        let now = 1_764_691_805;
        let code = t.code_at(now);
        let step = t.verify(&code, now, None).expect("the current code");
        assert_eq!(step, now / STEP_SECONDS);
        // Used: refused again, even within its window.
        assert_eq!(t.verify(&code, now + 5, Some(step)), None);
        // The previous step's code still passes (drift), the one before not.
        let earlier = t.code_at(now - STEP_SECONDS);
        assert!(t.verify(&earlier, now, None).is_some());
        let older = t.code_at(now - 3 * STEP_SECONDS);
        assert_eq!(t.verify(&older, now, None), None);
        for bad in ["", "12345", "1234567", "12a456", " "] {
            assert_eq!(t.verify(bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn the_app_address_names_issuer_account_and_parameters() {
        let t = Totp::new(b"12345678901234567890", "agentry", "admin").unwrap();
        let uri = t.uri().unwrap();
        assert!(uri.starts_with("otpauth://totp/agentry:admin?"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=agentry"), "{uri}");
    }
}
