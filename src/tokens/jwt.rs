//! Access tokens: Ed25519-signed JWTs with `kid`, verified offline against
//! the cached key set, then against revocation and the agent's state.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::cache::{self, TokenCache};
use super::keys::SigningKeys;
use crate::audit::Audit;
use crate::db::{self, Db};
use crate::error::Result;
use crate::identity::principals::{PrincipalCache, PrincipalState};
use crate::identity::PrincipalKind;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// What kind of principal `sub` is. Tokens issued before the claim
    /// existed were all agents'.
    #[serde(default = "agent")]
    pub sub_type: PrincipalKind,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// Space-separated permissions the token carries.
    pub scope: String,
    pub client_id: String,
    /// RFC 8693 delegation: who acts for `sub` (`{"sub": exchanger}`, its
    /// own `act` nested inside for each earlier hop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
}

fn agent() -> PrincipalKind {
    PrincipalKind::Agent
}

impl Claims {
    pub fn scopes(&self) -> Vec<String> {
        self.scope.split_whitespace().map(str::to_string).collect()
    }
}

/// Why a presented token was refused (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    Malformed,
    UnsupportedAlgorithm,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    Revoked,
    AgentDisabled,
    /// Issued before the agent was last disabled or quarantined: void for
    /// good, even once it is enabled again.
    Voided,
}

impl TokenFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFailure::Malformed => "malformed_token",
            TokenFailure::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenFailure::UnknownKey => "unknown_kid",
            TokenFailure::BadSignature => "bad_signature",
            TokenFailure::Expired => "token_expired",
            TokenFailure::NotYetValid => "token_not_yet_valid",
            TokenFailure::WrongIssuer => "wrong_issuer",
            TokenFailure::WrongAudience => "wrong_audience",
            TokenFailure::Revoked => "token_revoked",
            TokenFailure::AgentDisabled => "agent_disabled",
            TokenFailure::Voided => "token_voided",
        }
    }
}

/// Signs `claims` with the active key: a compact JWS (RFC 7515) with
/// header `{"alg":"EdDSA","typ":"at+jwt","kid":...}` (RFC 9068 type).
pub fn sign(keys: &SigningKeys, claims: &Claims) -> Result<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::Signer;
    let (kid, key) = keys.active()?;
    let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let payload = serde_json::to_vec(claims).map_err(crate::error::Error::internal)?;
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(token)
}

/// Checks signature, algorithm, kid, time window, issuer and audience
/// without touching the database.
pub fn verify_offline(
    keys: &SigningKeys,
    token: &str,
    issuer: &str,
    audience: &str,
) -> std::result::Result<Claims, TokenFailure> {
    if token.len() > 8192 {
        return Err(TokenFailure::Malformed);
    }
    let header = decode_header(token).map_err(|e| match e.kind() {
        // `alg: none` and other unknown algorithms fail to parse.
        ErrorKind::Json(_) | ErrorKind::InvalidAlgorithmName => TokenFailure::UnsupportedAlgorithm,
        _ => TokenFailure::Malformed,
    })?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenFailure::UnsupportedAlgorithm);
    }
    let kid = header.kid.ok_or(TokenFailure::UnknownKey)?;
    let key = keys.decoding(&kid).ok_or(TokenFailure::UnknownKey)?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    decode::<Claims>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenFailure::Expired,
            ErrorKind::ImmatureSignature => TokenFailure::NotYetValid,
            ErrorKind::InvalidAudience => TokenFailure::WrongAudience,
            ErrorKind::InvalidIssuer => TokenFailure::WrongIssuer,
            ErrorKind::InvalidSignature => TokenFailure::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenFailure::UnsupportedAlgorithm,
            _ => TokenFailure::Malformed,
        })
}

/// Full check: offline checks (or a cached earlier verification of the
/// same token), then revocation and the agent's state, all from memory in
/// the common case.
pub async fn verify(
    ctx: &VerifyContext<'_>,
    token: &str,
    audience: &str,
) -> Result<std::result::Result<(Arc<Claims>, Arc<PrincipalState>), TokenFailure>> {
    let key = cache::cache_key(audience, token);
    let now = now_secs();
    let claims = match ctx.cache.verified(&key) {
        Some(c) => {
            let leeway = LEEWAY_SECS as i64;
            if c.exp + leeway < now {
                return Ok(Err(TokenFailure::Expired));
            }
            if c.nbf - leeway > now {
                return Ok(Err(TokenFailure::NotYetValid));
            }
            c
        }
        None => match verify_offline(ctx.keys, token, ctx.issuer, audience) {
            Ok(c) => {
                let c = Arc::new(c);
                ctx.cache.remember(key, c.clone());
                c
            }
            Err(f) => return Ok(Err(f)),
        },
    };
    if ctx.cache.is_revoked(ctx.db, ctx.audit, &claims).await? {
        return Ok(Err(TokenFailure::Revoked));
    }
    let state = ctx
        .principals
        .get(ctx.db, ctx.audit, claims.sub_type, &claims.sub)
        .await?;
    match state {
        None => Ok(Err(TokenFailure::AgentDisabled)),
        Some(s) if !s.enabled => Ok(Err(TokenFailure::AgentDisabled)),
        Some(s)
            // `iat` is in whole seconds: a token issued in the second of
            // the cut-off is void too (it may have been issued before it).
            if s.tokens_not_before
                .is_some_and(|cutoff| claims.iat * 1000 <= cutoff) =>
        {
            Ok(Err(TokenFailure::Voided))
        }
        Some(s) => Ok(Ok((claims, s))),
    }
}

/// What verification reads.
pub struct VerifyContext<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub keys: &'a SigningKeys,
    pub cache: &'a TokenCache,
    pub principals: &'a PrincipalCache,
    pub issuer: &'a str,
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    db::now_ms() / 1000
}
