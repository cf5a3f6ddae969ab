//! AES-256-GCM sealing of small secrets under a 256-bit key: the one
//! format every wrapped key at rest uses (data keys, signing keys, the
//! appliance's own keys) and the layout of encryption packages.
//!
//! Layout: `nonce (12 bytes) || ciphertext || tag (16 bytes)`, nonces random
//! (96 bits). The associated data names what is sealed (a key id, a
//! version), so a sealed value cannot be moved to another row.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// A key ready for use: its AES key schedule, wiped on drop. Building it
/// costs about as much as sealing a kilobyte, so hot paths keep one.
pub fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Encrypts `plaintext`; returns `nonce || ciphertext || tag`.
pub fn seal_raw(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with(&cipher(key), aad, plaintext)
}

/// [`seal_raw`] with a prepared cipher.
pub fn seal_with(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = super::random::nonce();
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // aes-gcm fails only for inputs over 64 GiB, far above any body limit.
        .expect("AES-GCM encryption of a bounded input");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts `nonce || ciphertext || tag`; `None` when it is too short, was
/// altered, or was sealed under another key or associated data.
pub fn open_raw(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    open_with(&cipher(key), aad, sealed)
}

/// [`open_raw`] with a prepared cipher.
pub fn open_with(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// [`seal_raw`], base64 (standard alphabet) for a TEXT column.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> String {
    STANDARD.encode(seal_raw(key, aad, plaintext))
}

/// Opens what [`seal`] made.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
    open_raw(key, aad, &STANDARD.decode(sealed).ok()?)
}

/// Opens a sealed 256-bit key.
pub fn open_key(key: &[u8; 32], aad: &[u8], sealed: &str) -> Option<Zeroizing<[u8; 32]>> {
    let plain = open(key, aad, sealed)?;
    let mut out = Zeroizing::new([0u8; 32]);
    if plain.len() != out.len() {
        return None;
    }
    out.copy_from_slice(&plain);
    Some(out)
}

/// Re-seals a value under another key (master key rotation).
pub fn reseal(from: &[u8; 32], to: &[u8; 32], aad: &[u8], sealed: &str) -> Option<String> {
    let plain = open(from, aad, sealed)?;
    Some(seal(to, aad, &plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let k = [1u8; 32];
        let s = seal(&k, b"id-1", b"secret");
        assert_eq!(open(&k, b"id-1", &s).unwrap().as_slice(), b"secret");
        assert!(open(&k, b"id-2", &s).is_none(), "other associated data");
        assert!(open(&[2u8; 32], b"id-1", &s).is_none(), "other key");
        assert!(open(&k, b"id-1", "not base64!").is_none());
        assert!(open_raw(&k, b"id-1", &[0u8; 27]).is_none(), "too short");
        let mut raw = STANDARD.decode(&s).unwrap();
        raw[NONCE_LEN] ^= 1;
        assert!(open_raw(&k, b"id-1", &raw).is_none(), "flipped bit");
        assert!(open_key(&k, b"id-1", &s).is_none(), "not 32 bytes");
        let moved = reseal(&k, &[3u8; 32], b"id-1", &s).unwrap();
        assert_eq!(
            open(&[3u8; 32], b"id-1", &moved).unwrap().as_slice(),
            b"secret"
        );
    }
}
