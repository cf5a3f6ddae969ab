//! Envelope encryption: key rings per classification.
//!
//! Data is encrypted with AES-256-GCM under the newest data key of its
//! classification. The package carries the key id and version; the
//! associated data binds the key id, the version and the optional caller
//! `context`, so a package cannot be decrypted under another key or
//! context. Data keys are stored wrapped under a key derived from the
//! master key (AAD: key id and version) and held unwrapped only in memory,
//! in `Zeroizing` buffers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{hex, random, DerivedKey};
use crate::audit::{Audit, Context, Outcome};
use crate::cache::GenerationCache;
use crate::db::{self, keyrings as repo, Db};
use crate::error::{Error, Result};

pub const WRAP_KEY_LABEL: &str = "data-key-wrap";
pub const ALGORITHM: &str = "AES-256-GCM";
/// The classifications created at first start; `restricted` needs
/// `crypto:decrypt:restricted` to decrypt.
pub const DEFAULT_RINGS: &[(&str, bool)] = &[
    ("public", false),
    ("internal", false),
    ("confidential", false),
    ("restricted", true),
];

/// What encrypt returns and decrypt takes (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// base64 of nonce (12 bytes) || ciphertext || tag (16 bytes).
    pub encrypted_data: String,
    pub encryption_algorithm: String,
    pub key_id: String,
    pub key_version: i64,
    pub classification: String,
    /// RFC 3339 UTC time of encryption.
    pub timestamp: String,
}

struct DataKey {
    classification: String,
    version: i64,
    key: Zeroizing<[u8; 32]>,
}

/// One classification's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RingView {
    pub classification: String,
    pub min_decryption_version: i64,
    /// Decryption needs `crypto:decrypt:<classification>`.
    pub requires_specific_permission: bool,
    pub versions: Vec<KeyVersionView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyVersionView {
    pub key_id: String,
    pub version: i64,
    pub created_at: String,
}

struct Rings {
    keys: HashMap<String, Arc<DataKey>>,
    newest: HashMap<String, String>,
    rings: HashMap<String, repo::RingRow>,
    views: Vec<RingView>,
}

#[derive(Clone)]
pub struct KeyRing {
    wrap: Arc<DerivedKey>,
    state: GenerationCache<Rings>,
}

fn rejected(code: &'static str, message: impl Into<String>) -> Error {
    Error::Rejected {
        code,
        message: message.into(),
    }
}

fn aad(key_id: &str, version: i64, context: Option<&str>) -> Vec<u8> {
    let mut a = format!("agentry-envelope-v1\0{key_id}\0{version}\0").into_bytes();
    match context {
        Some(c) => {
            a.push(1);
            a.extend_from_slice(c.as_bytes());
        }
        None => a.push(0),
    }
    a
}

impl KeyRing {
    pub fn new(wrap: DerivedKey) -> KeyRing {
        KeyRing {
            wrap: Arc::new(wrap),
            state: GenerationCache::new(Duration::from_secs(5), 1),
        }
    }

