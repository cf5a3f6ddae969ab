//! OAuth clients that sign users in: registered by an admin (confidential,
//! with a secret shown once, or public) or dynamically (RFC 7591), listed
//! together with how each came, when it was last used and its grants.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::redirect;
use crate::audit::{Audit, Context, Outcome};
use crate::crypto::{constant_time_eq, random, sha256_hex};
use crate::db::oauth_clients::{self as repo, AuthMethod, ClientRow, Registration};
use crate::db::oauth_grants;
use crate::db::{self, Db};
use crate::error::{Error, FieldErrors, Result};
use crate::timefmt::rfc3339;

pub const MAX_NAME: usize = 200;
pub const MAX_REDIRECT_URIS: usize = 20;
/// Prefix of client secrets, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "acs_";

/// What an admin gives for a new client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Team IDE", "redirect_uris": ["http://127.0.0.1/callback", "https://ide.example.com/oauth/callback"], "confidential": false}))]
pub struct ClientSpec {
    /// Shown on the consent page (1-200 characters).
    #[schema(max_length = 200)]
    pub name: String,
    /// Where authorization responses may go: https, http on a loopback
    /// host (any port matches), or a private-use scheme (`cursor://…`).
    #[schema(max_items = 20)]
    pub redirect_uris: Vec<String>,
    /// A confidential client gets a secret (shown once) and authenticates
    /// with it; a public one (default) relies on PKCE alone.
    #[serde(default)]
    pub confidential: bool,
}

/// What an admin may change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct ClientChanges {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[schema(max_items = 20)]
    pub redirect_uris: Option<Vec<String>>,
    /// Disabling a client revokes its refresh tokens and voids the access
    /// tokens issued to it so far (for good).
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub registration: Registration,
    pub token_endpoint_auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub client_uri: Option<String>,
    /// The address a dynamic registration came from.
    pub registered_from: Option<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub last_used_at: Option<String>,
    /// How many users have a grant for it.
    pub grants: i64,
}

/// A new client, with its secret this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewClient {
    #[serde(flatten)]
    pub client: ClientView,
    /// Shown once; only its hash is stored.
    pub client_secret: Option<String>,
}

pub fn view(row: ClientRow, grants: i64) -> ClientView {
    ClientView {
        client_id: row.id,
        name: row.name,
        registration: row.registration,
        token_endpoint_auth_method: row.auth_method,
        redirect_uris: row.redirect_uris,
        client_uri: row.client_uri,
        registered_from: row.registered_from,
        enabled: row.enabled,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        last_used_at: row.last_used_at.map(rfc3339),
        grants,
    }
}

/// A client name: 1-200 characters, no control characters.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.chars().any(char::is_control) || name.trim() != name {
        return Err(format!(
            "must be 1-{MAX_NAME} characters, without control characters or surrounding spaces"
        ));
    }
    Ok(())
}

/// Checks a list of redirect URIs, naming the first bad one by position.
pub fn check_redirect_uris(uris: &[String]) -> std::result::Result<(), (String, String)> {
    if uris.is_empty() {
        return Err(("redirect_uris".into(), "at least one is required".into()));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err((
            "redirect_uris".into(),
            format!("at most {MAX_REDIRECT_URIS}"),
        ));
    }
    for (i, u) in uris.iter().enumerate() {
        if let Err(m) = redirect::check(u) {
            return Err((format!("redirect_uris[{i}]"), m));
        }
    }
    Ok(())
}

/// A new secret and its stored hash.
pub fn new_secret() -> (String, String) {
    let secret = format!("{SECRET_PREFIX}{}", random::token());
    let hash = sha256_hex(secret.as_bytes());
    (secret, hash)
}

/// Whether `secret` is the client's.
pub fn secret_matches(row: &ClientRow, secret: &str) -> bool {
    row.secret_hash
        .as_deref()
        .is_some_and(|h| constant_time_eq(h.as_bytes(), sha256_hex(secret.as_bytes()).as_bytes()))
}

/// The registry of clients.
#[derive(Clone)]
pub struct Clients {
    db: Db,
    audit: Audit,
    /// Fetches client metadata documents, under the outbound rules.
    http: crate::net::Outbound,
    /// When each fetched document must be fetched again (ms).
    fresh_until: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
}

/// Whether and how metadata documents are used (`[oauth]`).
#[derive(Debug, Clone, Copy)]
pub struct DocumentPolicy {
    pub enabled: bool,
    pub allow_http_loopback: bool,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("OAuth client {id}"))
}

impl Clients {
    pub fn new(db: Db, audit: Audit, rules: std::sync::Arc<crate::net::OutboundRules>) -> Clients {
        Clients {
            db,
            audit,
            http: crate::net::Outbound::new(rules, 3, "agentry (client metadata)"),
            fresh_until: Default::default(),
        }
    }

