//! `/oauth/*` and `/.well-known/*`: the client-credentials grant,
//! introspection, revocation, the JWKS and the server metadata.
//!
//! Errors here follow RFC 6749 §5.2 (`{"error", "error_description"}`),
//! which is what OAuth client libraries parse, rather than problem+json.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Context;
use crate::identity::{Principal, PrincipalKind};
use crate::oauth::grants::CodeRedemption;
use crate::rbac::decide::{Purpose, Question};
use crate::rbac::Permission;
use crate::tokens::jwt::Claims;
use crate::tokens::keys::Jwks;
use crate::tokens::oauth::{ClientCredentials, OAuthError, TokenResponse};
use crate::tokens::{client_keys, exchange};
use crate::web::auth::Caller;
use crate::web::context::audit_context;
use crate::web::state::{self, WebState};

/// Lets a caller introspect tokens that are neither its own nor addressed
/// to it.
const TOKEN_INTROSPECT: &str = Permission::TokenIntrospect.as_str();

/// Form fields of the token, introspection and revocation endpoints.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OAuthForm {
    pub grant_type: Option<String>,
    /// Space-separated permissions wanted; the token carries those the
    /// client holds.
    pub scope: Option<String>,
    /// RFC 8707 audience (an absolute URI).
    pub resource: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The token to introspect or revoke.
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    /// `authorization_code`: the code, the redirect URI it was sent to and
    /// the PKCE verifier.
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    /// `refresh_token`: the refresh token.
    pub refresh_token: Option<String>,
    /// `private_key_jwt` (RFC 7523): the assertion type
    /// (`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) and the
    /// signed assertion.
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    /// Token exchange (RFC 8693): the token to exchange and its type
    /// (`urn:ietf:params:oauth:token-type:access_token`), and the type
    /// wanted (the same, if given).
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    pub error: &'static str,
    pub error_description: String,
}

pub fn no_store(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn error_response(e: OAuthError) -> HttpResponse {
    let status = match &e {
        OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        OAuthError::Server(crate::error::Error::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::Server(inner) => {
            tracing::error!(error = %inner, "oauth endpoint failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"agentry\""));
    }
    no_store(res.json(OAuthErrorBody {
        error: e.code(),
        error_description: e.description(),
    }))
}

/// Parses a form body by hand so that every failure is an OAuth error, and
/// refuses repeated parameters (RFC 6749 §3.2).
fn parse_form(req: &HttpRequest, body: &[u8]) -> Result<OAuthForm, OAuthError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("the form cannot be parsed".into()))?;
    let mut form = OAuthForm::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in pairs {
        if !seen.insert(k.clone()) {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {k} is repeated"
            )));
        }
        let slot = match k.as_str() {
            "grant_type" => &mut form.grant_type,
            "scope" => &mut form.scope,
            "resource" => &mut form.resource,
            "client_id" => &mut form.client_id,
            "client_secret" => &mut form.client_secret,
            "token" => &mut form.token,
            "token_type_hint" => &mut form.token_type_hint,
            "code" => &mut form.code,
            "redirect_uri" => &mut form.redirect_uri,
            "code_verifier" => &mut form.code_verifier,
            "refresh_token" => &mut form.refresh_token,
            "client_assertion_type" => &mut form.client_assertion_type,
            "client_assertion" => &mut form.client_assertion,
            "subject_token" => &mut form.subject_token,
            "subject_token_type" => &mut form.subject_token_type,
            "requested_token_type" => &mut form.requested_token_type,
            _ => continue, // RFC 6749 §3.2: unknown parameters are ignored
        };
        *slot = Some(v);
    }
    Ok(form)
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: each part
/// form-url-encoded) or from the form; both at once is an error.
fn client_credentials(
    req: &HttpRequest,
    form: &OAuthForm,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let basic = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or("");
            match text.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    let bad =
                        || OAuthError::InvalidClient("malformed HTTP Basic credentials".into());
                    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
                    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
                    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
                    let unescape = |s: &str| {
                        percent_encoding::percent_decode_str(&s.replace('+', " "))
                            .decode_utf8()
                            .map(|c| c.into_owned())
                    };
                    Some(ClientCredentials {
                        client_id: unescape(id).map_err(|_| bad())?,
                        client_secret: unescape(secret).map_err(|_| bad())?,
                        assertion: None,
                    })
                }
                _ => None,
            }
        }
    };
    let posted = form.client_secret.as_ref().map(|secret| ClientCredentials {
        client_id: form.client_id.clone().unwrap_or_default(),
        client_secret: secret.clone(),
        assertion: None,
    });
    let asserted = match (&form.client_assertion_type, &form.client_assertion) {
        (None, None) => None,
        (Some(t), Some(a)) if t == client_keys::ASSERTION_TYPE => Some(ClientCredentials {
            client_id: form.client_id.clone().unwrap_or_default(),
            client_secret: String::new(),
            assertion: Some(a.clone()),
        }),
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidClient(format!(
                "client_assertion_type must be {}",
                client_keys::ASSERTION_TYPE
            )))
        }
        _ => {
            return Err(OAuthError::InvalidRequest(
                "client_assertion and client_assertion_type go together".into(),
            ))
        }
    };
    match (basic, posted, asserted) {
        (b, p, a)
            if [b.is_some(), p.is_some(), a.is_some()]
                .iter()
                .filter(|x| **x)
                .count()
                > 1 =>
        {
            Err(OAuthError::InvalidRequest(
                "use one client authentication method, not two".into(),
            ))
        }
        (b, p, a) => Ok(b.or(p).or(a)),
    }
}

