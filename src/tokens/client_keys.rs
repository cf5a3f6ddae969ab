//! `private_key_jwt` client authentication (RFC 7523 §2.2, OAuth 2.0
//! client assertions): an agent registers public keys (Ed25519, P-256 or
//! RSA) and authenticates at the token endpoint with a short-lived JWT it
//! signs, instead of a shared secret.
//!
//! An assertion must name the agent as `iss` and `sub`, be addressed to the
//! token endpoint or the issuer, expire within five minutes, and carry a
//! `jti` that was never used before.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{Audit, Context, Outcome};
use crate::db::{self, client_keys as repo, Db};
use crate::error::{Error, FieldErrors, Result};

/// RFC 7523's `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Signature algorithms accepted in assertions.
pub const ALGORITHMS: &[&str] = &["EdDSA", "ES256", "RS256", "PS256"];
pub const MAX_KEYS: usize = 10;
/// Longest assertion lifetime accepted, in seconds.
pub const MAX_LIFETIME_SECS: i64 = 300;
const LEEWAY_SECS: i64 = 30;
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A JWK Set as given and shown: public keys only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "agent-key-1", "use": "sig"}]}))]
pub struct JwkSet {
    /// Ed25519 (`OKP`), P-256 (`EC`) or RSA (2048 bits or more) public
    /// keys; at most 10. Private members (`d`, `p`, `q`, ...) are refused.
    #[schema(value_type = Vec<Object>, max_items = 10)]
    pub keys: Vec<serde_json::Value>,
}

/// Members that would make a JWK a private (or symmetric) key.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The keys of a set, each checked; errors name the key by position.
pub fn check(set: &JwkSet) -> std::result::Result<Vec<Jwk>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
        errors.insert("keys".into(), format!("give 1 to {MAX_KEYS} keys"));
        return Err(errors);
    }
    let mut out = Vec::new();
    for (i, v) in set.keys.iter().enumerate() {
        let field = format!("keys[{i}]");
        let Some(obj) = v.as_object() else {
            errors.insert(field, "must be a JWK object".into());
            continue;
        };
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            errors.insert(
                field,
                format!("holds private key material ({m}); register the public key only"),
            );
            continue;
        }
        let jwk: Jwk = match serde_json::from_value(v.clone()) {
            Ok(j) => j,
            Err(e) => {
                errors.insert(field, format!("is not a valid JWK: {e}"));
                continue;
            }
        };
        let ok = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) => p.curve == EllipticCurve::Ed25519,
            AlgorithmParameters::EllipticCurve(p) => p.curve == EllipticCurve::P256,
            AlgorithmParameters::RSA(p) => {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.n.as_bytes())
                    .is_ok_and(|n| n.len() >= MIN_RSA_MODULUS_BYTES)
            }
            AlgorithmParameters::OctetKey(_) => false,
        };
        if !ok {
            errors.insert(
                field,
                "must be an Ed25519 (OKP), P-256 (EC) or RSA key of 2048 bits or more".into(),
            );
            continue;
        }
        if DecodingKey::from_jwk(&jwk).is_err() {
            errors.insert(field, "cannot be used to verify signatures".into());
            continue;
        }
        out.push(jwk);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// An agent's registered keys.
pub async fn get(db: &Db, agent_id: &str) -> Result<JwkSet> {
    let id = agent_id.to_string();
    let stored = db.read(move |c| repo::get(c, &id)).await?;
    match stored {
        None => Ok(JwkSet { keys: vec![] }),
        Some((json, _)) => serde_json::from_str(&json).map_err(Error::internal),
    }
}

/// Replaces an agent's keys (audited).
pub async fn set(audit: &Audit, ctx: &Context, agent_id: &str, set: JwkSet) -> Result<JwkSet> {
    let event = ctx
        .event("agent.jwks_set", Outcome::Success)
        .target("agent", agent_id)
        .detail("keys", set.keys.len().to_string());
    if let Err(errors) = check(&set) {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let json = serde_json::to_string(&set).map_err(Error::internal)?;
    let id = agent_id.to_string();
    audit
        .apply(event, move |c| {
            if db::agents::by_id(c, &id)?.is_none() {
                return Err(Error::NotFound(format!("agent {id}")));
            }
            repo::set(c, &id, &json, db::now_ms())
        })
        .await?;
    Ok(set)
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: Option<String>,
}

/// Why an assertion was refused (for the audit trail).
pub type Refusal = &'static str;

/// The agent an assertion authenticates, or why it does not. `client_id`
/// is the form's, when sent; `audiences` are the token endpoint and the
/// issuer.
pub async fn verify(
    db: &Db,
    assertion: &str,
    client_id: Option<&str>,
    audiences: &[&str],
) -> Result<std::result::Result<String, Refusal>> {
    if assertion.len() > 16 * 1024 {
        return Ok(Err("assertion_malformed"));
    }
    let Ok(header) = decode_header(assertion) else {
        return Ok(Err("assertion_malformed"));
    };
    let alg = header.alg;
    if !matches!(
        alg,
        Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256
    ) {
        return Ok(Err("assertion_algorithm"));
    }
    // The issuer read unverified only picks the keys to verify with.
    let Ok(unverified) = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
    else {
        return Ok(Err("assertion_malformed"));
    };
    let agent = unverified.claims.iss.clone();
    if client_id.is_some_and(|c| c != agent) {
        return Ok(Err("assertion_of_another_client"));
    }
    let keys = get(db, &agent).await?;
    let keys: Vec<Jwk> = keys
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value(k).ok())
        .filter(|k: &Jwk| match (&header.kid, &k.common.key_id) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .collect();
    if keys.is_empty() {
        return Ok(Err("assertion_no_key"));
    }
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS as u64;
    v.set_audience(audiences);
    v.set_issuer(&[&agent]);
    v.sub = Some(agent.clone());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = keys.iter().find_map(|k| {
        let key = DecodingKey::from_jwk(k).ok()?;
        decode::<AssertionClaims>(assertion, &key, &v).ok()
    });
    let Some(claims) = claims.map(|c| c.claims) else {
        return Ok(Err("assertion_invalid"));
    };
    let now = crate::tokens::jwt::now_secs();
    if claims.exp > now + MAX_LIFETIME_SECS + LEEWAY_SECS {
        return Ok(Err("assertion_lifetime_too_long"));
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256) else {
        return Ok(Err("assertion_without_jti"));
    };
    let (sub, exp_ms, now_ms) = (
        claims.sub.clone(),
        (claims.exp + LEEWAY_SECS) * 1000,
        db::now_ms(),
    );
    let fresh = db
        .write(move |c| repo::use_jti(c, &jti, &sub, exp_ms, now_ms))
        .await?;
    if !fresh {
        return Ok(Err("assertion_replayed"));
    }
    Ok(Ok(claims.sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(keys: serde_json::Value) -> JwkSet {
        JwkSet {
            keys: keys.as_array().unwrap().clone(),
        }
    }

    #[test]
    fn public_keys_of_the_supported_kinds_only() {
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(check(&set(json!([ed]))).is_ok());
        let private = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"});
        let e = check(&set(json!([private]))).unwrap_err();
        assert!(e["keys[0]"].contains("private"), "{e:?}");
        let hmac = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(check(&set(json!([hmac]))).is_err());
        let small_rsa = json!({"kty": "RSA", "n": "sXch", "e": "AQAB"});
        assert!(check(&set(json!([small_rsa]))).is_err());
        assert!(check(&set(json!([]))).is_err());
        assert!(check(&set(json!(["not an object"]))).is_err());
    }
}
