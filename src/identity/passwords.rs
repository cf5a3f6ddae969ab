//! Password hashing (argon2id) and the password policy.
//!
//! Hashing is deliberately expensive, so it runs on the blocking pool behind
//! a semaphore sized to the CPU count: a login flood queues here instead of
//! starving the async workers that serve the API.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Passwords too common to accept whatever their length.
const COMMON: &[&str] = &[
    "password1234",
    "password12345",
    "password123456",
    "123456789012",
    "1234567890123",
    "qwertyuiop12",
    "qwerty123456",
    "adminadmin12",
    "administrator",
    "letmein12345",
    "welcome12345",
    "iloveyou1234",
    "changeme1234",
    "passw0rd1234",
    "p@ssw0rd1234",
    "aaaaaaaaaaaa",
    "abc123456789",
    "111111111111",
    "000000000000",
    "trustno12345",
    "correcthorsebatterystaple",
    "qwertyuiopasdfgh",
    "1q2w3e4r5t6y",
    "zaq12wsxcde3",
];

/// Checks a new password against the policy; the message names the rule.
pub fn check_policy(username: &str, password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() {
        return Err("must not be the user name".into());
    }
    if COMMON.contains(&lower.as_str()) {
        return Err("is too common; choose another".into());
    }
    Ok(())
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user does
    /// not exist so that both paths cost the same.
    dummy: Arc<String>,
}

impl Hasher {
    pub fn new() -> Hasher {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let dummy =
            hash_sync(&crate::crypto::random::password()).expect("argon2 parameters are valid");
        Hasher {
            permits: Arc::new(Semaphore::new(cpus)),
            dummy: Arc::new(dummy),
        }
    }

    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String> {
        self.run(move || hash_sync(&password)).await
    }

    /// Verifies `password` against `hash`; with `None`, against the dummy
    /// hash (always false) so that a missing user takes as long as a wrong
    /// password.
    pub async fn verify(&self, password: Zeroizing<String>, hash: Option<String>) -> Result<bool> {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_ref().clone());
        let ok = self.run(move || Ok(verify_sync(&password, &hash))).await?;
        Ok(ok && real)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("password hasher is shutting down".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously (for the CLI and bootstrap, which are not async).
pub fn hash_sync(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&crate::crypto::random::bytes::<16>())
        .map_err(|e| Error::internal(format!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// Verifies against a stored PHC string. The parameters are read from the
/// string, so hashes made with older parameters keep working.
pub fn verify_sync(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_with_owasp_params_and_verifies() {
        let h = hash_sync("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_sync("correct horse battery", &h));
        assert!(!verify_sync("wrong", &h));
        assert!(!verify_sync("x", "not a hash"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("admin", "short").is_err());
        assert!(check_policy("longusername1", "LongUserName1").is_err());
        assert!(check_policy("admin", "Password1234").is_err());
        assert!(check_policy("admin", "a sufficiently long one").is_ok());
    }
}
