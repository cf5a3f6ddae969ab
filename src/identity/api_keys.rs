//! API keys: `agk_<id>_<secret>`, for agents and users.
//!
//! The id (64 random bits, hex) finds the row; the secret (256 random bits,
//! base64url) is returned once at creation and stored only as its SHA-256,
//! compared in constant time. Keys may expire (with an enforced maximum
//! lifetime) and be revoked; a key of a disabled owner does not work.

use zeroize::Zeroizing;

use super::{Principal, PrincipalKind};
use crate::audit::{Audit, Context, Outcome};
use crate::crypto::{constant_time_eq, hex, random, sha256_hex};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::principals::PrincipalCache;
use crate::cache::GenerationCache;
use crate::db::{self, agents, api_keys, users, Db};
use crate::error::{Error, Result};

pub use api_keys::ApiKeyRow;

pub const PREFIX: &str = "agk_";
pub const MAX_NAME: usize = 128;
/// last_used_at is written at most this often per key.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Whose key it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Agent(String),
    User(String),
}

impl Owner {
    fn columns(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Owner::Agent(id) => (Some(id), None),
            Owner::User(id) => (None, Some(id)),
        }
    }

    fn target(&self) -> (&'static str, &str) {
        match self {
            Owner::Agent(id) => (super::PrincipalKind::Agent.as_str(), id),
            Owner::User(id) => (super::PrincipalKind::User.as_str(), id),
        }
    }
}

/// A freshly created key: the row, and the full key shown exactly once.
pub struct NewKey {
    pub row: ApiKeyRow,
    pub key: Zeroizing<String>,
}

/// Creates a key. `expires_in_days` defaults to `max_days`; a request
/// beyond `max_days` is refused (`max_days` 0: no maximum, no default).
pub async fn create(
    audit: &Audit,
    ctx: &Context,
    owner: Owner,
    name: String,
    expires_in_days: Option<u32>,
    max_days: u32,
) -> Result<NewKey> {
    let (kind, owner_id) = owner.target();
    let id = hex(&random::bytes::<8>());
    let event = ctx
        .event("api_key.create", Outcome::Success)
        .target(kind, owner_id)
        .detail("key_id", &id)
        .detail("name", &name)
        .detail("expires_in_days", expires_in_days);
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        let e = Error::field(
            "name",
            format!("must be at most {MAX_NAME} printable characters"),
        );
        return Err(audit.fail(event, e).await);
    }
    let days = match (expires_in_days, max_days) {
        (Some(0), _) => {
            return Err(audit
                .fail(event, Error::field("expires_in_days", "must be at least 1"))
                .await)
        }
        (Some(d), max) if max > 0 && d > max => {
            let e = Error::field(
                "expires_in_days",
                format!("must be at most {max} (the configured maximum)"),
            );
            return Err(audit.fail(event, e).await);
        }
        (Some(d), _) => Some(d),
        (None, 0) => None,
        (None, max) => Some(max),
    };
    let secret = Zeroizing::new(random::token());
    let key = Zeroizing::new(format!("{PREFIX}{id}_{}", secret.as_str()));
    let now = db::now_ms();
    let (agent_id, user_id) = owner.columns();
    let row = ApiKeyRow {
        id,
        agent_id: agent_id.map(str::to_string),
        user_id: user_id.map(str::to_string),
        name,
        secret_hash: sha256_hex(secret.as_bytes()),
        created_at: now,
        expires_at: days.map(|d| now + i64::from(d) * 86_400_000),
        last_used_at: None,
        revoked_at: None,
    };
    let stored = row.clone();
    audit
        .apply(event, move |c| {
            let exists = match &owner {
                Owner::Agent(id) => agents::by_id(c, id)?.is_some(),
                Owner::User(id) => users::by_id(c, id)?.is_some(),
            };
            if !exists {
                let (kind, id) = owner.target();
                return Err(Error::NotFound(format!("{kind} {id}")));
            }
            api_keys::insert(c, &stored)?;
            Ok(())
        })
        .await?;
    Ok(NewKey { row, key })
}

pub async fn list(db: &Db, owner: Owner) -> Result<Vec<ApiKeyRow>> {
    db.read(move |c| {
        let (a, u) = owner.columns();
        api_keys::of_owner(c, a, u)
    })
    .await
}

pub async fn revoke(audit: &Audit, ctx: &Context, owner: Owner, key_id: &str) -> Result<()> {
    let (kind, owner_id) = owner.target();
    let event = ctx
        .event("api_key.revoke", Outcome::Success)
        .target(kind, owner_id)
        .detail("key_id", key_id);
    let key_id = key_id.to_string();
    audit
        .apply(event, move |c| {
            let row = api_keys::by_id(c, &key_id)?.filter(|k| {
                let (a, u) = owner.columns();
                k.agent_id.as_deref() == a && k.user_id.as_deref() == u
            });
            let Some(row) = row else {
                return Err(Error::NotFound(format!("key {key_id}")));
            };
            if row.revoked_at.is_some() {
                return Err(Error::Conflict(format!("key {key_id} is already revoked")));
            }
            api_keys::revoke(c, &key_id, db::now_ms())?;
            Ok(())
        })
        .await
}

/// Why a presented key was refused (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFailure {
    Malformed,
    UnknownKey,
    WrongSecret,
    Revoked,
    Expired,
    OwnerDisabled,
}

