//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4), introspection
//! (RFC 7662) and revocation (RFC 7009).
//!
//! The client id is the agent's id and the client secret is one of its API
//! keys. Errors are RFC 6749 §5.2 codes; the web layer renders them.

use serde::Serialize;

use super::cache::TokenCache;
use super::client_keys;
use super::jwt::{self, Claims};
use super::keys::SigningKeys;
use crate::audit::{Audit, Context, Outcome};
use crate::db::{tokens as repo, Db};
use crate::error::Error;
use crate::identity::api_keys::{self, ApiKeyCache, KeyCheck};
use crate::identity::principals::{PrincipalCache, PrincipalState};
use crate::identity::{Principal, PrincipalKind};
use crate::mcp::McpServers;
use crate::rbac::view::PolicyView;
use crate::rbac::{self, patterns};

/// RFC 6749 §5.2 error codes (plus RFC 8707 `invalid_target`).
#[derive(Debug)]
pub enum OAuthError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    InvalidScope(String),
    InvalidTarget(String),
    UnsupportedGrantType(String),
    Server(Error),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::Server(_) => "server_error",
        }
    }

    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(m)
            | OAuthError::InvalidClient(m)
            | OAuthError::InvalidGrant(m)
            | OAuthError::InvalidScope(m)
            | OAuthError::InvalidTarget(m)
            | OAuthError::UnsupportedGrantType(m) => m.clone(),
            OAuthError::Server(_) => "the server could not complete the request".into(),
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        OAuthError::Server(e)
    }
}

/// Client credentials as presented (HTTP Basic or form fields).
#[derive(Debug, Default)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// A `private_key_jwt` client assertion (RFC 7523), instead of the
    /// secret.
    pub assertion: Option<String>,
}

/// What the token endpoint and the others need to know.
pub struct Issuer<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub keys: &'a SigningKeys,
    pub cache: &'a TokenCache,
    pub principals: &'a PrincipalCache,
    pub api_keys: &'a ApiKeyCache,
    pub policy: &'a PolicyView,
    /// `iss`, and the default audience (the appliance itself).
    pub issuer: &'a str,
    pub lifetime_secs: i64,
    /// The registered MCP servers (the other audiences).
    pub servers: &'a McpServers,
    /// `oauth.require_registered_resource`.
    pub require_registered_resource: bool,
}

/// Who a token is for: its `aud`, and the permission patterns a token for
/// it may carry (`None`: any).
pub struct Target {
    pub aud: String,
    pub allows: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    /// For the authorization-code and refresh grants: single use, replaced
    /// by a new one on every refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// For a token exchange (RFC 8693): the kind of token issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// A scope token is a permission (`resource:action`), `resource:*` or `*`.
fn valid_scope_token(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:*-.".contains(&b))
}

/// RFC 8707: an absolute URI without a fragment.
fn valid_resource(r: &str) -> bool {
    r.len() <= 512
        && (r.starts_with("https://") || r.starts_with("http://") || r.starts_with("urn:"))
        && !r.contains('#')
        && !r.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Issuer<'_> {
    /// The audience a request's `resource` names (RFC 8707): agentry's own
    /// API when absent, else that URI, which must be agentry's or an
    /// enabled registered MCP server's unless
    /// `oauth.require_registered_resource` is off.
    pub async fn target(&self, resource: Option<&str>) -> Result<Target, OAuthError> {
        let r = match resource {
            None => None,
            Some(r) if valid_resource(r) => Some(r),
            Some(_) => {
                return Err(OAuthError::InvalidTarget(
                    "resource must be an absolute URI without a fragment".into(),
                ))
            }
        };
        let Some(r) = r.filter(|r| *r != self.issuer) else {
            return Ok(Target {
                aud: self.issuer.to_string(),
                allows: None,
            });
        };
        if let Some(server) = self.servers.by_resource(r).await? {
            let scopes = server.scopes_supported;
            return Ok(Target {
                aud: r.to_string(),
                allows: (!scopes.is_empty()).then_some(scopes),
            });
        }
        if self.require_registered_resource {
            return Err(OAuthError::InvalidTarget(format!(
                "{} is neither agentry's API ({}) nor an enabled registered MCP server",
                r.chars().take(128).collect::<String>(),
                self.issuer
            )));
        }
        Ok(Target {
            aud: r.to_string(),
            allows: None,
        })
    }

    pub fn verify_context(&self) -> jwt::VerifyContext<'_> {
        jwt::VerifyContext {
            db: self.db,
            audit: self.audit,
            keys: self.keys,
            cache: self.cache,
            principals: self.principals,
            issuer: self.issuer,
        }
    }

