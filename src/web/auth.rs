//! Extractors that say who is calling.
//!
//! * [`SessionUser`] for UI pages: a valid session cookie, or a redirect to
//!   the login page.
//! * [`Caller`] for the JSON API: one [`Principal`] whatever the credential.
//!   A session cookie is accepted, and then every state-changing call must
//!   carry the page's CSRF token in `X-CSRF-Token`.

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::context::audit_context;
use super::cookies;
use super::csrf;
use super::problem::ApiError;
use super::state::{self, WebState};
use super::ui::error::UiError;
use crate::audit::{Context, Outcome};
use crate::identity::api_keys;
use crate::identity::sessions::{self, ActiveSession, Stage};
use crate::identity::{Principal, PrincipalKind};
use crate::rbac;
use crate::rbac::decide::{Purpose, Question};
use crate::rbac::Permission;

/// A logged-in browser session.
/// Which admin areas the signed-in user may use (the navigation shows only
/// these; every handler checks again).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nav {
    pub users: bool,
    pub agents: bool,
    pub roles: bool,
    pub keys: bool,
    pub audit: bool,
    pub health: bool,
    pub monitor: bool,
    /// `alert:read`: alerts, rules, silences, channels, policies, log.
    pub alerts: bool,
    /// `alert:acknowledge`: acknowledge alerts, create and end silences.
    pub alert_ack: bool,
    /// `alert:manage`: change rules, channels and policies.
    pub alert_manage: bool,
    /// `mcp:manage`: register MCP servers.
    pub mcp: bool,
    /// `oauth_client:manage`: the OAuth clients page.
    pub oauth_clients: bool,
    /// `telemetry:read`: traces and logs.
    pub telemetry: bool,
    /// `approval:manage`: the approval rules page.
    pub approval_rules: bool,
}

pub struct SessionUser {
    pub session: ActiveSession,
    pub nav: Nav,
    /// This session's CSRF token, for forms and the `csrf-token` meta tag.
    pub csrf: String,
    /// Audit context with this user as the actor.
    pub ctx: Context,
}

impl SessionUser {
    /// This session as an API caller (for pages that reuse API logic).
    pub fn caller(&self) -> Caller {
        Caller {
            principal: Principal::of_user(&self.session.user),
            method: AuthMethod::Session {
                id_hash: self.session.id_hash.clone(),
            },
            scope: None,
            ctx: self.ctx.clone(),
        }
    }

    /// The prelude of every state-changing page: the form's CSRF token,
    /// then the permission. Returns the state for the handler.
    pub async fn authorize_form(
        &self,
        req: &HttpRequest,
        csrf_token: &str,
        permission: &str,
    ) -> Result<actix_web::web::Data<WebState>, UiError> {
        self.check_csrf(req, csrf_token)?;
        let st = state::of(req);
        self.caller().require(&st, permission).await?;
        Ok(st)
    }

    /// Checks a submitted form token (and Fetch-Metadata) for this session.
    pub fn check_csrf(&self, req: &HttpRequest, submitted: &str) -> Result<(), UiError> {
        form_token_ok(req, &self.csrf, submitted)
    }
}

/// A form's token against its session's (and Fetch-Metadata).
fn form_token_ok(req: &HttpRequest, expected: &str, submitted: &str) -> Result<(), UiError> {
    if csrf::is_cross_site(req) || !csrf::matches(expected, submitted) {
        return Err(UiError::Csrf);
    }
    Ok(())
}

/// The session the cookie names, whatever its stage.
async fn any_session(req: &HttpRequest) -> Result<Option<ActiveSession>, crate::error::Error> {
    let st = state::of(req);
    let Some(token) = st.cookies.read(req, cookies::SESSION) else {
        return Ok(None);
    };
    sessions::resolve(&st.db, &token, st.session_policy).await
}

/// Where a half-done sign-in continues.
pub fn unfinished_path(stage: Stage) -> Option<&'static str> {
    match stage {
        Stage::Full => None,
        Stage::SecondFactor => Some(SECOND_FACTOR_PATH),
        Stage::Enrol => Some(ENROL_PATH),
    }
}

/// The sign-in's second step.
pub const SECOND_FACTOR_PATH: &str = "/login/second-factor";
/// Forced enrolment of a second factor.
pub const ENROL_PATH: &str = "/account/second-factor";

