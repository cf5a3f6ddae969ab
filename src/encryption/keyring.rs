//! Key rings per classification: versions of 256-bit data keys, stored
//! sealed under a key derived from the master key (associated data: key id
//! and version) and held unsealed only in memory, in `Zeroizing` buffers.
//!
//! A ring gets a new version on demand, on schedule (`rotation_days`), and
//! before its newest version has encrypted `max_encryptions_per_key`
//! values. Encryptions are counted by reserving blocks in the database
//! ahead of use, so a crash can only over-count, never under-count.
//! Envelope encryption with these keys is in `envelope.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit::{Audit, Context, Outcome};
use crate::cache::GenerationCache;
use crate::crypto::data_keys::key_aad;
use crate::crypto::{hex, random, sealed, DerivedKey};
use crate::db::{self, keyrings as repo, Db};
use crate::error::{Error, Result};

/// The classifications created at first start; `restricted` needs
/// `crypto:decrypt:restricted` to decrypt.
pub const DEFAULT_RINGS: &[(&str, bool)] = &[
    ("public", false),
    ("internal", false),
    ("confidential", false),
    ("restricted", true),
];
const DAY_MS: i64 = 86_400_000;

/// A classification name: what `crypto:decrypt:<classification>` can hold.
pub fn valid_classification(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(super) struct DataKey {
    pub(super) key_id: String,
    pub(super) classification: String,
    pub(super) version: i64,
    pub(super) key: Zeroizing<[u8; 32]>,
    /// The key's AES schedule, prepared once (wiped on drop).
    pub(super) cipher: aes_gcm::Aes256Gcm,
}

pub(super) struct Rings {
    pub(super) keys: HashMap<String, Arc<DataKey>>,
    pub(super) newest: HashMap<String, Arc<DataKey>>,
    pub(super) rings: HashMap<String, repo::RingRow>,
    rows: Vec<repo::DataKeyRow>,
}

/// One classification's state (never key material).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RingView {
    pub classification: String,
    pub min_decryption_version: i64,
    /// Decryption needs `crypto:decrypt:<classification>`.
    pub requires_specific_permission: bool,
    /// The ring's own rotation period in days; `null` follows the
    /// configured `encryption.rotation_days`.
    pub rotation_days: Option<i64>,
    /// The period in force (0: on demand only).
    pub effective_rotation_days: i64,
    /// When the scheduler will add a version, if it will.
    pub next_rotation_at: Option<String>,
    pub versions: Vec<KeyVersionView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyVersionView {
    pub key_id: String,
    pub version: i64,
    pub created_at: String,
    /// Values encrypted under this version (including data keys issued).
    pub encryptions: i64,
}

/// A new classification.
pub struct NewRing {
    pub classification: String,
    pub requires_specific_permission: bool,
    pub rotation_days: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_encryptions: u64,
    pub rotation_days: u32,
}

/// Encryptions reserved in the database and not used yet, per key id.
#[derive(Default)]
struct Usage {
    next: i64,
    end: i64,
}

#[derive(Clone)]
pub struct KeyRing {
    wrap: Arc<DerivedKey>,
    limits: Limits,
    state: GenerationCache<Rings>,
    usage: Arc<Mutex<HashMap<String, Usage>>>,
    rotating: Arc<tokio::sync::Mutex<()>>,
}

pub(super) fn rejected(code: &'static str, message: impl Into<String>) -> Error {
    Error::Rejected {
        code,
        message: message.into(),
    }
}

fn unknown(classification: &str) -> Error {
    rejected(
        "unknown_classification",
        format!("no key ring for classification {classification:?}"),
    )
}

fn check_rotation_days(days: Option<i64>) -> Result<()> {
    match days {
        Some(d) if !(0..=3650).contains(&d) => Err(Error::field(
            "rotation_days",
            "must be between 0 (on demand only) and 3650, or null for the configured default",
        )),
        _ => Ok(()),
    }
}

impl KeyRing {
    pub fn new(wrap: DerivedKey, limits: Limits) -> KeyRing {
        KeyRing {
            wrap: Arc::new(wrap),
            limits,
            state: GenerationCache::new(Duration::from_secs(5), 1),
            usage: Arc::default(),
            rotating: Arc::default(),
        }
    }

    /// Creates the default rings (version 1 each) when missing. Audited.
    pub async fn ensure_defaults(&self, db: &Db, audit: &Audit) -> Result<()> {
        let rings = db.read(repo::rings).await?;
        for (name, specific) in DEFAULT_RINGS {
            if !rings.iter().any(|r| r.classification == *name) {
                let ring = NewRing {
                    classification: name.to_string(),
                    requires_specific_permission: *specific,
                    rotation_days: None,
                };
                self.create(audit, &Context::system("agentry"), ring)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn state(&self, db: &Db, audit: &Audit) -> Result<Arc<Rings>> {
        let generation = audit.generation();
        if let Some(Some(s)) = self.state.fresh(generation, "rings") {
            return Ok(s);
        }
        let (rings, rows) = db.read(|c| Ok((repo::rings(c)?, repo::keys(c)?))).await?;
        let mut out = Rings {
            keys: HashMap::new(),
            newest: HashMap::new(),
            rings: rings
                .into_iter()
                .map(|r| (r.classification.clone(), r))
                .collect(),
            rows: Vec::new(),
        };
        for k in &rows {
            let key = sealed::open_key(&self.wrap, &key_aad(&k.key_id, k.version), &k.wrapped)
                .ok_or_else(|| {
                    Error::internal(format!(
                        "data key {} cannot be unsealed: damaged, or a wrong master key",
                        k.key_id
                    ))
                })?;
            let key = Arc::new(DataKey {
                key_id: k.key_id.clone(),
                classification: k.classification.clone(),
                version: k.version,
                cipher: sealed::cipher(&key),
                key,
            });
            // Rows come ordered by version: the last one of a ring is the newest.
            out.newest.insert(k.classification.clone(), key.clone());
            out.keys.insert(k.key_id.clone(), key);
        }
        out.rows = rows;
        let out = Arc::new(out);
        self.state
            .put(generation, "rings".into(), Some(out.clone()));
        Ok(out)
    }

    fn effective_days(&self, ring: &repo::RingRow) -> i64 {
        ring.rotation_days
            .unwrap_or(i64::from(self.limits.rotation_days))
    }

    /// When the ring's newest version is due for replacement (ms), if its
    /// period is not "on demand".
    fn next_rotation(&self, ring: &repo::RingRow, rows: &[repo::DataKeyRow]) -> Option<i64> {
        let days = self.effective_days(ring);
        let newest = rows
            .iter()
            .filter(|k| k.classification == ring.classification)
            .map(|k| k.created_at)
            .max()?;
        (days > 0).then(|| newest + days * DAY_MS)
    }

    /// Whether a ring of `classification` exists.
    pub async fn exists(&self, db: &Db, audit: &Audit, classification: &str) -> Result<bool> {
        Ok(self
            .state(db, audit)
            .await?
            .rings
            .contains_key(classification))
    }

    pub async fn rings(&self, db: &Db, audit: &Audit) -> Result<Vec<RingView>> {
        let state = self.state(db, audit).await?;
        // Counts move without an audited change: read them fresh.
        let rows = db.read(repo::keys).await?;
        let unused: HashMap<String, i64> = self
            .usage
            .lock()
            .map(|u| u.iter().map(|(k, u)| (k.clone(), u.end - u.next)).collect())
            .unwrap_or_default();
        let mut names: Vec<&String> = state.rings.keys().collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|name| {
                let ring = &state.rings[name];
                let versions: Vec<KeyVersionView> = rows
                    .iter()
                    .filter(|k| &k.classification == name)
                    .map(|k| KeyVersionView {
                        key_id: k.key_id.clone(),
                        version: k.version,
                        created_at: crate::timefmt::rfc3339(k.created_at),
                        encryptions: k.encryptions - unused.get(&k.key_id).copied().unwrap_or(0),
                    })
                    .collect();
                let days = self.effective_days(ring);
                let next = self.next_rotation(ring, &rows);
                RingView {
                    classification: name.clone(),
                    min_decryption_version: ring.min_decryption_version,
                    requires_specific_permission: ring.requires_specific,
                    rotation_days: ring.rotation_days,
                    effective_rotation_days: days,
                    next_rotation_at: next.map(crate::timefmt::rfc3339),
                    versions,
                }
            })
            .collect())
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

    /// Inserts a new version of `name`'s key; returns its version.
    fn add_version(c: &Connection, wrap: &[u8; 32], name: &str, key_id: &str) -> Result<i64> {
        let key = Zeroizing::new(random::bytes::<32>());
        let version = repo::newest_version(c, name)? + 1;
        repo::insert_key(
            c,
            &repo::DataKeyRow {
                key_id: key_id.to_string(),
                classification: name.to_string(),
                version,
                wrapped: sealed::seal(wrap, &key_aad(key_id, version), key.as_ref()),
                created_at: db::now_ms(),
                encryptions: 0,
            },
        )?;
        Ok(version)
    }

    fn new_key_id() -> String {
        format!("dk_{}", hex(&random::bytes::<8>()))
    }

    /// Creates a classification with its first key version. Audited.
    pub async fn create(&self, audit: &Audit, ctx: &Context, ring: NewRing) -> Result<()> {
        let event = ctx
            .event("crypto.ring.create", Outcome::Success)
            .target("key_ring", &ring.classification)
            .detail(
                "requires_specific_permission",
                ring.requires_specific_permission,
            )
            .detail("rotation_days", ring.rotation_days);
        let invalid = if valid_classification(&ring.classification) {
            check_rotation_days(ring.rotation_days).err()
        } else {
            Some(Error::field(
                "classification",
                "must be 1-32 characters: a lower-case letter, then lower-case letters, digits, _ or -",
            ))
        };
        if let Some(e) = invalid {
            return Err(audit.fail(event, e).await);
        }
        let wrap = self.wrap.clone();
        let key_id = Self::new_key_id();
        let event = event.detail("key_id", &key_id);
        audit
            .apply(event, move |c| {
                let name = &ring.classification;
                if !repo::insert_ring(
                    c,
                    name,
                    ring.requires_specific_permission,
                    ring.rotation_days,
                    db::now_ms(),
                )? {
                    return Err(Error::Conflict(format!(
                        "classification {name} already exists"
                    )));
                }
                Self::add_version(c, &wrap, name, &key_id).map(|_| ())
            })
            .await
    }

    /// Adds a new version to a classification; new encryptions use it.
    /// `reason` (requested, scheduled, encryption_limit) goes to the audit
    /// record.
    pub async fn rotate(
        &self,
        audit: &Audit,
        ctx: &Context,
        classification: &str,
        reason: &str,
    ) -> Result<i64> {
        let key_id = Self::new_key_id();
        let wrap = self.wrap.clone();
        let name = classification.to_string();
        let event = ctx
            .event("crypto.key.rotate", Outcome::Success)
            .target("key_ring", &name)
            .detail("key_id", &key_id)
            .detail("reason", reason);
        audit
            .apply(event, move |c| {
                if !repo::rings(c)?.iter().any(|r| r.classification == name) {
                    return Err(Error::NotFound(format!("classification {name}")));
                }
                Self::add_version(c, &wrap, &name, &key_id)
            })
            .await
    }

    /// Rotates every ring whose newest version is older than its period.
    /// Returns the classifications rotated.
    pub async fn rotate_due(&self, db: &Db, audit: &Audit) -> Result<Vec<String>> {
        let state = self.state(db, audit).await?;
        let now = db::now_ms();
        let mut due = Vec::new();
        for (name, ring) in &state.rings {
            if self
                .next_rotation(ring, &state.rows)
                .is_some_and(|t| t <= now)
            {
                due.push(name.clone());
            }
        }
        let ctx = Context::system("scheduler");
        for name in &due {
            self.rotate(audit, &ctx, name, "scheduled").await?;
        }
        Ok(due)
    }

    /// Changes a ring's minimum decryption version and/or rotation period
    /// (`rotation_days`: `Some(None)` returns to the configured default).
    /// Audited.
    pub async fn update(
        &self,
        db: &Db,
        audit: &Audit,
        ctx: &Context,
        classification: &str,
        min: Option<i64>,
        rotation_days: Option<Option<i64>>,
    ) -> Result<()> {
        let state = self.state(db, audit).await?;
        let mut event = ctx
            .event("crypto.ring.update", Outcome::Success)
            .target("key_ring", classification);
        if let Some(m) = min {
            event = event.detail("min_decryption_version", m);
        }
        if let Some(d) = rotation_days {
            event = event.detail("rotation_days", d);
        }
        let invalid = match state.newest.get(classification) {
            None => Some(Error::NotFound(format!("classification {classification}"))),
            Some(_) if min.is_none() && rotation_days.is_none() => Some(Error::field(
                "min_decryption_version",
                "give min_decryption_version, rotation_days, or both",
            )),
            Some(k) if min.is_some_and(|m| m < 1 || m > k.version) => Some(Error::field(
                "min_decryption_version",
                format!("must be between 1 and the newest version ({})", k.version),
            )),
            Some(_) => rotation_days.and_then(|d| check_rotation_days(d).err()),
        };
        if let Some(e) = invalid {
            return Err(audit.fail(event, e).await);
        }
        let name = classification.to_string();
        audit
            .apply(event, move |c| {
                if let Some(m) = min {
                    repo::set_min_version(c, &name, m)?;
                }
                if let Some(d) = rotation_days {
                    repo::set_rotation_days(c, &name, d)?;
                }
                Ok(())
            })
            .await
    }

    /// Encryptions reserved per database write: few writes at the default
    /// limit, exact counting at tiny limits.
    fn block(&self) -> i64 {
        (self.limits.max_encryptions / 4096).clamp(1, 65_536) as i64
    }

    fn use_reserved(&self, key_id: &str) -> bool {
        let Ok(mut usage) = self.usage.lock() else {
            return false;
        };
        match usage.get_mut(key_id) {
            Some(u) if u.next < u.end => {
                u.next += 1;
                true
            }
            _ => false,
        }
    }

    /// The newest key of `classification`, with one encryption counted
    /// against it; rotates first when the version has reached the limit.
    pub(super) async fn take(
        &self,
        db: &Db,
        audit: &Audit,
        classification: &str,
    ) -> Result<Arc<DataKey>> {
        // Two rounds suffice (reserve, or rotate then reserve); a third
        // means another process keeps rotating underneath.
        for _ in 0..3 {
            let state = self.state(db, audit).await?;
            let key = state
                .newest
                .get(classification)
                .cloned()
                .ok_or_else(|| unknown(classification))?;
            if self.use_reserved(&key.key_id) {
                return Ok(key);
            }
            let want = self.block();
            let id = key.key_id.clone();
            let total = db
                .write(move |c| repo::reserve(c, &id, want))
                .await?
                .ok_or_else(|| Error::internal("a data key disappeared"))?;
            if total <= self.limits.max_encryptions as i64 {
                if let Ok(mut usage) = self.usage.lock() {
                    usage.insert(
                        key.key_id.clone(),
                        Usage {
                            next: total - want + 1,
                            end: total,
                        },
                    );
                }
                return Ok(key);
            }
            self.rotate_at_limit(db, audit, &key).await?;
        }
        Err(Error::Unavailable(format!(
            "the {classification} key ring is being rotated; retry"
        )))
    }

    async fn rotate_at_limit(&self, db: &Db, audit: &Audit, used: &DataKey) -> Result<()> {
        let _one = self.rotating.lock().await;
        let state = self.state(db, audit).await?;
        let still_newest = state
            .newest
            .get(&used.classification)
            .is_some_and(|k| k.key_id == used.key_id);
        if still_newest {
            tracing::info!(
                classification = %used.classification,
                version = used.version,
                "key version reached its encryption limit; rotating"
            );
            self.rotate(
                audit,
                &Context::system("agentry"),
                &used.classification,
                "encryption_limit",
            )
            .await?;
        }
        Ok(())
    }

    /// The raw key of a key id (for tests; never served).
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
