//! Recovery codes (SPEC §16): ten one-time codes shown once when a user's
//! first second factor is confirmed (or when they ask for new ones), kept
//! as SHA-256 hashes, each accepted once in place of a second factor.

use zeroize::Zeroizing;

use crate::audit::{Audit, Context, Outcome};
use crate::crypto::{random, sha256_hex};
use crate::db::{self, recovery_codes as repo, Db};
use crate::error::Result;

/// Codes issued at a time.
pub const COUNT: usize = 10;
/// Lowercase base32 without the letters people confuse (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// 12 characters of a 31-letter alphabet: 59 bits each.
const LENGTH: usize = 12;

/// A code as shown: `xxxx-xxxx-xxxx`.
fn new_code() -> String {
    let bytes: [u8; LENGTH] = random::bytes();
    // 256 is not a multiple of 31; the bias (≤ 1/8 on some letters) costs
    // under a bit of the code's 59.
    let letters: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    letters
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What a typed code is compared as: lowercase, without spaces or dashes.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn hash(code: &str) -> String {
    sha256_hex(normalise(code).as_bytes())
}

/// Whether `input` looks like a recovery code rather than a TOTP code.
pub fn looks_like_code(input: &str) -> bool {
    normalise(input).len() == LENGTH
}

/// Issues a fresh set for the user, replacing any earlier one; returns the
/// codes to show once.
pub async fn issue(audit: &Audit, ctx: &Context, user_id: &str) -> Result<Vec<Zeroizing<String>>> {
    let codes: Vec<Zeroizing<String>> = (0..COUNT).map(|_| Zeroizing::new(new_code())).collect();
    let hashes: Vec<String> = codes.iter().map(|c| hash(c)).collect();
    let uid = user_id.to_string();
    let event = ctx
        .event("auth.recovery_codes", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), user_id)
        .detail("count", COUNT);
    audit
        .apply(event, move |c| {
            repo::replace(c, &uid, &hashes, db::now_ms())
        })
        .await?;
    Ok(codes)
}

/// Uses one of the user's codes at sign-in; audited either way. The
/// caller counts a `false` toward lockout.
pub async fn redeem(audit: &Audit, ctx: &Context, user_id: &str, input: &str) -> Result<bool> {
    let h = hash(input);
    let uid = user_id.to_string();
    let event = |outcome| {
        ctx.event("auth.second_factor", outcome)
            .target(crate::identity::PrincipalKind::User.as_str(), user_id)
            .detail("method", "recovery_code")
    };
    let used = audit
        .apply(event(Outcome::Success), move |c| {
            if repo::use_code(c, &uid, &h, db::now_ms())? {
                Ok(())
            } else {
                Err(crate::error::Error::Unauthenticated)
            }
        })
        .await;
    match used {
        Ok(()) => Ok(true),
        Err(crate::error::Error::Unauthenticated) => {
            audit
                .record(event(Outcome::Failure).reason("wrong or used recovery code"))
                .await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// How many unused codes the user has left.
pub async fn left(db: &Db, user_id: &str) -> Result<i64> {
    let uid = user_id.to_string();
    db.read(move |c| repo::unused(c, &uid)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_well_and_compare_loosely() {
        let c = new_code();
        assert_eq!(c.len(), 14, "{c}");
        assert_eq!(c.matches('-').count(), 2);
        assert!(looks_like_code(&c));
        assert!(!looks_like_code("123456"));
        assert_eq!(hash(&c), hash(&c.to_uppercase().replace('-', " ")));
        assert_ne!(new_code(), c);
    }
}
