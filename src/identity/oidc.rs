//! Single sign-on through an external OpenID Connect provider (SPEC §16),
//! with the `openidconnect` crate: discovery, the authorization code flow
//! with PKCE (S256), `state` and a nonce, the ID token verified against
//! the provider's JWKS (signature, `iss`, `aud`, `exp`, `nonce`). Users are
//! matched by the provider's subject (stored as `{issuer} {sub}`), never by
//! name or email; a claim maps to roles; users may be created at first
//! sign-in. Every HTTP request to the provider goes through the outbound
//! rules.
//!
//! A sign-in under way (PKCE verifier, nonce, where to return) stays in
//! memory for ten minutes, keyed by its `state` and taken once.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};
use zeroize::Zeroizing;

use super::passwords::Hasher;
use crate::audit::{Audit, Context, Outcome};
use crate::config::OidcConfig;
use crate::crypto::random;
use crate::db::{self, roles, users, users::UserRow, Db};
use crate::error::{Error, Result};
use crate::net::Outbound;

/// How long a sign-in may spend at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Sign-ins under way at most.
const MAX_PENDING: usize = 10_000;
/// The provider's metadata and keys are fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(600);
/// A token that fails verification against keys older than this fetches
/// them again (a key rotation at the provider).
const KEYS_REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Largest answer read from the provider.
const MAX_BODY: usize = 1024 * 1024;

/// The callback path (under `public_url`).
pub const CALLBACK_PATH: &str = "/login/oidc/callback";

struct Pending {
    at: Instant,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    next: Option<String>,
}

/// What the provider said about the person, once verified.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `{issuer} {sub}`.
    pub subject: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Values of the configured role claim.
    pub groups: Vec<String>,
    /// Where to go after signing in.
    pub next: Option<String>,
}

/// Why a sign-in through the provider was refused (for the audit trail;
/// the person is told less).
#[derive(Debug)]
pub struct Refusal(pub String);

/// The client `CoreClient::from_provider_metadata` makes (endpoints from
/// discovery), with the redirect URI set.
type CoreClientFromMetadata = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

pub struct Sso {
    config: Arc<OidcConfig>,
    redirect: RedirectUrl,
    outbound: Outbound,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

type HttpFuture =
    Pin<Box<dyn Future<Output = std::result::Result<HttpResponse, HttpFailure>> + Send>>;

/// One request to the provider under the outbound rules, no redirects.
fn send(outbound: Outbound, request: HttpRequest) -> HttpFuture {
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .map_err(|e| HttpFailure(e.to_string()))?;
        let mut req = outbound
            .request(method, &parts.uri.to_string())
            .map_err(|r| HttpFailure(r.to_string()))?
            .timeout(Duration::from_secs(10))
            .body(body);
        for (name, value) in &parts.headers {
            req = req.header(name.as_str(), value.as_bytes());
        }
        let res = req
            .send()
            .await
            .map_err(|e| HttpFailure(crate::net::request_failure(e)))?;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec());
        let mut body = Vec::new();
        let mut res = res;
        while let Some(chunk) = res.chunk().await.map_err(|e| HttpFailure(e.to_string()))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpFailure("the provider's answer is over 1 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::builder().status(status);
        if let Some(ct) = content_type {
            out = out.header(http::header::CONTENT_TYPE, ct);
        }
        out.body(body).map_err(|e| HttpFailure(e.to_string()))
    })
}