    /// Verifies an access token meant for the appliance itself.
    pub async fn verify(
        &self,
        token: &str,
    ) -> crate::error::Result<
        Result<(std::sync::Arc<Claims>, std::sync::Arc<PrincipalState>), jwt::TokenFailure>,
    > {
        jwt::verify(&self.verify_context(), token, self.issuer).await
    }

    /// Authenticates an agent as an OAuth client; refusals are audited.
    pub async fn authenticate_client(
        &self,
        ctx: &Context,
        creds: &ClientCredentials,
        action: &str,
    ) -> Result<Principal, OAuthError> {
        let refuse = |reason: &str| {
            ctx.event(action, Outcome::Failure)
                .reason(reason.to_string())
                .detail("client_id", crate::names::shown(&creds.client_id))
        };
        if let Some(assertion) = &creds.assertion {
            let token_endpoint = format!("{}/oauth/token", self.issuer);
            let audiences = [token_endpoint.as_str(), self.issuer];
            let client_id = Some(creds.client_id.as_str()).filter(|c| !c.is_empty());
            let reason =
                match client_keys::verify(self.db, assertion, client_id, &audiences).await? {
                    Ok(agent) => {
                        let state = self
                            .principals
                            .get(self.db, self.audit, PrincipalKind::Agent, &agent)
                            .await?;
                        match state {
                            Some(s) if s.enabled => {
                                return Ok(Principal {
                                    kind: PrincipalKind::Agent,
                                    id: s.id.clone(),
                                    name: s.name.clone(),
                                })
                            }
                            _ => "agent_disabled",
                        }
                    }
                    Err(reason) => reason,
                };
            self.audit.record(refuse(reason)).await?;
            return Err(OAuthError::InvalidClient(
                "client authentication failed".into(),
            ));
        }
        let lookup = api_keys::KeyLookup {
            db: self.db,
            audit: self.audit,
            principals: self.principals,
            cache: self.api_keys,
        };
        let reason = match api_keys::authenticate(&lookup, &creds.client_secret).await? {
            KeyCheck::Valid { principal, .. }
                if principal.kind == PrincipalKind::Agent && principal.id == creds.client_id =>
            {
                return Ok(principal)
            }
            KeyCheck::Valid { .. } => "secret_of_another_principal",
            KeyCheck::Refused { reason, .. } => reason.as_str(),
        };
        self.audit.record(refuse(reason)).await?;
        Err(OAuthError::InvalidClient(
            "client authentication failed".into(),
        ))
    }