/// A signed-in (full) session; `Err` names where a half-done one goes.
async fn current_session(
    req: &HttpRequest,
) -> Result<Result<Option<SessionUser>, &'static str>, crate::error::Error> {
    let Some(session) = any_session(req).await? else {
        return Ok(Ok(None));
    };
    if let Some(path) = unfinished_path(session.stage) {
        return Ok(Err(path));
    }
    let st = state::of(req);
    let principal = Principal::of_user(&session.user);
    let policy = st.policy.get(&st.db, &st.audit).await?;
    let subject = rbac::subject_of(&principal);
    let may = |p: &str| policy.check(&subject, p, None).allowed;
    let nav = Nav {
        users: may(Permission::UserManage.as_str()),
        agents: may(Permission::AgentManage.as_str()),
        roles: may(Permission::RoleManage.as_str()),
        keys: may(Permission::KeyManage.as_str()),
        audit: may(Permission::AuditRead.as_str()),
        health: may(Permission::HealthView.as_str()),
        monitor: may(Permission::MonitorManage.as_str()),
        alerts: may(Permission::AlertRead.as_str()),
        alert_ack: may(Permission::AlertAcknowledge.as_str()),
        alert_manage: may(Permission::AlertManage.as_str()),
        mcp: may(Permission::McpManage.as_str()),
        oauth_clients: may(Permission::OAuthClientManage.as_str()),
        telemetry: may(Permission::TelemetryRead.as_str()),
        approval_rules: may(Permission::ApprovalManage.as_str()),
    };
    Ok(Ok(Some(SessionUser {
        csrf: csrf::session_token(&st.csrf_key, &session.id_hash),
        ctx: audit_context(req, Some(&principal)),
        nav,
        session,
    })))
}

/// A session at any stage: the second-factor step and the enrolment
/// pages serve a half-done sign-in as well as a full one. Without a
/// session, to the login page.
pub struct AnySession {
    pub session: ActiveSession,
    /// This session's CSRF token.
    pub csrf: String,
    /// Audit context with this user as the actor.
    pub ctx: Context,
}

impl AnySession {
    pub fn check_csrf(&self, req: &HttpRequest, submitted: &str) -> Result<(), UiError> {
        form_token_ok(req, &self.csrf, submitted)
    }
}

impl FromRequest for AnySession {
    type Error = UiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(session) = any_session(&req).await? else {
                return Err(UiError::LoginRequired {
                    next: return_path(&req),
                });
            };
            let st = state::of(&req);
            let principal = Principal::of_user(&session.user);
            Ok(AnySession {
                csrf: csrf::session_token(&st.csrf_key, &session.id_hash),
                ctx: audit_context(&req, Some(&principal)),
                session,
            })
        })
    }
}

impl FromRequest for SessionUser {
    type Error = UiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match current_session(&req).await? {
                Ok(Some(user)) => Ok(user),
                Ok(None) => Err(UiError::LoginRequired {
                    next: return_path(&req),
                }),
                Err(unfinished) => Err(UiError::SignInUnfinished(unfinished)),
            }
        })
    }
}

/// Where to come back to after signing in: the page asked for, when it was
/// a page read (a form post cannot be replayed).
fn return_path(req: &HttpRequest) -> Option<String> {
    if req.method() != Method::GET {
        return None;
    }
    let path = match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    };
    // The dashboard is where signing in lands anyway.
    super::ui::login::local_path(&path)
        .filter(|p| *p != "/")
        .map(str::to_string)
}

/// An optional session, for pages that behave differently when logged in
/// (the login page redirects a logged-in user to the dashboard).
pub struct MaybeSession(pub Option<SessionUser>);

impl FromRequest for MaybeSession {
    type Error = UiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match current_session(&req).await? {
                Ok(user) => Ok(MaybeSession(user)),
                Err(unfinished) => Err(UiError::SignInUnfinished(unfinished)),
            }
        })
    }
}

/// Authenticates `Authorization: Bearer <credential>`. Every refusal is
/// audited with its reason (never the credential) and answered 401; a
/// credential's successful use is recorded once a minute (recording every
/// call would put an audit commit on every API request).
async fn bearer(req: &HttpRequest, header: &[u8]) -> Result<Caller, ApiError> {
    let st = state::of(req);
    let credential = bearer_credential(header);
    let refuse = |reason: &str, key_id: Option<String>| {
        let mut ev = audit_context(req, None)
            .event("auth.bearer", Outcome::Failure)
            .reason(reason.to_string());
        if let Some(k) = key_id {
            ev = ev.detail("key_id", k);
        }
        ev
    };
    let (event, message) = match credential {
        None => (
            refuse("malformed_authorization_header", None),
            "the Authorization header must be `Bearer <credential>`",
        ),
        Some(c) if c.starts_with(api_keys::PREFIX) => {
            match api_keys::authenticate(&st.key_lookup(), c).await? {
                api_keys::KeyCheck::Valid {
                    principal,
                    key_id,
                    first_use_in_window,
                } => {
                    let ctx = audit_context(req, Some(&principal));
                    if first_use_in_window {
                        let ev = ctx
                            .event("auth.bearer", Outcome::Success)
                            .detail("method", "api_key")
                            .detail("key_id", &key_id);
                        st.audit.record(ev).await?;
                    }
                    return Ok(Caller {
                        principal,
                        method: AuthMethod::ApiKey { key_id },
                        scope: None,
                        ctx,
                    });
                }
                api_keys::KeyCheck::Refused { reason, key_id } => {
                    (refuse(reason.as_str(), key_id), "invalid API key")
                }
            }
        }
        Some(c) if c.matches('.').count() == 2 => match st.issuer().verify(c).await? {
            Ok((claims, subject)) => {
                let principal = Principal {
                    kind: claims.sub_type,
                    id: subject.id.clone(),
                    name: subject.name.clone(),
                };
                let ctx = audit_context(req, Some(&principal));
                return Ok(Caller {
                    principal,
                    scope: Some(claims.scopes()),
                    method: AuthMethod::Jwt {
                        jti: claims.jti.clone(),
                    },
                    ctx,
                });
            }
            Err(f) => (refuse(f.as_str(), None), "invalid access token"),
        },
        Some(_) => (
            refuse("unrecognised_credential", None),
            "invalid bearer credential",
        ),
    };
    record_refusal(req, &st, event).await?;
    Err(ApiError::unauthenticated(message))
}