    fn cipher(key: &[u8; 32]) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(key).expect("32-byte key")
    }

    /// Creates the default rings (version 1 each) when missing. Audited.
    pub async fn ensure_defaults(&self, db: &Db, audit: &Audit) -> Result<()> {
        let rings = db.read(repo::rings).await?;
        for (name, specific) in DEFAULT_RINGS {
            if !rings.iter().any(|r| r.classification == *name) {
                self.rotate(audit, &Context::system("agentry"), name, Some(*specific))
                    .await?;
            }
        }
        Ok(())
    }

    async fn state(&self, db: &Db, audit: &Audit) -> Result<Arc<Rings>> {
        let generation = audit.generation();
        if let Some(Some(s)) = self.state.fresh(generation, "rings") {
            return Ok(s);
        }
        let (rings, keys) = db.read(|c| Ok((repo::rings(c)?, repo::keys(c)?))).await?;
        let wrap = Self::cipher(&self.wrap);
        let mut out = Rings {
            keys: HashMap::new(),
            newest: HashMap::new(),
            rings: HashMap::new(),
            views: Vec::new(),
        };
        for k in &keys {
            let raw = STANDARD
                .decode(&k.wrapped)
                .map_err(|_| Error::internal(format!("data key {} is malformed", k.key_id)))?;
            if raw.len() < 12 {
                return Err(Error::internal(format!(
                    "data key {} is malformed",
                    k.key_id
                )));
            }
            let (nonce, ct) = raw.split_at(12);
            let plain = Zeroizing::new(
                wrap.decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: &aad(&k.key_id, k.version, None),
                    },
                )
                .map_err(|_| {
                    Error::internal(format!(
                        "data key {} cannot be unwrapped: wrong master key?",
                        k.key_id
                    ))
                })?,
            );
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(&plain[..32.min(plain.len())]);
            let newest = out
                .newest
                .entry(k.classification.clone())
                .or_insert_with(|| k.key_id.clone());
            if out
                .keys
                .get(newest.as_str())
                .is_some_and(|n| n.version < k.version)
            {
                *newest = k.key_id.clone();
            }
            out.keys.insert(
                k.key_id.clone(),
                Arc::new(DataKey {
                    classification: k.classification.clone(),
                    version: k.version,
                    key,
                }),
            );
        }
        for r in rings {
            out.views.push(RingView {
                classification: r.classification.clone(),
                min_decryption_version: r.min_decryption_version,
                requires_specific_permission: r.requires_specific,
                versions: keys
                    .iter()
                    .filter(|k| k.classification == r.classification)
                    .map(|k| KeyVersionView {
                        key_id: k.key_id.clone(),
                        version: k.version,
                        created_at: crate::timefmt::rfc3339(k.created_at),
                    })
                    .collect(),
            });
            out.rings.insert(r.classification.clone(), r);
        }
        let out = Arc::new(out);
        self.state
            .put(generation, "rings".into(), Some(out.clone()));
        Ok(out)
    }

    pub async fn rings(&self, db: &Db, audit: &Audit) -> Result<Vec<RingView>> {
        Ok(self.state(db, audit).await?.views.clone())
    }

    /// Whether decrypting this classification needs the specific permission.
    pub async fn requires_specific(
        &self,
        db: &Db,
        audit: &Audit,
        classification: &str,
    ) -> Result<bool> {
        Ok(self
            .state(db, audit)
            .await?
            .rings
            .get(classification)
            .is_some_and(|r| r.requires_specific))
    }

    /// Adds a new version to a classification (creating the ring when
    /// `create` says with which permission rule). Audited.
    pub async fn rotate(
        &self,
        audit: &Audit,
        ctx: &Context,
        classification: &str,
        create: Option<bool>,
    ) -> Result<i64> {
        let key = Zeroizing::new(random::bytes::<32>());
        let key_id = format!("dk_{}", hex(&random::bytes::<8>()));
        let wrap = Self::cipher(&self.wrap);
        let name = classification.to_string();
        let event = ctx
            .event("crypto.key.rotate", Outcome::Success)
            .target("key_ring", &name)
            .detail("key_id", &key_id);
        audit
            .apply(event, move |c| {
                let now = db::now_ms();
                match create {
                    Some(specific) => {
                        repo::insert_ring(c, &name, specific, now)?;
                    }
                    None => {
                        if !repo::rings(c)?.iter().any(|r| r.classification == name) {
                            return Err(Error::NotFound(format!("classification {name}")));
                        }
                    }
                }
                let version = repo::newest_version(c, &name)? + 1;
                let nonce = random::bytes::<12>();
                let ct = wrap
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: key.as_ref(),
                            aad: &aad(&key_id, version, None),
                        },
                    )
                    .map_err(|_| Error::internal("cannot wrap the data key"))?;
                let mut wrapped = nonce.to_vec();
                wrapped.extend_from_slice(&ct);
                repo::insert_key(
                    c,
                    &repo::DataKeyRow {
                        key_id: key_id.clone(),
                        classification: name.clone(),
                        version,
                        wrapped: STANDARD.encode(wrapped),
                        created_at: now,
                    },
                )?;
                Ok(version)
            })
            .await
    }

    pub async fn set_min_version(
        &self,
        db: &Db,
        audit: &Audit,
        ctx: &Context,
        classification: &str,
        min: i64,
    ) -> Result<()> {
        let state = self.state(db, audit).await?;
        let newest = state
            .newest
            .get(classification)
            .and_then(|k| state.keys.get(k))
            .map(|d| d.version);
        let event = ctx
            .event("crypto.key.min_version", Outcome::Success)
            .target("key_ring", classification)
            .detail("min_decryption_version", min);
        match newest {
            None => {
                return Err(audit
                    .fail(
                        event,
                        Error::NotFound(format!("classification {classification}")),
                    )
                    .await)
            }
            Some(n) if min < 1 || min > n => {
                return Err(audit
                    .fail(
                        event,
                        Error::field(
                            "min_decryption_version",
                            format!("must be between 1 and the newest version ({n})"),
                        ),
                    )
                    .await)
            }
            _ => {}
        }
        let name = classification.to_string();
        audit
            .apply(event, move |c| {
                repo::set_min_version(c, &name, min).map(|_| ())
            })
            .await
    }

    /// Encrypts a JSON value under the newest key of `classification`.
    pub async fn encrypt(
        &self,
        db: &Db,
        audit: &Audit,
        classification: &str,
        data: &serde_json::Value,
        context: Option<&str>,
    ) -> Result<Package> {
        let state = self.state(db, audit).await?;
        let key_id = state.newest.get(classification).ok_or_else(|| {
            rejected(
                "unknown_classification",
                format!("no key ring for classification {classification:?}"),
            )
        })?;
        let key = &state.keys[key_id];
        let plaintext = Zeroizing::new(serde_json::to_vec(data).map_err(Error::internal)?);
        let nonce = random::bytes::<12>();
        let ct = Self::cipher(&key.key)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad(key_id, key.version, context),
                },
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(Package {
            encrypted_data: STANDARD.encode(out),
            encryption_algorithm: ALGORITHM.into(),
            key_id: key_id.clone(),
            key_version: key.version,
            classification: classification.to_string(),
            timestamp: crate::timefmt::rfc3339(db::now_ms()),
        })
    }

    /// Decrypts a package; every refusal has its own code and returns no data.
    pub async fn decrypt(
        &self,
        db: &Db,
        audit: &Audit,
        p: &Package,
        context: Option<&str>,
    ) -> Result<serde_json::Value> {
        if p.encryption_algorithm != ALGORITHM {
            return Err(rejected(
                "unsupported_algorithm",
                format!("encryption_algorithm must be {ALGORITHM}"),
            ));
        }
        let raw = STANDARD
            .decode(&p.encrypted_data)
            .map_err(|_| rejected("invalid_package", "encrypted_data is not base64"))?;
        if raw.len() < 12 + 16 {
            return Err(rejected(
                "invalid_package",
                "encrypted_data is too short to hold a nonce and a tag",
            ));
        }
        let state = self.state(db, audit).await?;
        let key = state
            .keys
            .get(&p.key_id)
            .ok_or_else(|| rejected("unknown_key", format!("no data key {:?}", p.key_id)))?;
        if key.classification != p.classification || key.version != p.key_version {
            return Err(rejected(
                "key_mismatch",
                "key_id does not match the package's classification and key_version",
            ));
        }
        let min = state
            .rings
            .get(&key.classification)
            .map(|r| r.min_decryption_version)
            .unwrap_or(1);
        if key.version < min {
            return Err(rejected(
                "key_version_retired",
                format!(
                    "version {} of {} is below the minimum decryption version {min}",
                    key.version, key.classification
                ),
            ));
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = Zeroizing::new(
            Self::cipher(&key.key)
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: &aad(&p.key_id, key.version, context),
                    },
                )
                .map_err(|_| {
                    rejected(
                        "decryption_failed",
                        "the ciphertext was altered or the context differs",
                    )
                })?,
        );
        serde_json::from_slice(&plain)
            .map_err(|_| rejected("decryption_failed", "the decrypted payload is not JSON"))
    }

    /// The raw key of a key id (for tests and `rotate-master`; never served).
    pub async fn raw_key(
        &self,
        db: &Db,
        audit: &Audit,
        key_id: &str,
    ) -> Result<Option<Zeroizing<[u8; 32]>>> {
        Ok(self
            .state(db, audit)
            .await?
            .keys
            .get(key_id)
            .map(|k| Zeroizing::new(*k.key)))
    }
}