impl Sso {
    /// `None` when `[oidc]` is off.
    pub fn new(config: &OidcConfig, public_url: &str, outbound: Outbound) -> Option<Sso> {
        if !config.enabled() {
            return None;
        }
        let redirect = RedirectUrl::new(format!("{public_url}{CALLBACK_PATH}")).ok()?;
        Some(Sso {
            config: Arc::new(config.clone()),
            redirect,
            outbound,
            metadata: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The button's "Sign in with …".
    pub fn display_name(&self) -> &str {
        &self.config.display_name
    }

    fn http(&self) -> impl Fn(HttpRequest) -> HttpFuture {
        let outbound = self.outbound.clone();
        move |req| send(outbound.clone(), req)
    }

    /// The provider's metadata and keys, fetched again when older than
    /// `max_age`; with when they were fetched.
    async fn provider(&self, max_age: Duration) -> Result<(Instant, CoreProviderMetadata)> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, m)) = cached.as_ref() {
            if at.elapsed() < max_age {
                return Ok((*at, m.clone()));
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| Error::Unavailable(format!("oidc.issuer: {e}")))?;
        let http = self.http();
        let m = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "the sign-on provider cannot be reached: {}",
                    crate::net::root_cause(&e)
                ))
            })?;
        let at = Instant::now();
        *cached = Some((at, m.clone()));
        Ok((at, m))
    }

    fn client(&self, metadata: CoreProviderMetadata) -> CoreClientFromMetadata {
        CoreClient::from_provider_metadata(metadata, self.client_id(), self.client_secret())
            .set_redirect_uri(self.redirect.clone())
    }

    fn client_id(&self) -> ClientId {
        ClientId::new(self.config.client_id.clone())
    }

    fn client_secret(&self) -> Option<ClientSecret> {
        self.config
            .client_secret
            .expose()
            .map(|s| ClientSecret::new(s.to_string()))
    }

    /// The provider's authorization URL for a new sign-in and its `state`.
    pub async fn start(&self, next: Option<String>) -> Result<(String, String)> {
        let (_, metadata) = self.provider(METADATA_TTL).await?;
        let client = self.client(metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let mut pending = self.pending.lock().expect("pending lock");
        pending.retain(|_, p| p.at.elapsed() < PENDING_TTL);
        if pending.len() >= MAX_PENDING {
            return Err(Error::Unavailable(
                "too many sign-ins under way; try again in a minute".into(),
            ));
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                at: Instant::now(),
                verifier,
                nonce,
                next,
            },
        );
        Ok((url.to_string(), state.secret().clone()))
    }

    /// The provider's answer: the code exchanged (with the PKCE verifier)
    /// and the ID token verified. `Ok(Err(_))` is a refusal to audit.
    pub async fn finish(
        &self,
        state: &str,
        code: &str,
    ) -> Result<std::result::Result<Identity, Refusal>> {
        let taken = {
            let mut pending = self.pending.lock().expect("pending lock");
            pending
                .remove(state)
                .filter(|p| p.at.elapsed() < PENDING_TTL)
        };
        let Some(pending) = taken else {
            return Ok(Err(Refusal(
                "unknown, used or expired state (a replayed or forged callback)".into(),
            )));
        };
        let (fetched, metadata) = self.provider(METADATA_TTL).await?;
        let client = self.client(metadata);
        let http = self.http();
        let exchange = match client.exchange_code(AuthorizationCode::new(code.to_string())) {
            Ok(x) => x,
            Err(e) => return Ok(Err(Refusal(format!("no token endpoint: {e}")))),
        };
        let tokens = match exchange
            .set_pkce_verifier(pending.verifier)
            .request_async(&http)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                return Ok(Err(Refusal(format!(
                    "the code was refused: {}",
                    crate::net::root_cause(&e)
                ))))
            }
        };
        let _ = tokens.access_token();
        let Some(id_token) = tokens.id_token() else {
            return Ok(Err(Refusal("the provider sent no ID token".into())));
        };
        let mut verified = self.verified(id_token, &client.id_token_verifier(), &pending.nonce);
        if verified.is_err() && fetched.elapsed() >= KEYS_REFETCH_AFTER {
            // The provider may have rotated its keys since they were
            // fetched: once, with fresh ones (at most once a minute).
            let (_, fresh) = self.provider(KEYS_REFETCH_AFTER).await?;
            let client = self.client(fresh);
            verified = self.verified(id_token, &client.id_token_verifier(), &pending.nonce);
        }
        Ok(verified.map(|mut identity| {
            identity.next = pending.next;
            identity
        }))
    }

    /// Verifies an ID token (signature from the JWKS, `iss`, `aud`, `exp`,
    /// `nonce`) and reads the person from it.
    fn verified(
        &self,
        id_token: &CoreIdToken,
        verifier: &CoreIdTokenVerifier<'_>,
        nonce: &Nonce,
    ) -> std::result::Result<Identity, Refusal> {
        verify(
            id_token,
            verifier,
            nonce,
            &self.config.issuer,
            &self.config.role_claim,
        )
    }

    /// The roles the identity's groups map to, and every role the mapping
    /// manages.
    pub fn roles_for(&self, identity: &Identity) -> (BTreeSet<String>, BTreeSet<String>) {
        mapped_roles(&self.config, &identity.groups)
    }

    pub fn auto_create(&self) -> bool {
        self.config.auto_create_users
    }
}