/// Records a refused credential. Each refusal costs an audit commit: past
/// the client's budget of refusals it is answered 429 and not recorded one
/// by one. Only refused credentials count, so valid ones from the same
/// address keep working.
pub async fn record_refusal(
    req: &HttpRequest,
    st: &WebState,
    event: crate::audit::Event,
) -> Result<(), ApiError> {
    if let Err(retry_after_secs) = st.auth_failure_limiter.check(state::client_ip(req)) {
        return Err(crate::error::Error::RateLimited { retry_after_secs }.into());
    }
    st.audit.record(event).await?;
    Ok(())
}

/// The credential of an `Authorization: Bearer <credential>` header value;
/// `None` when the value is not of that form.
pub fn bearer_credential(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value)
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, c)| c.trim())
}

/// How the API caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// An API key; `key_id` is its public half.
    ApiKey { key_id: String },
    /// An access token.
    Jwt { jti: String },
    /// A browser session; `id_hash` identifies it.
    Session { id_hash: String },
}

/// An authenticated API caller.
pub struct Caller {
    pub principal: Principal,
    pub method: AuthMethod,
    /// With a token: the permissions it carries. A call needs both the
    /// permission and the scope.
    pub scope: Option<Vec<String>>,
    /// Audit context with the caller as the actor.
    pub ctx: Context,
}

impl Caller {
    /// `Ok` when the caller holds `permission`; a denial is audited and
    /// answered 403.
    pub async fn require(&self, st: &WebState, permission: &str) -> Result<(), ApiError> {
        let subject = rbac::subject_of(&self.principal);
        let question = Question {
            subject: &subject,
            permission,
            resource: None,
            scope: self.scope.as_deref(),
        };
        let decision = st
            .decider()
            .decide_recorded(&self.ctx, Purpose::Guard, question)
            .await?;
        if decision.allowed {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "this requires the {permission} permission: {}",
            decision.reason
        )))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
                return bearer(&req, value.as_bytes()).await;
            }
            let Ok(Some(user)) = current_session(&req).await.map_err(ApiError::from)? else {
                return Err(ApiError::unauthenticated(
                    "authentication required: send a session cookie or a Bearer token",
                ));
            };
            let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe {
                let given = req
                    .headers()
                    .get(csrf::HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if csrf::is_cross_site(&req) || !csrf::matches(&user.csrf, given) {
                    return Err(ApiError::forbidden(
                        "missing or invalid X-CSRF-Token header (required with cookie authentication)",
                    )
                    .with_code("csrf_failed"));
                }
            }
            let id_hash = user.session.id_hash;
            let u = user.session.user;
            Ok(Caller {
                principal: Principal {
                    kind: PrincipalKind::User,
                    id: u.id,
                    name: u.username,
                },
                method: AuthMethod::Session { id_hash },
                scope: None,
                ctx: user.ctx,
            })
        })
    }
}

/// A permission named at the type level, for [`Guarded`].
pub trait Required {
    const NAME: &'static str;
}

macro_rules! guards {
    ($($ty:ident),* $(,)?) => {
        $(
            #[doc = concat!("The [`Permission::", stringify!($ty), "`] permission.")]
            pub struct $ty;
            impl Required for $ty {
                const NAME: &'static str = Permission::$ty.as_str();
            }
        )*
    };
}

guards!(
    UserManage,
    AgentManage,
    RoleManage,
    KeyManage,
    AuditRead,
    MonitorManage,
    HealthView,
    AlertRead,
    AlertAcknowledge,
    AlertManage,
    McpManage,
    OAuthClientManage,
    ApprovalManage,
);

/// The one guard of agentry's own API: an authenticated caller who holds
/// `P`. As an extractor it runs before the body is read, so a caller
/// without the permission gets 403 whatever it sent.
pub struct Guarded<P>(pub Caller, std::marker::PhantomData<P>);

impl<P> std::ops::Deref for Guarded<P> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<P: Required + 'static> FromRequest for Guarded<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let caller = Caller::from_request(&req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            let st = state::of(&req);
            caller.require(&st, P::NAME).await?;
            Ok(Guarded(caller, std::marker::PhantomData))
        })
    }
}