/// The 429 answer of the OAuth endpoints: `temporarily_unavailable`, with
/// `Retry-After`.
pub fn too_many(retry_after_secs: u64, description: &str) -> HttpResponse {
    no_store(
        HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, retry_after_secs.to_string()))
            .json(OAuthErrorBody {
                error: "temporarily_unavailable",
                error_description: description.into(),
            }),
    )
}

fn rate_limited(st: &WebState, req: &HttpRequest) -> Option<HttpResponse> {
    st.token_limiter
        .check(state::client_ip(req))
        .err()
        .map(|secs| too_many(secs, "too many requests from this address; retry later"))
}

/// OAuth 2.0 token endpoint: client credentials (an agent's id and API key,
/// or a `private_key_jwt` assertion), authorization code with PKCE,
/// refresh token, and token exchange (RFC 8693).
#[utoipa::path(
    operation_id = "oauth.issue_token",
    tag = "oauth",
    request_body(content = OAuthForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = OAuthErrorBody),
        (status = 401, body = OAuthErrorBody),
        (status = 429, body = OAuthErrorBody)
    )
)]
#[post("/oauth/token")]
pub async fn issue_token(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let st = state::of(&req);
    if let Some(res) = rate_limited(&st, &req) {
        return res;
    }
    let run = async {
        let form = parse_form(&req, &body)?;
        let creds = client_credentials(&req, &form)?;
        let ctx = audit_context(&req, None);
        let grants = st.grants();
        match form.grant_type.as_deref() {
            Some("authorization_code") => {
                let r = CodeRedemption {
                    code: form.code.as_deref(),
                    redirect_uri: form.redirect_uri.as_deref(),
                    code_verifier: form.code_verifier.as_deref(),
                    resource: form.resource.as_deref(),
                };
                grants
                    .redeem(&ctx, creds.as_ref(), form.client_id.as_deref(), r)
                    .await
            }
            Some("refresh_token") => {
                grants
                    .refresh(
                        &ctx,
                        creds.as_ref(),
                        form.client_id.as_deref(),
                        form.refresh_token.as_deref(),
                        form.scope.as_deref(),
                        form.resource.as_deref(),
                    )
                    .await
            }
            Some(exchange::GRANT_TYPE) => {
                let creds = creds.ok_or_else(|| {
                    OAuthError::InvalidClient("client authentication is required".into())
                })?;
                let issuer = &grants.issuer;
                let agent = issuer
                    .authenticate_client(&ctx, &creds, "oauth.exchange")
                    .await?;
                let ctx = audit_context(&req, Some(&agent));
                let r = exchange::ExchangeRequest {
                    subject_token: form.subject_token.as_deref(),
                    subject_token_type: form.subject_token_type.as_deref(),
                    requested_token_type: form.requested_token_type.as_deref(),
                    resource: form.resource.as_deref(),
                    scope: form.scope.as_deref(),
                };
                issuer.exchange(&ctx, &agent, r).await
            }
            grant_type => {
                let creds = creds.ok_or_else(|| {
                    OAuthError::InvalidClient("client authentication is required".into())
                })?;
                grants
                    .issuer
                    .token(
                        &ctx,
                        grant_type,
                        &creds,
                        form.scope.as_deref(),
                        form.resource.as_deref(),
                    )
                    .await
            }
        }
    };
    match run.await {
        Ok(t) => no_store(HttpResponse::Ok().json(t)),
        Err(e) => error_response(e),
    }
}