/// The verification itself, apart from the HTTP (unit-tested with tokens
/// signed here).
pub fn verify(
    id_token: &CoreIdToken,
    verifier: &CoreIdTokenVerifier<'_>,
    nonce: &Nonce,
    issuer: &str,
    role_claim: &str,
) -> std::result::Result<Identity, Refusal> {
    let claims = id_token
        .claims(verifier, nonce)
        .map_err(|e| Refusal(format!("ID token refused: {e}")))?;
    // The role claim is not a standard one: read from the payload the
    // signature was just checked over.
    let groups = if role_claim.is_empty() {
        Vec::new()
    } else {
        let jwt = id_token.to_string();
        let payload = jwt
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .unwrap_or_default();
        match &payload[role_claim] {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    Ok(Identity {
        subject: format!("{issuer} {}", claims.subject().as_str()),
        preferred_username: claims.preferred_username().map(|u| u.as_str().to_string()),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string()),
        email: claims.email().map(|e| e.as_str().to_string()),
        groups,
        next: None,
    })
}

/// The stored subject for a provider's `sub` an administrator links a
/// user to: `{issuer} {sub}`; refused when sign-on is off or `sub` is not
/// 1-255 characters without control characters.
pub fn linked_subject(config: &OidcConfig, sub: &str) -> Result<String> {
    if !config.enabled() {
        return Err(Error::field(
            "sso_subject",
            "single sign-on is not configured ([oidc] issuer)",
        ));
    }
    let n = sub.chars().count();
    if !(1..=255).contains(&n) || sub.chars().any(char::is_control) {
        return Err(Error::field(
            "sso_subject",
            "1 to 255 characters, no control characters",
        ));
    }
    Ok(format!("{} {sub}", config.issuer))
}

/// `(mapped, managed)`: the roles `groups` map to, and every role named by
/// the mapping (the ones sign-on sets).
pub fn mapped_roles(
    config: &OidcConfig,
    groups: &[String],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let managed: BTreeSet<String> = config.role_mapping.values().flatten().cloned().collect();
    let mapped = groups
        .iter()
        .filter_map(|g| config.role_mapping.get(g))
        .flatten()
        .cloned()
        .collect();
    (mapped, managed)
}

/// What signing on did.
pub enum SignOn {
    /// The linked (or newly created) user, enabled and not locked.
    User(UserRow),
    /// Refused, with the reason for the audit trail and the person.
    Refused(String),
}

/// Finds (or creates) the user of a verified identity and sets the roles
/// the mapping manages; audited.
pub async fn sign_on(
    sso: &Sso,
    db: &Db,
    audit: &Audit,
    hasher: &Hasher,
    ctx: &Context,
    identity: &Identity,
) -> Result<SignOn> {
    let subject = identity.subject.clone();
    let linked = db
        .read(move |c| users::by_oidc_subject(c, &subject))
        .await?;
    let user = match linked {
        Some(u) => u,
        None if sso.auto_create() => match create(audit, hasher, ctx, identity).await? {
            Ok(u) => u,
            Err(why) => return Ok(SignOn::Refused(why)),
        },
        None => {
            return Ok(SignOn::Refused(
                "no user is linked to this identity (and oidc.auto_create_users is off)".into(),
            ))
        }
    };
    if !user.enabled {
        return Ok(SignOn::Refused("the user is disabled".into()));
    }
    if super::login::is_locked(&user) {
        return Ok(SignOn::Refused("the user is locked".into()));
    }
    sync_roles(sso, db, audit, ctx, &user, identity).await?;
    Ok(SignOn::User(user))
}

async fn create(
    audit: &Audit,
    hasher: &Hasher,
    ctx: &Context,
    identity: &Identity,
) -> Result<std::result::Result<UserRow, String>> {
    let Some(name) = identity
        .preferred_username
        .clone()
        .filter(|n| super::validate_username(n).is_ok())
    else {
        return Ok(Err(
            "the provider gave no usable preferred_username to name a new user".into(),
        ));
    };
    // Nobody knows this password: the user signs in through the provider
    // (or an administrator sets one).
    let unusable = hasher.hash(Zeroizing::new(random::token())).await?;
    let now = db::now_ms();
    let row = UserRow {
        id: db::new_id(),
        username: name.clone(),
        display_name: identity
            .name
            .clone()
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect(),
        email: identity
            .email
            .clone()
            .filter(|e| e.len() <= 254 && e.contains('@')),
        password_hash: unusable,
        enabled: true,
        locked_until: None,
        password_changed_at: now,
        created_at: now,
        updated_at: now,
        oidc_subject: Some(identity.subject.clone()),
    };
    let event = ctx
        .event("user.create", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), &row.id)
        .detail("username", &name)
        .detail("via", "oidc");
    let created = audit
        .apply(event, move |c| {
            if users::by_username(c, &row.username)?.is_some() {
                return Err(Error::Conflict(format!(
                    "a user named {} already exists and is not linked to this identity; \
                     an administrator can link it",
                    row.username
                )));
            }
            users::insert(c, &row)?;
            Ok(row)
        })
        .await;
    match created {
        Ok(u) => Ok(Ok(u)),
        Err(Error::Conflict(m)) => Ok(Err(m)),
        Err(e) => Err(e),
    }
}

