//! Randomness from the operating system. A failing RNG is unrecoverable for
//! a security product, so it aborts loudly instead of degrading.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

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
