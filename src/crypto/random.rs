//! Randomness from the operating system. A failing RNG is unrecoverable for
//! a security product, so it aborts loudly instead of degrading.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Straight from the kernel: for keys, tokens and passwords.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system random number generator failed");
    buf
}

/// A 256-bit random token, base64url without padding (43 characters).
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<32>())
}

/// A random password for generated credentials: 144 bits, 24 characters.
pub fn password() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<18>())
}

/// A 96-bit AES-GCM nonce from the thread's ChaCha12 generator, which is
/// seeded from the operating system and reseeds itself after every 64 KiB
/// of output. As unpredictable as [`bytes`] for a nonce (which needs to be
/// unique, not secret), without a system call per encryption: on this hot
/// path the call cost as much as sealing a kilobyte.
pub fn nonce() -> [u8; 12] {
    unpredictable()
}

/// `N` bytes from the thread's generator (see [`nonce`]): for values that
/// must be unique and unguessable but are not secrets (trace and span ids).
pub fn unpredictable<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut n = [0u8; N];
    rand::rng().fill_bytes(&mut n);
    n
}