/// The caller of introspection or revocation: an authenticated OAuth client,
/// or any API caller (bearer or session).
enum Authorized {
    Client(Principal, Context),
    Caller(Box<Caller>),
}

impl Authorized {
    fn ctx(&self) -> &Context {
        match self {
            Authorized::Client(_, ctx) => ctx,
            Authorized::Caller(c) => &c.ctx,
        }
    }

    /// Whether this caller holds `permission` (within its token's scope),
    /// through the one decision path; a refusal is recorded.
    async fn holds(&self, st: &WebState, permission: &str) -> Result<bool, OAuthError> {
        let (principal, scope) = match self {
            Authorized::Client(p, _) => (p, None),
            Authorized::Caller(c) => (&c.principal, c.scope.as_deref()),
        };
        let subject = crate::rbac::subject_of(principal);
        let question = Question {
            subject: &subject,
            permission,
            resource: None,
            scope,
        };
        let decision = st
            .decider()
            .decide_recorded(self.ctx(), Purpose::Guard, question)
            .await?;
        Ok(decision.allowed)
    }

    /// The agent this caller is, if it is one.
    fn agent_id(&self) -> Option<&str> {
        let p = match self {
            Authorized::Client(p, _) => p,
            Authorized::Caller(c) => &c.principal,
        };
        (p.kind == PrincipalKind::Agent).then_some(p.id.as_str())
    }
}

async fn authorize(
    req: &HttpRequest,
    st: &WebState,
    form: &OAuthForm,
    action: &str,
) -> Result<Authorized, OAuthError> {
    if let Some(creds) = client_credentials(req, form)? {
        let ctx = audit_context(req, None);
        let agent = st
            .issuer()
            .authenticate_client(&ctx, &creds, action)
            .await?;
        let ctx = audit_context(req, Some(&agent));
        return Ok(Authorized::Client(agent, ctx));
    }
    match Caller::from_request(req, &mut Payload::None).await {
        Ok(c) => Ok(Authorized::Caller(Box::new(c))),
        Err(_) => Err(OAuthError::InvalidClient(
            "authentication is required".into(),
        )),
    }
}

/// RFC 7662 §4: an active token's contents are told only to its own
/// client, to the resource server it is addressed to, or to a holder of
/// `token:introspect`; to anyone else the token is simply inactive, so
/// introspection is no oracle for other principals' tokens.
async fn may_introspect(
    st: &WebState,
    who: &Authorized,
    claims: &Claims,
) -> Result<bool, OAuthError> {
    let Some(agent) = who.agent_id() else {
        return who.holds(st, TOKEN_INTROSPECT).await;
    };
    if agent == claims.client_id {
        return Ok(true);
    }
    // The resource server: the agent a registered MCP server authenticates
    // as, for tokens addressed to that server.
    let server = st.mcp_servers.by_resource(&claims.aud).await?;
    if server.is_some_and(|s| s.agent_id.as_deref() == Some(agent)) {
        return Ok(true);
    }
    who.holds(st, TOKEN_INTROSPECT).await
}

#[derive(Serialize, ToSchema, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// RFC 7662 token introspection (needs an authenticated caller). An
/// active token is described only to its own client, the resource server
/// it is addressed to, or a holder of `token:introspect`; anyone else is
/// told `{"active": false}`.
#[utoipa::path(
    operation_id = "oauth.introspect",
    tag = "oauth",
    request_body(content = OAuthForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody))
)]
#[post("/oauth/introspect")]
pub async fn introspect(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let st = state::of(&req);
    if let Some(res) = rate_limited(&st, &req) {
        return res;
    }
    let run = async {
        let form = parse_form(&req, &body)?;
        let who = authorize(&req, &st, &form, "oauth.introspect").await?;
        let token = form
            .token
            .as_deref()
            .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        let claims = match st.issuer().introspect(token).await? {
            Some(c) if may_introspect(&st, &who, &c).await? => Some(c),
            _ => None,
        };
        Ok::<_, OAuthError>(match claims {
            None => Introspection::default(),
            Some(c) => Introspection {
                active: true,
                scope: Some(c.scope),
                client_id: Some(c.client_id),
                sub: Some(c.sub),
                aud: Some(c.aud),
                iss: Some(c.iss),
                exp: Some(c.exp),
                iat: Some(c.iat),
                nbf: Some(c.nbf),
                jti: Some(c.jti),
                token_type: Some("Bearer"),
            },
        })
    };
    match run.await {
        Ok(i) => no_store(HttpResponse::Ok().json(i)),
        Err(e) => error_response(e),
    }
}

