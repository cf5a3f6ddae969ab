//! Consents, authorization codes and refresh tokens: what a user allowed,
//! the single-use code that proves it, and the rotating refresh tokens
//! that follow.
//!
//! Codes and refresh tokens are 256 random bits, stored as their SHA-256.
//! A code is good once, for 60 s; redeeming it again revokes the access
//! token and the refresh family its first redemption issued. A refresh
//! token is replaced on every use; presenting a replaced one revokes its
//! whole family (someone else has a copy).

use serde::Serialize;
use utoipa::ToSchema;

use super::clients;
use super::pkce;
use crate::audit::{Context, Outcome};
use crate::crypto::{random, sha256_hex};
use crate::db::oauth_clients::{self as client_repo, AuthMethod, ClientRow};
use crate::db::oauth_grants::{self as repo, CodeRow, GrantRow, RefreshRow};
use crate::db::{self, tokens as token_repo};
use crate::error::{Error, Result};
use crate::identity::{Principal, PrincipalKind};
use crate::rbac;
use crate::timefmt::rfc3339;
use crate::tokens::oauth::{ClientCredentials, Issuer, OAuthError, TokenResponse};

/// How long a code may wait for its redemption.
pub const CODE_TTL_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Refresh token lifetimes (`oauth.refresh_idle_days`,
/// `oauth.refresh_absolute_days`).
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl RefreshPolicy {
    pub fn days(idle: u32, absolute: u32) -> RefreshPolicy {
        RefreshPolicy {
            idle_ms: i64::from(idle) * DAY_MS,
            absolute_ms: i64::from(absolute) * DAY_MS,
        }
    }
}

/// A grant as its user sees it ("Connected apps").
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    /// The MCP server (or agentry's API) the tokens are for.
    pub resource: String,
    pub scope: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// What the token endpoint needs from a form for these grants.
#[derive(Debug, Default)]
pub struct CodeRedemption<'a> {
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// How stale "last used" may get: a use within this long of the recorded
/// one is not written again (each write is on the one writer's path).
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Records the use of a grant and its client, unless recorded lately.
fn touch(
    c: &rusqlite::Connection,
    grant_id: &str,
    grant_used: Option<i64>,
    client_id: &str,
    client_used: Option<i64>,
    now: i64,
) -> Result<()> {
    let stale = |at: Option<i64>| at.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS);
    if stale(grant_used) {
        repo::touch_grant(c, grant_id, now)?;
    }
    if stale(client_used) {
        client_repo::touch(c, client_id, now)?;
    }
    Ok(())
}

fn invalid_grant(m: &str) -> OAuthError {
    OAuthError::InvalidGrant(m.into())
}

/// The grant flows over an issuer (which signs and knows the resources).
pub struct Grants<'a> {
    pub issuer: Issuer<'a>,
    pub refresh: RefreshPolicy,
}

