//! Envelope encryption of JSON values (README, "Encryption service").
//!
//! A value is serialised to JSON and sealed with AES-256-GCM under the
//! newest data key of its classification. The associated data binds the
//! key id, the version and the optional caller `context`, so a package
//! cannot be opened under another key or context. The package carries
//! base64 of `nonce (12) || ciphertext || tag (16)`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::keyring::{rejected, KeyRing};
use crate::audit::Audit;
use crate::crypto::data_keys::aad;
use crate::crypto::{random, sealed};
use crate::db::{self, Db};
use crate::error::{Error, Result};

pub const ALGORITHM: &str = "AES-256-GCM";

/// What encrypt returns and decrypt takes (README, "Encryption service").
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

/// A fresh data key for local encryption: the key itself, and the same key
/// as a package (of its base64 text) to store next to the data and turn
/// back into the key with decrypt.
pub struct DataKeyGrant {
    pub key: Zeroizing<[u8; 32]>,
    pub package: Package,
}

impl KeyRing {
    /// Encrypts a JSON value under the newest key of `classification`.
    /// The value is taken as the caller wrote it (already checked to be
    /// JSON), so nothing is parsed or re-serialised on the way.
    pub async fn encrypt(
        &self,
        db: &Db,
        audit: &Audit,
        classification: &str,
        data: &RawValue,
        context: Option<&str>,
    ) -> Result<Package> {
        let key = self.take(db, audit, classification).await?;
        let sealed = sealed::seal_with(
            &key.cipher,
            &aad(&key.key_id, key.version, context),
            data.get().as_bytes(),
        );
        Ok(Package {
            // SIMD base64: on a 1 KiB value the encoding otherwise costs
            // about as much as the cipher.
            encrypted_data: base64_simd::STANDARD.encode_to_string(&sealed),
            encryption_algorithm: ALGORITHM.into(),
            key_id: key.key_id.clone(),
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
    ) -> Result<Box<RawValue>> {
        if p.encryption_algorithm != ALGORITHM {
            return Err(rejected(
                "unsupported_algorithm",
                format!("encryption_algorithm must be {ALGORITHM}"),
            ));
        }
        let raw = base64_simd::STANDARD
            .decode_to_vec(p.encrypted_data.as_bytes())
            .map_err(|_| rejected("invalid_package", "encrypted_data is not base64"))?;
        if raw.len() < sealed::NONCE_LEN + sealed::TAG_LEN {
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
        let plain = sealed::open_with(&key.cipher, &aad(&p.key_id, key.version, context), &raw)
            .ok_or_else(|| {
                rejected(
                    "decryption_failed",
                    "the ciphertext was altered or the context differs",
                )
            })?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| rejected("decryption_failed", "the decrypted payload is not JSON"))?;
        RawValue::from_string(text.to_string())
            .map_err(|_| rejected("decryption_failed", "the decrypted payload is not JSON"))
    }

    /// Seals a value agentry keeps in its own tables (a channel's
    /// secrets, an MCP server's upstream headers): encrypted under
    /// `classification` and bound to `context`; returns the package as the
    /// JSON text to store.
    pub async fn seal_json(
        &self,
        db: &Db,
        audit: &Audit,
        classification: &str,
        value: &impl serde::Serialize,
        context: &str,
    ) -> Result<String> {
        let json = serde_json::to_string(value).map_err(Error::internal)?;
        let raw = RawValue::from_string(json).map_err(Error::internal)?;
        let package = self
            .encrypt(db, audit, classification, &raw, Some(context))
            .await?;
        serde_json::to_string(&package).map_err(Error::internal)
    }

    /// Opens what [`KeyRing::seal_json`] sealed for `context`.
    pub async fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        db: &Db,
        audit: &Audit,
        sealed: &str,
        context: &str,
    ) -> Result<T> {
        let package: Package = serde_json::from_str(sealed).map_err(Error::internal)?;
        let raw = self.decrypt(db, audit, &package, Some(context)).await?;
        serde_json::from_str(raw.get()).map_err(Error::internal)
    }

    /// A fresh 256-bit data key, returned in plaintext and as a package
    /// under `classification` (Vault's "datakey").
    pub async fn datakey(
        &self,
        db: &Db,
        audit: &Audit,
        classification: &str,
        context: Option<&str>,
    ) -> Result<DataKeyGrant> {
        let key = Zeroizing::new(random::bytes::<32>());
        // A JSON string of the base64 key (base64 needs no escaping).
        let json = Zeroizing::new(format!("\"{}\"", STANDARD.encode(key.as_ref())));
        let value = RawValue::from_string(json.to_string()).map_err(Error::internal)?;
        let package = self
            .encrypt(db, audit, classification, &value, context)
            .await;
        // The JSON copy of the key is wiped too.
        drop(Zeroizing::new(String::from(Box::<str>::from(value))));
        Ok(DataKeyGrant {
            key,
            package: package?,
        })
    }
}