/// RFC 7009 revocation: by the client the token was issued to, or by a
/// caller holding `key:manage`. A revoked token is refused until it expires.
#[utoipa::path(
    operation_id = "oauth.revoke",
    tag = "oauth",
    request_body(content = OAuthForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody))
)]
#[post("/oauth/revoke")]
pub async fn revoke(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let st = state::of(&req);
    if let Some(res) = rate_limited(&st, &req) {
        return res;
    }
    let run = async {
        let form = parse_form(&req, &body)?;
        let who = authorize(&req, &st, &form, "oauth.revoke").await?;
        let token = form
            .token
            .as_deref()
            .ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
        let (ctx, admin, client) = match &who {
            Authorized::Client(agent, ctx) => (ctx.clone(), false, Some(agent.id.clone())),
            Authorized::Caller(c) => (
                c.ctx.clone(),
                c.require(&st, Permission::KeyManage.as_str()).await.is_ok(),
                None,
            ),
        };
        st.issuer()
            .revoke(&ctx, token, |claims| {
                admin || client.as_deref() == Some(claims.sub.as_str())
            })
            .await
    };
    match run.await {
        Ok(()) => no_store(HttpResponse::Ok().finish()),
        Err(e) => error_response(e),
    }
}

/// The public signing keys (RFC 7517), including retired keys whose tokens
/// have not all expired yet.
#[utoipa::path(operation_id = "oauth.jwks", tag = "oauth", responses((status = 200, body = Jwks)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(req: HttpRequest) -> HttpResponse {
    let st = state::of(&req);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(st.signing_keys.jwks())
}

/// RFC 8414 authorization server metadata. No empty arrays: a field with
/// nothing to say is left out.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub authorization_response_iss_parameter_supported: bool,
    pub client_id_metadata_document_supported: bool,
}

/// RFC 8414 authorization server metadata.
#[utoipa::path(operation_id = "oauth.metadata", tag = "oauth", responses((status = 200, body = ServerMetadata)))]
#[get("/.well-known/oauth-authorization-server")]
pub async fn metadata(req: HttpRequest) -> HttpResponse {
    let st = state::of(&req);
    let base = st.issuer_url.as_str();
    let secrets = vec!["client_secret_basic", "client_secret_post"];
    let registration = (st.config.oauth.dynamic_registration
        != crate::config::DynamicRegistration::Off)
        .then(|| format!("{base}/oauth/register"));
    // Every permission agentry checks, plus offline_access (a refresh
    // token comes with every authorization code).
    let mut scopes: Vec<String> = Permission::ALL
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
    scopes.push(crate::oauth::authorize::OFFLINE_ACCESS.to_string());
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(ServerMetadata {
            client_id_metadata_document_supported: st.document_policy().enabled,
            issuer: base.to_string(),
            authorization_endpoint: format!("{base}/oauth/authorize"),
            token_endpoint: format!("{base}/oauth/token"),
            registration_endpoint: registration,
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            introspection_endpoint: format!("{base}/oauth/introspect"),
            revocation_endpoint: format!("{base}/oauth/revoke"),
            scopes_supported: scopes,
            response_types_supported: vec!["code"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
                exchange::GRANT_TYPE,
            ],
            code_challenge_methods_supported: vec![crate::oauth::pkce::S256],
            token_endpoint_auth_methods_supported: vec![
                "none",
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            token_endpoint_auth_signing_alg_values_supported: client_keys::ALGORITHMS.to_vec(),
            introspection_endpoint_auth_methods_supported: secrets.clone(),
            revocation_endpoint_auth_methods_supported: secrets,
            authorization_response_iss_parameter_supported: true,
        })
}

/// Registers this module's routes, outside `/api/v1`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(issue_token)
        .service(introspect)
        .service(revoke)
        .service(jwks)
        .service(metadata);
}