impl Grants<'_> {
    fn db(&self) -> &crate::db::Db {
        self.issuer.db
    }

    /// The client a token request comes from: a public client names
    /// itself (`client_id`) and sends no secret; a confidential one sends
    /// its secret (HTTP Basic or form). Refusals are recorded. `also` runs
    /// in the same read (what the request presents: a code, a refresh
    /// token), so a redemption costs one trip to the database pool, not two.
    async fn client_with<T: Send + 'static>(
        &self,
        ctx: &Context,
        creds: Option<&ClientCredentials>,
        form_client_id: Option<&str>,
        also: impl FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    ) -> std::result::Result<(ClientRow, T), OAuthError> {
        let id = match (creds, form_client_id) {
            (Some(c), _) => c.client_id.as_str(),
            (None, Some(id)) => id,
            (None, None) => {
                return Err(OAuthError::InvalidClient(
                    "client_id or client authentication is required".into(),
                ))
            }
        };
        let i = id.to_string();
        let (row, found) = self
            .db()
            .read(move |c| Ok((client_repo::by_id(c, &i)?, also(c)?)))
            .await?;
        let Some(row) = row else {
            let ev = ctx
                .event("oauth.token", Outcome::Failure)
                .reason("unknown_client")
                .detail("client_id", crate::names::shown(id));
            self.issuer.audit.record(ev).await?;
            return Err(OAuthError::InvalidClient(
                "client authentication failed".into(),
            ));
        };
        let refused = match (&row.auth_method, creds) {
            _ if !row.enabled => Some("client_disabled"),
            (AuthMethod::None, None) => None,
            (AuthMethod::None, Some(_)) => Some("secret_sent_by_public_client"),
            (_, None) => Some("secret_missing"),
            (_, Some(c)) if clients::secret_matches(&row, &c.client_secret) => None,
            (_, Some(_)) => Some("wrong_secret"),
        };
        if let Some(reason) = refused {
            let ev = ctx
                .event("oauth.token", Outcome::Failure)
                .reason(reason)
                .target("oauth_client", &row.id);
            self.issuer.audit.record(ev).await?;
            return Err(OAuthError::InvalidClient(
                "client authentication failed".into(),
            ));
        }
        Ok((row, found))
    }

    /// The consent `user` gave `client` for `resource` and `scope`, if any.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
    ) -> Result<Option<GrantRow>> {
        let (u, c, r, s) = (
            user_id.to_string(),
            client_id.to_string(),
            resource.to_string(),
            scope.to_string(),
        );
        self.db()
            .read(move |conn| repo::find_grant(conn, &u, &c, &r, &s))
            .await
    }

    /// Records the user's consent (or reuses it) and issues a code for
    /// it; returns the code.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_code(
        &self,
        ctx: &Context,
        user_id: &str,
        client: &ClientRow,
        resource: &str,
        scope: &str,
        redirect_uri: &str,
        code_challenge: &str,
    ) -> Result<String> {
        let code = random::token();
        let now = db::now_ms();
        let grant = GrantRow {
            id: db::new_id(),
            user_id: user_id.to_string(),
            client_id: client.id.clone(),
            resource: resource.to_string(),
            scope: scope.to_string(),
            created_at: now,
            last_used_at: None,
        };
        let row = CodeRow {
            code_hash: sha256_hex(code.as_bytes()),
            grant_id: String::new(),
            redirect_uri: redirect_uri.to_string(),
            code_challenge: code_challenge.to_string(),
            created_at: now,
            expires_at: now + CODE_TTL_MS,
            used_at: None,
            family_id: None,
            access_jti: None,
            access_expires_at: None,
        };
        let event = ctx
            .event("oauth.authorize", Outcome::Success)
            .target("oauth_client", &client.id)
            .detail("resource", resource)
            .detail("scope", scope);
        self.issuer
            .audit
            .apply_uncached(event, move |c| {
                let existing = repo::find_grant(
                    c,
                    &grant.user_id,
                    &grant.client_id,
                    &grant.resource,
                    &grant.scope,
                )?;
                let grant_id = match existing {
                    Some(g) => g.id,
                    None => {
                        repo::insert_grant(c, &grant)?;
                        grant.id.clone()
                    }
                };
                repo::insert_code(c, &CodeRow { grant_id, ..row })
            })
            .await?;
        Ok(code)
    }

    /// A user's refusal on the consent page, recorded.
    pub async fn record_denial(
        &self,
        ctx: &Context,
        client: &ClientRow,
        resource: &str,
    ) -> Result<()> {
        let ev = ctx
            .event("oauth.authorize", Outcome::Denied)
            .reason("the user denied the request")
            .target("oauth_client", &client.id)
            .detail("resource", resource);
        self.issuer.audit.record(ev).await.map(|_| ())
    }

    /// The user behind a grant, if still allowed tokens issued at `since`
    /// (ms): enabled, and not cut off after it.
    async fn user_ok(&self, user_id: &str, since: i64) -> Result<Option<Principal>> {
        let state = self
            .issuer
            .principals
            .get(self.db(), self.issuer.audit, PrincipalKind::User, user_id)
            .await?;
        Ok(state
            .filter(|s| s.enabled && s.tokens_not_before.is_none_or(|cut| since > cut))
            .map(|s| Principal {
                kind: PrincipalKind::User,
                id: s.id.clone(),
                name: s.name.clone(),
            }))
    }

    /// A new refresh token of `family` for `grant`; (token, row).
    fn new_refresh(
        grant_id: &str,
        family: (&str, i64),
        scope: &str,
        now: i64,
    ) -> (String, RefreshRow) {
        let token = random::token();
        let row = RefreshRow {
            token_hash: sha256_hex(token.as_bytes()),
            family_id: family.0.to_string(),
            grant_id: grant_id.to_string(),
            scope: scope.to_string(),
            created_at: now,
            family_created_at: family.1,
            rotated_at: None,
            revoked_at: None,
        };
        (token, row)
    }

    fn denied(
        &self,
        ctx: &Context,
        action: &str,
        reason: &str,
        client: &ClientRow,
    ) -> crate::audit::Event {
        ctx.event(action, Outcome::Denied)
            .reason(reason.to_string())
            .target("oauth_client", &client.id)
    }

    /// `grant_type=authorization_code`, from the client that sent it.
    pub async fn redeem(
        &self,
        ctx: &Context,
        creds: Option<&ClientCredentials>,
        form_client_id: Option<&str>,
        r: CodeRedemption<'_>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let hash = r.code.map(|code| sha256_hex(code.as_bytes()));
        let h = hash.clone();
        let (client, found) = self
            .client_with(ctx, creds, form_client_id, move |c| match h {
                Some(h) => repo::code_with_grant(c, &h),
                None => Ok(None),
            })
            .await?;
        let client = &client;
        let Some(hash) = hash else {
            return Err(OAuthError::InvalidRequest("code is required".into()));
        };
        let verifier = r
            .code_verifier
            .ok_or_else(|| OAuthError::InvalidRequest("code_verifier is required (PKCE)".into()))?;
        let Some((row, grant)) = found else {
            return Err(invalid_grant("the code is unknown, expired or used"));
        };
        let now = db::now_ms();
        if row.used_at.is_some() {
            self.revoke_after_reuse(ctx, client, &row).await?;
            return Err(invalid_grant("the code is unknown, expired or used"));
        }
        let refusal = if grant.client_id != client.id {
            Some((
                "code_of_another_client",
                "the code is unknown, expired or used",
            ))
        } else if row.expires_at < now {
            Some(("code_expired", "the code is unknown, expired or used"))
        } else if r.redirect_uri != Some(row.redirect_uri.as_str()) {
            Some((
                "redirect_uri_mismatch",
                "redirect_uri differs from the authorization request's",
            ))
        } else if !pkce::verify(verifier, &row.code_challenge) {
            Some((
                "pkce_failed",
                "the code_verifier does not match the code_challenge",
            ))
        } else if r.resource.is_some_and(|res| res != grant.resource) {
            Some((
                "resource_mismatch",
                "resource differs from the authorization request's",
            ))
        } else {
            None
        };
        if let Some((reason, description)) = refusal {
            let ev = self.denied(ctx, "oauth.token", reason, client);
            self.issuer.audit.record(ev).await?;
            return Err(if reason == "resource_mismatch" {
                OAuthError::InvalidTarget(description.into())
            } else {
                invalid_grant(description)
            });
        }
        let Some(user) = self.user_ok(&grant.user_id, row.created_at).await? else {
            let ev = self.denied(ctx, "oauth.token", "user_disabled", client);
            self.issuer.audit.record(ev).await?;
            return Err(invalid_grant("the user can no longer sign in"));
        };
        let (access, claims) = self.issuer.mint(
            &user.id,
            PrincipalKind::User,
            &client.id,
            &grant.resource,
            &grant.scope,
        )?;
        let family = db::new_id();
        let (refresh, refresh_row) =
            Self::new_refresh(&grant.id, (&family, now), &grant.scope, now);
        let event = ctx
            .event("oauth.token", Outcome::Success)
            .target("user", &user.id)
            .detail("grant_type", "authorization_code")
            .detail("client_id", &client.id)
            .detail("jti", &claims.jti)
            .detail("aud", &claims.aud)
            .detail("scope", &claims.scope);
        let (jti, exp, grant_id, client_id) = (
            claims.jti.clone(),
            claims.exp * 1000,
            grant.id.clone(),
            client.id.clone(),
        );
        let (grant_used, client_used) = (grant.last_used_at, client.last_used_at);
        let hash_again = hash.clone();
        let redeemed = self
            .issuer
            .audit
            .apply_uncached(event, move |c| {
                if !repo::redeem_code(c, &hash, now, &family, &jti, exp)? {
                    // Redeemed a moment ago by someone else.
                    return Err(Error::Conflict("code reused".into()));
                }
                repo::insert_refresh(c, &refresh_row)?;
                touch(c, &grant_id, grant_used, &client_id, client_used, now)
            })
            .await;
        match redeemed {
            Ok(()) => Ok(TokenResponse {
                access_token: access,
                token_type: "Bearer",
                expires_in: self.issuer.lifetime_secs,
                scope: claims.scope,
                refresh_token: Some(refresh),
                issued_token_type: None,
            }),
            Err(Error::Conflict(_)) => {
                // Redeemed in the meantime: this is the second use.
                let h = hash_again;
                if let Some(row) = self.db().read(move |c| repo::code_by_hash(c, &h)).await? {
                    self.revoke_after_reuse(ctx, client, &row).await?;
                }
                Err(invalid_grant("the code is unknown, expired or used"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A used code presented again: whoever has it is not who redeemed it
    /// first (or is replaying). Revoke what the first redemption issued.
    async fn revoke_after_reuse(
        &self,
        ctx: &Context,
        client: &ClientRow,
        row: &CodeRow,
    ) -> Result<()> {
        let now = db::now_ms();
        let event = self
            .denied(
                ctx,
                "oauth.code_reuse",
                "authorization code used twice",
                client,
            )
            .detail("revoked_family", row.family_id.clone().unwrap_or_default());
        let (family, jti, exp, grant) = (
            row.family_id.clone(),
            row.access_jti.clone(),
            row.access_expires_at,
            row.grant_id.clone(),
        );
        self.issuer
            .audit
            .apply(event, move |c| {
                if let Some(f) = family {
                    repo::revoke_family(c, &f, now)?;
                }
                if let (Some(j), Some(e)) = (jti, exp) {
                    let sub = repo::grant_by_id(c, &grant)?
                        .map(|g| g.user_id)
                        .unwrap_or_default();
                    token_repo::revoke_token(c, &j, &sub, now, e)?;
                }
                Ok(())
            })
            .await
    }

    /// `grant_type=refresh_token`: rotates the token, optionally narrowing
    /// the scope.
    pub async fn refresh(
        &self,
        ctx: &Context,
        creds: Option<&ClientCredentials>,
        form_client_id: Option<&str>,
        token: Option<&str>,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let hash = token.map(|t| sha256_hex(t.as_bytes()));
        let h = hash.clone();
        let (client, found) = self
            .client_with(ctx, creds, form_client_id, move |c| match h {
                Some(h) => repo::refresh_with_grant(c, &h),
                None => Ok(None),
            })
            .await?;
        let client = &client;
        let Some(hash) = hash else {
            return Err(OAuthError::InvalidRequest(
                "refresh_token is required".into(),
            ));
        };
        let unusable = || invalid_grant("the refresh token is unknown, expired or revoked");
        let Some((row, grant)) = found else {
            return Err(unusable());
        };
        let now = db::now_ms();
        if grant.client_id != client.id {
            let ev = self.denied(
                ctx,
                "oauth.token",
                "refresh_token_of_another_client",
                client,
            );
            self.issuer.audit.record(ev).await?;
            return Err(unusable());
        }
        if row.revoked_at.is_some() {
            return Err(unusable());
        }
        if row.rotated_at.is_some() {
            let family = row.family_id.clone();
            let ev = self
                .denied(
                    ctx,
                    "oauth.refresh_reuse",
                    "replaced refresh token used again",
                    client,
                )
                .detail("revoked_family", &family);
            self.issuer
                .audit
                .apply(ev, move |c| {
                    repo::revoke_family(c, &family, now).map(|_| ())
                })
                .await?;
            return Err(unusable());
        }
        let expired = if now - row.created_at > self.refresh.idle_ms {
            Some("refresh_idle_expired")
        } else if now - row.family_created_at > self.refresh.absolute_ms {
            Some("refresh_absolute_expired")
        } else if resource.is_some_and(|r| r != grant.resource) {
            return Err(OAuthError::InvalidTarget(
                "resource differs from the grant's".into(),
            ));
        } else {
            None
        };
        if let Some(reason) = expired {
            let ev = self.denied(ctx, "oauth.token", reason, client);
            self.issuer.audit.record(ev).await?;
            return Err(unusable());
        }
        let Some(user) = self.user_ok(&grant.user_id, row.family_created_at).await? else {
            let ev = self.denied(ctx, "oauth.token", "user_disabled", client);
            self.issuer.audit.record(ev).await?;
            return Err(unusable());
        };
        // Scope only narrows: what is asked ⊆ the token's, and still held.
        let current: Vec<String> = row.scope.split(' ').map(str::to_string).collect();
        let asked = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            None => current.clone(),
            Some(s) => {
                let asked: Vec<String> = s
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(wider) = asked
                    .iter()
                    .find(|t| !rbac::patterns::any_grants(&current, t))
                {
                    return Err(OAuthError::InvalidScope(format!(
                        "{:?} is not in the refresh token's scope; a refresh can only narrow it",
                        crate::names::shown(wider)
                    )));
                }
                asked
            }
        };
        let target = self.issuer.target(Some(&grant.resource)).await;
        let allows = target.ok().and_then(|t| t.allows);
        let held = rbac::token_patterns_of(self.issuer.policy, self.db(), self.issuer.audit, &user)
            .await?;
        let granted = super::authorize::grantable(&held, &asked, allows.as_deref());
        if granted.is_empty() {
            let ev = self.denied(ctx, "oauth.token", "nothing_left_to_grant", client);
            self.issuer.audit.record(ev).await?;
            return Err(OAuthError::InvalidScope(
                "the user no longer holds any of the token's permissions".into(),
            ));
        }
        let scope = granted.join(" ");
        let (access, claims) = self.issuer.mint(
            &user.id,
            PrincipalKind::User,
            &client.id,
            &grant.resource,
            &scope,
        )?;
        let (next, next_row) = Self::new_refresh(
            &grant.id,
            (&row.family_id, row.family_created_at),
            &scope,
            now,
        );
        let event = ctx
            .event("oauth.token", Outcome::Success)
            .target("user", &user.id)
            .detail("grant_type", "refresh_token")
            .detail("client_id", &client.id)
            .detail("jti", &claims.jti)
            .detail("aud", &claims.aud)
            .detail("scope", &claims.scope);
        let (grant_id, client_id) = (grant.id.clone(), client.id.clone());
        let (grant_used, client_used) = (grant.last_used_at, client.last_used_at);
        let rotated = self
            .issuer
            .audit
            .apply_uncached(event, move |c| {
                if !repo::rotate_refresh(c, &hash, now)? {
                    return Err(Error::Conflict("refresh token used twice".into()));
                }
                repo::insert_refresh(c, &next_row)?;
                touch(c, &grant_id, grant_used, &client_id, client_used, now)
            })
            .await;
        match rotated {
            Ok(()) => Ok(TokenResponse {
                access_token: access,
                token_type: "Bearer",
                expires_in: self.issuer.lifetime_secs,
                scope: claims.scope,
                refresh_token: Some(next),
                issued_token_type: None,
            }),
            Err(Error::Conflict(_)) => Err(unusable()),
            Err(e) => Err(e.into()),
        }
    }

    /// A user's grants, with their clients' names.
    pub async fn of_user(&self, user_id: &str) -> Result<Vec<GrantView>> {
        let u = user_id.to_string();
        let rows = self
            .db()
            .read(move |c| {
                let grants = repo::grants_of_user(c, &u)?;
                let mut out = Vec::with_capacity(grants.len());
                for g in grants {
                    let name = client_repo::by_id(c, &g.client_id)?
                        .map(|c| c.name)
                        .unwrap_or_default();
                    out.push((g, name));
                }
                Ok(out)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(g, client_name)| GrantView {
                id: g.id,
                client_id: g.client_id,
                client_name,
                resource: g.resource,
                scope: g.scope,
                created_at: rfc3339(g.created_at),
                last_used_at: g.last_used_at.map(rfc3339),
            })
            .collect())
    }

    /// Revokes a user's grant: its refresh tokens and codes go with it,
    /// and the consent is forgotten.
    pub async fn revoke(&self, ctx: &Context, user_id: &str, grant_id: &str) -> Result<()> {
        let event = ctx
            .event("oauth.grant_revoke", Outcome::Success)
            .target("user", user_id)
            .detail("grant_id", grant_id);
        let (u, g) = (user_id.to_string(), grant_id.to_string());
        self.issuer
            .audit
            .apply(event, move |c| {
                match repo::grant_by_id(c, &g)? {
                    Some(row) if row.user_id == u => {}
                    _ => return Err(Error::NotFound(format!("grant {g}"))),
                }
                repo::delete_grant(c, &g).map(|_| ())
            })
            .await
    }
}