    /// The client a `client_id` names: a stored one, or, for a metadata
    /// document URL, the document (fetched again once its cache time is
    /// over). `Err` says why a document cannot be used.
    pub async fn resolve(
        &self,
        ctx: &Context,
        client_id: &str,
        policy: DocumentPolicy,
    ) -> Result<std::result::Result<Option<ClientRow>, String>> {
        use super::metadata_document as doc;
        if !policy.enabled || !doc::is_document_url(client_id, policy.allow_http_loopback) {
            return Ok(Ok(self.find(client_id).await?));
        }
        let now = db::now_ms();
        let fresh = self
            .fresh_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .is_some_and(|until| *until > now);
        if fresh {
            if let Some(row) = self.find(client_id).await? {
                return Ok(Ok(Some(row)));
            }
        }
        let fetched = match doc::fetch(&self.http, client_id).await {
            Ok(f) => f,
            Err(why) => return Ok(Err(why)),
        };
        let (document, age) = fetched;
        let row = match doc::client_of(client_id, &document, now) {
            Ok(r) => r,
            Err(why) => {
                let ev = ctx
                    .event("oauth_client.metadata_document", Outcome::Failure)
                    .reason(why.clone())
                    .detail("client_id", client_id.chars().take(256).collect::<String>());
                self.audit.record(ev).await?;
                return Ok(Err(why));
            }
        };
        let event = ctx
            .event("oauth_client.metadata_document", Outcome::Success)
            .target("oauth_client", client_id)
            .detail("name", &row.name);
        let stored = row.clone();
        self.audit
            .apply(event, move |c| repo::upsert_document(c, &stored))
            .await?;
        self.fresh_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client_id.to_string(), now + age);
        // The stored row: an admin may have disabled it.
        Ok(Ok(self.find(client_id).await?))
    }

    /// Stores a new client (made by an admin or a registration) and records
    /// it; returns it with its secret.
    pub async fn insert(
        &self,
        event: crate::audit::Event,
        row: ClientRow,
        secret: Option<String>,
    ) -> Result<NewClient> {
        let stored = row.clone();
        self.audit
            .apply(event, move |c| repo::insert(c, &stored))
            .await?;
        Ok(NewClient {
            client: view(row, 0),
            client_secret: secret,
        })
    }

    pub async fn create(&self, ctx: &Context, spec: ClientSpec) -> Result<NewClient> {
        let id = db::new_id();
        let event = ctx
            .event("oauth_client.create", Outcome::Success)
            .target("oauth_client", &id)
            .detail("name", &spec.name)
            .detail("registration", Registration::Admin.as_str());
        let mut errors = FieldErrors::new();
        if let Err(m) = check_name(&spec.name) {
            errors.insert("name".into(), m);
        }
        if let Err((field, m)) = check_redirect_uris(&spec.redirect_uris) {
            errors.insert(field, m);
        }
        if !errors.is_empty() {
            return Err(self.audit.fail(event, Error::fields(errors)).await);
        }
        let (secret, secret_hash, auth_method) = if spec.confidential {
            let (s, h) = new_secret();
            (Some(s), Some(h), AuthMethod::ClientSecretBasic)
        } else {
            (None, None, AuthMethod::None)
        };
        let now = db::now_ms();
        let row = ClientRow {
            id,
            name: spec.name,
            registration: Registration::Admin,
            auth_method,
            secret_hash,
            redirect_uris: spec.redirect_uris,
            client_uri: None,
            registered_from: None,
            enabled: true,
            created_at: now,
            updated_at: now,
            last_used_at: None,
        };
        let event = event.detail("auth_method", auth_method.as_str());
        self.insert(event, row, secret).await
    }

    /// A dynamic registration (RFC 7591) from `from` (the client's
    /// address); `enabled` false when an admin must approve it first.
    pub async fn register(
        &self,
        ctx: &Context,
        r: super::registration::Request,
        from: &str,
        enabled: bool,
    ) -> Result<NewClient> {
        let id = db::new_id();
        let (secret, secret_hash) = match r.auth_method {
            AuthMethod::None => (None, None),
            _ => {
                let (s, h) = new_secret();
                (Some(s), Some(h))
            }
        };
        let now = db::now_ms();
        let event = ctx
            .event("oauth_client.register", Outcome::Success)
            .target("oauth_client", &id)
            .detail("name", &r.name)
            .detail("registration", Registration::Dynamic.as_str())
            .detail("auth_method", r.auth_method.as_str())
            .detail("enabled", enabled.to_string());
        let row = ClientRow {
            id,
            name: r.name,
            registration: Registration::Dynamic,
            auth_method: r.auth_method,
            secret_hash,
            redirect_uris: r.redirect_uris,
            client_uri: r.client_uri,
            registered_from: Some(from.to_string()),
            enabled,
            created_at: now,
            updated_at: now,
            last_used_at: None,
        };
        self.insert(event, row, secret).await
    }

    pub async fn update(&self, ctx: &Context, id: &str, ch: ClientChanges) -> Result<ClientView> {
        let mut row = self.row(id).await?;
        let mut event = ctx
            .event("oauth_client.update", Outcome::Success)
            .target("oauth_client", id);
        let mut errors = FieldErrors::new();
        if let Some(n) = ch.name {
            if let Err(m) = check_name(&n) {
                errors.insert("name".into(), m);
            }
            row.name = n;
        }
        if let Some(uris) = ch.redirect_uris {
            if let Err((field, m)) = check_redirect_uris(&uris) {
                errors.insert(field, m);
            }
            row.redirect_uris = uris;
        }
        let disabling = ch.enabled == Some(false) && row.enabled;
        if let Some(e) = ch.enabled {
            event = event.detail("enabled", e.to_string());
            row.enabled = e;
        }
        if !errors.is_empty() {
            return Err(self.audit.fail(event, Error::fields(errors)).await);
        }
        row.updated_at = db::now_ms();
        let stored = row.clone();
        self.audit
            .apply(event, move |c| {
                if !repo::update(c, &stored)? {
                    return Err(not_found(&stored.id));
                }
                if disabling {
                    oauth_grants::revoke_client_refresh(c, &stored.id, stored.updated_at)?;
                    repo::cut_off(c, &stored.id, stored.updated_at)?;
                }
                Ok(())
            })
            .await?;
        let grants = self.grant_count(id).await?;
        Ok(view(row, grants))
    }

    /// Deletes a client with its grants, codes and refresh tokens.
    pub async fn delete(&self, ctx: &Context, id: &str) -> Result<()> {
        let event = ctx
            .event("oauth_client.delete", Outcome::Success)
            .target("oauth_client", id);
        let i = id.to_string();
        self.audit
            .apply(event, move |c| {
                if !repo::delete(c, &i)? {
                    return Err(not_found(&i));
                }
                Ok(())
            })
            .await
    }

    pub async fn row(&self, id: &str) -> Result<ClientRow> {
        self.find(id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn find(&self, id: &str) -> Result<Option<ClientRow>> {
        let i = id.to_string();
        self.db.read(move |c| repo::by_id(c, &i)).await
    }

    async fn grant_count(&self, id: &str) -> Result<i64> {
        let i = id.to_string();
        self.db
            .read(move |c| oauth_grants::grant_count(c, &i))
            .await
    }

    pub async fn get(&self, id: &str) -> Result<ClientView> {
        let row = self.row(id).await?;
        Ok(view(row, self.grant_count(id).await?))
    }

    pub async fn list(&self, after: Option<String>, limit: u32) -> Result<Vec<ClientView>> {
        let (rows, counts) = self
            .db
            .read(move |c| {
                Ok((
                    repo::list(c, after.as_deref(), limit)?,
                    oauth_grants::grant_counts(c)?,
                ))
            })
            .await?;
        let counts: std::collections::HashMap<String, i64> = counts.into_iter().collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let n = counts.get(&r.id).copied().unwrap_or(0);
                view(r, n)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redirect_lists() {
        assert!(check_name("Team IDE").is_ok());
        for bad in ["", " x", "x\n", &"a".repeat(201)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_redirect_uris(&[]).is_err());
        let mixed = [
            "cursor://anysphere.cursor-mcp/oauth/callback".to_string(),
            "https://www.cursor.com/agents/mcp/oauth/callback".to_string(),
            "http://localhost:8787/callback".to_string(),
        ];
        assert!(check_redirect_uris(&mixed).is_ok());
        let bad = [
            "https://ok.example.com/".to_string(),
            "http://evil.example.com/".to_string(),
        ];
        assert_eq!(check_redirect_uris(&bad).unwrap_err().0, "redirect_uris[1]");
    }

    #[test]
    fn secrets_are_checked_by_hash() {
        let (secret, hash) = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX));
        let row = ClientRow {
            id: "c".into(),
            name: "n".into(),
            registration: Registration::Admin,
            auth_method: AuthMethod::ClientSecretBasic,
            secret_hash: Some(hash),
            redirect_uris: vec![],
            client_uri: None,
            registered_from: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        };
        assert!(secret_matches(&row, &secret));
        assert!(!secret_matches(&row, "acs_wrong"));
    }
}
