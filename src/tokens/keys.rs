//! Ed25519 signing keys: creation, rotation, the JWKS, and an in-memory
//! cache so verifying a token never touches the database.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit::{Audit, Context, Outcome};
use crate::crypto::{hex, random, sealed, DerivedKey};
use crate::db::{self, tokens as repo, Db};
use crate::error::{Error, Result};

/// HKDF label of the key that wraps signing keys at rest.
pub use crate::crypto::appliance_keys::SIGNING_KEY_WRAP as WRAP_KEY_LABEL;

/// One key as the verifier and the JWKS need it.
#[derive(Clone)]
pub struct KeyEntry {
    pub kid: String,
    /// base64url public key (JWK `x`).
    pub x: String,
    pub decoding: DecodingKey,
    /// Present for the active key only (the expanded key, so signing does
    /// not re-derive it per token; wiped on drop).
    pub signing: Option<Arc<ed25519_dalek::SigningKey>>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub x: String,
    pub kid: String,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Clone)]
pub struct SigningKeys {
    wrap: Arc<DerivedKey>,
    cache: Arc<RwLock<Vec<KeyEntry>>>,
}

impl SigningKeys {
    pub fn new(wrap: DerivedKey) -> SigningKeys {
        SigningKeys {
            wrap: Arc::new(wrap),
            cache: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// Loads the published keys, creating the first one when there is none.
    pub async fn load(&self, db: &Db, audit: &Audit) -> Result<()> {
        if !self.reload(db).await? {
            self.rotate(db, audit, &Context::system("agentry"), 0)
                .await?;
        }
        Ok(())
    }

    /// Re-reads the published keys (another process, such as the CLI, may
    /// have rotated). Returns whether an active key exists.
    pub async fn reload(&self, db: &Db) -> Result<bool> {
        let now = db::now_ms();
        let rows = db.read(move |c| repo::published_keys(c, now)).await?;
        let has_active = rows.iter().any(|r| r.retired_at.is_none());
        if has_active {
            self.replace_cache(rows)?;
        }
        Ok(has_active)
    }

    fn replace_cache(&self, rows: Vec<repo::SigningKeyRow>) -> Result<()> {
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            entries.push(self.entry(&r)?);
        }
        *self
            .cache
            .write()
            .map_err(|_| Error::internal("signing key cache poisoned"))? = entries;
        Ok(())
    }

    fn entry(&self, r: &repo::SigningKeyRow) -> Result<KeyEntry> {
        let public = URL_SAFE_NO_PAD.decode(&r.public_key).map_err(|_| {
            Error::internal(format!("signing key {} has a malformed public key", r.kid))
        })?;
        let signing = if r.retired_at.is_none() {
            let seed = self.unwrap_seed(&r.kid, &r.private_key)?;
            Some(Arc::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
        } else {
            None
        };
        Ok(KeyEntry {
            kid: r.kid.clone(),
            x: r.public_key.clone(),
            decoding: DecodingKey::from_ed_der(&public),
            signing,
            created_at: r.created_at,
            retired_at: r.retired_at,
            publish_until: r.publish_until,
        })
    }

    fn unwrap_seed(&self, kid: &str, wrapped: &str) -> Result<Zeroizing<[u8; 32]>> {
        sealed::open_key(&self.wrap, kid.as_bytes(), wrapped).ok_or_else(|| {
            Error::internal(format!(
                "signing key {kid} cannot be unwrapped (wrong master key?)"
            ))
        })
    }

    /// Creates a new active key and retires the previous one, which stays
    /// published for `max_token_ms` more (until its last token expires).
    /// Audited.
    pub async fn rotate(
        &self,
        db: &Db,
        audit: &Audit,
        ctx: &Context,
        max_token_ms: i64,
    ) -> Result<String> {
        let seed = Zeroizing::new(random::bytes::<32>());
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes();
        let kid = hex(&random::bytes::<8>());
        let now = db::now_ms();
        let row = repo::SigningKeyRow {
            kid: kid.clone(),
            alg: "EdDSA".into(),
            public_key: URL_SAFE_NO_PAD.encode(public),
            private_key: sealed::seal(&self.wrap, kid.as_bytes(), seed.as_ref()),
            created_at: now,
            retired_at: None,
            publish_until: None,
        };
        let event = ctx
            .event("signing_key.rotate", Outcome::Success)
            .target("signing_key", &kid);
        audit
            .apply(event, move |c| {
                // A few seconds of clock leeway on top of the lifetime.
                repo::retire_active(c, now, now + max_token_ms + 60_000)?;
                repo::insert_key(c, &row)
            })
            .await?;
        let rows = db.read(move |c| repo::published_keys(c, now)).await?;
        self.replace_cache(rows)?;
        Ok(kid)
    }

    /// The active key (kid and signing key).
    pub fn active(&self) -> Result<(String, Arc<ed25519_dalek::SigningKey>)> {
        let cache = self
            .cache
            .read()
            .map_err(|_| Error::internal("signing key cache poisoned"))?;
        cache
            .iter()
            .find_map(|e| e.signing.clone().map(|k| (e.kid.clone(), k)))
            .ok_or_else(|| Error::Unavailable("no active signing key".into()))
    }

    /// The verification key for `kid`, if it is still published.
    pub fn decoding(&self, kid: &str) -> Option<DecodingKey> {
        let now = db::now_ms();
        let cache = self.cache.read().ok()?;
        cache
            .iter()
            .find(|e| e.kid == kid && e.publish_until.is_none_or(|t| t > now))
            .map(|e| e.decoding.clone())
    }

    /// Every published key, newest first.
    pub fn entries(&self) -> Vec<KeyEntry> {
        let now = db::now_ms();
        self.cache
            .read()
            .map(|c| {
                c.iter()
                    .filter(|e| e.publish_until.is_none_or(|t| t > now))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// RFC 7517 key set of the published keys.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .entries()
                .into_iter()
                .map(|e| Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x: e.x,
                    kid: e.kid,
                    alg: "EdDSA",
                    use_: "sig",
                })
                .collect(),
        }
    }
}