/// Sets the user's unscoped assignments of the managed roles to what the
/// identity maps to (roles that do not exist are skipped and named).
async fn sync_roles(
    sso: &Sso,
    db: &Db,
    audit: &Audit,
    ctx: &Context,
    user: &UserRow,
    identity: &Identity,
) -> Result<()> {
    let (mapped, managed) = sso.roles_for(identity);
    if managed.is_empty() {
        return Ok(());
    }
    let uid = user.id.clone();
    let held: BTreeSet<String> = {
        let uid = uid.clone();
        db.read(move |c| roles::unscoped_roles_of_user(c, &uid))
            .await?
            .into_iter()
            .collect()
    };
    let add: Vec<String> = mapped.difference(&held).cloned().collect();
    let remove: Vec<String> = held
        .intersection(&managed)
        .filter(|r| !mapped.contains(*r))
        .cloned()
        .collect();
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let event = ctx
        .event("user.roles.sync", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), &user.id)
        .detail("via", "oidc")
        .detail("added", &add)
        .detail("removed", &remove);
    audit
        .apply(event, move |c| {
            let now = db::now_ms();
            for role in &add {
                if roles::get_role(c, role)?.is_some() {
                    roles::assign_to_user(c, &db::new_id(), role, &uid, now)?;
                }
            }
            for role in &remove {
                roles::unassign_from_user(c, role, &uid)?;
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
    use std::str::FromStr;

    const ISSUER: &str = "https://id.example.com";

    fn key(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn jwks(k: &ed25519_dalek::SigningKey) -> CoreJsonWebKeySet {
        serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(k.verifying_key().as_bytes()),
        }]}))
        .unwrap()
    }

    /// An ID token signed by `k` with these claims over the defaults.
    fn token(k: &ed25519_dalek::SigningKey, over: serde_json::Value) -> CoreIdToken {
        let now = db::now_ms() / 1000;
        let mut claims = serde_json::json!({
            "iss": ISSUER, "sub": "u-42", "aud": "agentry", "iat": now, "exp": now + 300,
            "nonce": "n-1", "preferred_username": "alice", "groups": ["admins", 7],
        });
        for (name, value) in over.as_object().unwrap() {
            claims[name] = value.clone();
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(k.sign(signed.as_bytes()).to_bytes());
        CoreIdToken::from_str(&format!("{signed}.{sig}")).unwrap()
    }

    fn check(
        t: &CoreIdToken,
        keys: CoreJsonWebKeySet,
        nonce: &str,
    ) -> std::result::Result<Identity, Refusal> {
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            ClientId::new("agentry".into()),
            ClientSecret::new("secret".into()),
            IssuerUrl::new(ISSUER.into()).unwrap(),
            keys,
        )
        .set_allowed_algs([CoreJwsSigningAlgorithm::EdDsa]);
        verify(t, &verifier, &Nonce::new(nonce.into()), ISSUER, "groups")
    }

    #[test]
    fn a_good_token_names_the_subject_and_its_groups() {
        let k = key(1);
        let id = check(&token(&k, serde_json::json!({})), jwks(&k), "n-1").unwrap();
        assert_eq!(id.subject, "https://id.example.com u-42");
        assert_eq!(id.preferred_username.as_deref(), Some("alice"));
        assert_eq!(id.groups, vec!["admins".to_string()], "strings only");
    }

    #[test]
    fn tokens_with_a_wrong_signature_audience_issuer_nonce_or_time_are_refused() {
        let k = key(1);
        let cases = [
            ("signature", token(&key(2), serde_json::json!({})), "n-1"),
            (
                "audience",
                token(&k, serde_json::json!({"aud": "someone-else"})),
                "n-1",
            ),
            (
                "issuer",
                token(&k, serde_json::json!({"iss": "https://evil.example.com"})),
                "n-1",
            ),
            (
                "expired",
                token(&k, serde_json::json!({"exp": 1_000_000})),
                "n-1",
            ),
            ("nonce", token(&k, serde_json::json!({})), "n-2"),
            (
                "no nonce",
                token(&k, serde_json::json!({"nonce": null})),
                "n-1",
            ),
        ];
        for (what, t, nonce) in cases {
            let refused = check(&t, jwks(&k), nonce).err();
            assert!(refused.is_some(), "{what} accepted");
        }
    }

    #[test]
    fn the_mapping_manages_only_the_roles_it_names() {
        let mut c = OidcConfig::default();
        c.role_mapping
            .insert("admins".into(), vec!["system_admin".into()]);
        c.role_mapping.insert(
            "staff".into(),
            vec!["workflow_viewer".into(), "auditor".into()],
        );
        let (mapped, managed) = mapped_roles(&c, &["staff".into(), "unknown".into()]);
        assert_eq!(
            mapped.into_iter().collect::<Vec<_>>(),
            ["auditor", "workflow_viewer"]
        );
        assert_eq!(managed.len(), 3);
    }
}