impl KeyFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFailure::Malformed => "malformed_key",
            KeyFailure::UnknownKey => "unknown_key",
            KeyFailure::WrongSecret => "wrong_secret",
            KeyFailure::Revoked => "key_revoked",
            KeyFailure::Expired => "key_expired",
            KeyFailure::OwnerDisabled => "owner_disabled",
        }
    }
}

/// Splits `agk_<id>_<secret>`; the secret may itself contain `_`.
fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// The outcome of presenting a key.
pub enum KeyCheck {
    Valid {
        principal: Principal,
        key_id: String,
        /// First use of this key in the current minute: record it.
        first_use_in_window: bool,
    },
    Refused {
        reason: KeyFailure,
        key_id: Option<String>,
    },
}

/// Key rows for the request path, re-read when the audit writer's change
/// generation moves (every create and revoke is an audited change) or
/// after a short TTL. `last_used_at` is tracked here and written at most
/// once a minute per key.
#[derive(Clone)]
pub struct ApiKeyCache {
    rows: GenerationCache<ApiKeyRow>,
    touched: Arc<RwLock<HashMap<String, i64>>>,
}

const CACHE_MAX: usize = 100_000;

impl Default for ApiKeyCache {
    fn default() -> Self {
        ApiKeyCache {
            rows: GenerationCache::new(Duration::from_secs(5), CACHE_MAX),
            touched: Arc::default(),
        }
    }
}

impl ApiKeyCache {
    async fn row(&self, db: &Db, audit: &Audit, id: &str) -> Result<Option<Arc<ApiKeyRow>>> {
        let generation = audit.generation();
        if let Some(row) = self.rows.fresh(generation, id) {
            return Ok(row);
        }
        let key = id.to_string();
        let row = db
            .read(move |c| api_keys::by_id(c, &key))
            .await?
            .map(Arc::new);
        self.rows.put(generation, id.to_string(), row.clone());
        Ok(row)
    }

    /// True when `last_used_at` is due for a write (and records the use).
    fn due_for_touch(&self, id: &str, stored: Option<i64>, now: i64) -> bool {
        let Ok(mut t) = self.touched.write() else {
            return false;
        };
        if t.len() >= CACHE_MAX {
            t.clear();
        }
        let last = t.get(id).copied().or(stored);
        if last.is_none_or(|l| now - l >= TOUCH_EVERY_MS) {
            t.insert(id.to_string(), now);
            true
        } else {
            false
        }
    }
}

/// What key verification reads.
pub struct KeyLookup<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub principals: &'a PrincipalCache,
    pub cache: &'a ApiKeyCache,
}

/// Checks a presented key. Succeeds only for a live key of an enabled owner.
pub async fn authenticate(lookup: &KeyLookup<'_>, key: &str) -> Result<KeyCheck> {
    let Some((id, secret)) = parse(key) else {
        return Ok(KeyCheck::Refused {
            reason: KeyFailure::Malformed,
            key_id: None,
        });
    };
    let presented = sha256_hex(secret.as_bytes());
    let now = db::now_ms();
    let refused = |reason| {
        Ok(KeyCheck::Refused {
            reason,
            key_id: Some(id.to_string()),
        })
    };
    let Some(k) = lookup.cache.row(lookup.db, lookup.audit, id).await? else {
        return refused(KeyFailure::UnknownKey);
    };
    if !constant_time_eq(k.secret_hash.as_bytes(), presented.as_bytes()) {
        return refused(KeyFailure::WrongSecret);
    }
    if k.revoked_at.is_some() {
        return refused(KeyFailure::Revoked);
    }
    if k.expires_at.is_some_and(|t| t <= now) {
        return refused(KeyFailure::Expired);
    }
    let owner = match (&k.agent_id, &k.user_id) {
        (Some(a), _) => {
            lookup
                .principals
                .get(lookup.db, lookup.audit, PrincipalKind::Agent, a)
                .await?
        }
        (_, Some(u)) => {
            lookup
                .principals
                .get(lookup.db, lookup.audit, PrincipalKind::User, u)
                .await?
        }
        _ => None,
    };
    let Some(owner) = owner else {
        return refused(KeyFailure::UnknownKey);
    };
    if !owner.enabled {
        return refused(KeyFailure::OwnerDisabled);
    }
    let first_use_in_window = lookup.cache.due_for_touch(id, k.last_used_at, now);
    if first_use_in_window {
        let kid = id.to_string();
        lookup
            .db
            .write(move |tx| api_keys::touch(tx, &kid, now))
            .await?;
    }
    Ok(KeyCheck::Valid {
        first_use_in_window,
        principal: Principal {
            kind: owner.kind,
            id: owner.id.clone(),
            name: owner.name.clone(),
        },
        key_id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_only_well_formed_keys() {
        let secret = "a".repeat(43);
        let good = format!("agk_0123456789abcdef_{secret}");
        assert_eq!(parse(&good), Some(("0123456789abcdef", secret.as_str())));
        let with_underscore = format!("agk_0123456789abcdef_{}_{}", "b".repeat(20), "c".repeat(22));
        assert!(parse(&with_underscore).is_some());
        for bad in [
            "",
            "agk_",
            "agk_0123_abc",
            "xyz_0123456789abcdef_aaaa",
            &format!("agk_0123456789abcdeg_{secret}"),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