    /// The client-credentials grant.
    pub async fn token(
        &self,
        ctx: &Context,
        grant_type: Option<&str>,
        creds: &ClientCredentials,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        match grant_type {
            None => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
            Some("client_credentials") => {}
            Some(other) => {
                return Err(OAuthError::UnsupportedGrantType(format!(
                    "grant_type {} is not supported; use client_credentials, authorization_code or refresh_token",
                    crate::names::shown(other)
                )))
            }
        }
        let agent = self.authenticate_client(ctx, creds, "oauth.token").await?;
        let agent_ctx = Context {
            actor_type: crate::audit::ActorType::Agent,
            actor_id: Some(agent.id.clone()),
            actor_name: Some(agent.name.clone()),
            ..ctx.clone()
        };
        let target = self.target(resource).await?;
        let mut held = rbac::token_patterns_of(self.policy, self.db, self.audit, &agent).await?;
        if let Some(allows) = &target.allows {
            // Only what the resource says a token for it may carry.
            held = patterns::intersect(&held, allows);
        }
        // What to say when nothing is left to put in the token: (audit
        // reason, error description).
        let (granted, nothing): (Vec<String>, (&str, &str)) =
            match scope.map(str::trim).filter(|s| !s.is_empty()) {
                None => (
                    held.clone(),
                    (
                        "the client holds no permission",
                        "the client holds no permission to put in a token; assign it a role first",
                    ),
                ),
                Some(s) => {
                    let requested: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
                    if let Some(bad) = requested.iter().find(|t| !valid_scope_token(t)) {
                        return Err(OAuthError::InvalidScope(format!("malformed scope {bad:?}")));
                    }
                    let granted: Vec<String> = requested
                        .into_iter()
                        .filter(|t| patterns::any_grants(&held, t))
                        .map(str::to_string)
                        .collect();
                    (
                        granted,
                        (
                            "no requested scope is held",
                            "the client holds none of the requested scopes",
                        ),
                    )
                }
            };
        if granted.is_empty() {
            // A token that carries nothing is refused, not issued empty.
            let (reason, description) = nothing;
            let ev = agent_ctx
                .event("oauth.token", Outcome::Denied)
                .reason(reason);
            self.audit.record(ev).await?;
            return Err(OAuthError::InvalidScope(description.into()));
        }
        let (token, claims) = self.mint(
            &agent.id,
            PrincipalKind::Agent,
            &agent.id,
            &target.aud,
            &granted.join(" "),
        )?;
        let ev = agent_ctx
            .event("oauth.token", Outcome::Success)
            .target(crate::identity::PrincipalKind::Agent.as_str(), &agent.id)
            .detail("jti", &claims.jti)
            .detail("aud", &claims.aud)
            .detail("scope", &claims.scope);
        self.audit.record(ev).await?;
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: self.lifetime_secs,
            scope: claims.scope,
            refresh_token: None,
            issued_token_type: None,
        })
    }

    /// Signs claims made elsewhere (a token exchange's).
    pub fn mint_claims(&self, claims: &Claims) -> crate::error::Result<String> {
        jwt::sign(self.keys, claims)
    }

    /// The claims of a new access token for `sub` (of kind `sub_type`),
    /// issued to `client_id`, for `aud`, carrying `scope`, valid from now
    /// for the configured lifetime.
    pub fn claims(
        &self,
        sub: &str,
        sub_type: PrincipalKind,
        client_id: &str,
        aud: &str,
        scope: &str,
    ) -> Claims {
        let now = jwt::now_secs();
        Claims {
            iss: self.issuer.to_string(),
            sub: sub.to_string(),
            sub_type,
            aud: aud.to_string(),
            exp: now + self.lifetime_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.to_string(),
            client_id: client_id.to_string(),
            act: None,
        }
    }

    /// [`Self::claims`], signed.
    pub fn mint(
        &self,
        sub: &str,
        sub_type: PrincipalKind,
        client_id: &str,
        aud: &str,
        scope: &str,
    ) -> crate::error::Result<(String, Claims)> {
        let claims = self.claims(sub, sub_type, client_id, aud, scope);
        Ok((jwt::sign(self.keys, &claims)?, claims))
    }

    /// RFC 7662: the token's claims when it is active, else `None`. Any
    /// audience is accepted here: resource servers introspect their tokens.
    pub async fn introspect(&self, token: &str) -> crate::error::Result<Option<Claims>> {
        let aud = match jsonwebtoken::dangerous::insecure_decode::<Claims>(token) {
            Ok(d) => d.claims.aud,
            Err(_) => return Ok(None),
        };
        // The audience read unverified is only used to pick the audience
        // to verify against; the signature check below covers it.
        Ok(jwt::verify(&self.verify_context(), token, &aud)
            .await?
            .ok()
            .map(|(claims, _)| (*claims).clone()))
    }

    /// RFC 7009: revokes an access token if it is valid and `allowed` says
    /// the caller may; unknown or invalid tokens are silently ignored.
    pub async fn revoke(
        &self,
        ctx: &Context,
        token: &str,
        allowed: impl Fn(&Claims) -> bool,
    ) -> Result<(), OAuthError> {
        let Some(claims) = self.introspect(token).await? else {
            return Ok(());
        };
        if !allowed(&claims) {
            return Err(OAuthError::InvalidClient(
                "this token was not issued to the authenticated client".into(),
            ));
        }
        let event = ctx
            .event("oauth.revoke", Outcome::Success)
            .target(crate::identity::PrincipalKind::Agent.as_str(), &claims.sub)
            .detail("jti", &claims.jti);
        let (jti, sub, exp) = (claims.jti.clone(), claims.sub.clone(), claims.exp * 1000);
        self.audit
            .apply(event, move |c| {
                repo::revoke_token(c, &jti, &sub, crate::db::now_ms(), exp)
            })
            .await?;
        Ok(())
    }
}
