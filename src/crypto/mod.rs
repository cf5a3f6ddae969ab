//! Key material and primitives: the master key and the appliance keys it
//! protects, sealing, how data keys are bound, hashing, constant-time
//! comparison and randomness. Nothing here records or decides; the
//! encryption service built on these is `crate::encryption`.

pub mod appliance_keys;
pub mod data_keys;
pub mod master_key;
pub mod random;
pub mod sealed;

pub use master_key::{DerivedKey, MasterKey, MasterKeyError};

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256, the stored form of high-entropy tokens (session
/// ids, API key secrets): fast to look up, useless to whoever reads it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Constant-time equality for secrets (tokens, MACs).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
