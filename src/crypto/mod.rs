//! Key material: the master key, keys derived from it, and randomness.
//! (Envelope encryption of data comes with the encryption service.)

pub mod master_key;
pub mod random;

pub use master_key::{DerivedKey, MasterKey, MasterKeyError};

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256, the stored form of high-entropy tokens (session
/// ids, API key secrets): fast to look up, useless to whoever reads it.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Constant-time equality for secrets (tokens, MACs).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
