//! The running appliance's shared services, built once at start and handed
//! to the web layer and the scheduler alike.

use std::sync::Arc;

use crate::audit::Audit;
use crate::config::Config;
use crate::crypto::{DerivedKey, MasterKey};
use crate::db::Db;
use crate::encryption::keyring::{KeyRing, Limits};
use crate::identity::api_keys::{ApiKeyCache, KeyLookup};
use crate::identity::login::LockoutPolicy;
use crate::identity::passwords::Hasher;
use crate::identity::principals::PrincipalCache;
use crate::identity::ratelimit::ClientLimiter;
use crate::identity::sessions::SessionPolicy;
use crate::rbac::decide::{Decider, Purpose};
use crate::rbac::view::PolicyView;
use crate::tokens::cache::TokenCache;
use crate::tokens::oauth::Issuer;
use crate::tokens::SigningKeys;

/// How the gateway introduces itself to upstreams.
const GATEWAY_USER_AGENT: &str = concat!("agentry-gateway/", env!("CARGO_PKG_VERSION"));
const SSO_USER_AGENT: &str = concat!("agentry-sso/", env!("CARGO_PKG_VERSION"));
const FORWARD_USER_AGENT: &str = concat!("agentry-otlp/", env!("CARGO_PKG_VERSION"));

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub audit: Audit,
    pub hasher: Hasher,
    pub csrf_key: Arc<DerivedKey>,
    pub session_policy: SessionPolicy,
    pub lockout_policy: LockoutPolicy,
    pub login_limiter: ClientLimiter,
    pub token_limiter: ClientLimiter,
    /// Refused bearer credentials per client IP (`api.auth_failures_per_minute`).
    pub auth_failure_limiter: ClientLimiter,
    /// For the endpoints that need no credential (`web::anonymous`); `None`
    /// when `api.anonymous_requests_per_minute` is 0.
    pub anonymous_limiter: Option<ClientLimiter>,
    pub signing_keys: SigningKeys,
    pub token_cache: TokenCache,
    pub principals: PrincipalCache,
    pub api_key_cache: ApiKeyCache,
    pub policy: PolicyView,
    pub keyring: KeyRing,
    pub checker_stats: Arc<crate::monitor::checker::CheckerStats>,
    pub metrics: crate::monitor::metrics::MetricsStore,
    /// Spans and log records received over OTLP, and the derived series.
    pub telemetry: crate::telemetry::store::TelemetryStore,
    pub status: Arc<crate::monitor::runtime::RuntimeStatus>,
    /// `iss` of issued tokens (the configured public URL).
    pub issuer_url: Arc<String>,
    /// The WebAuthn relying party (the host of `public_url`) and its
    /// ceremonies under way.
    pub passkeys: Arc<crate::identity::passkeys::Passkeys>,
    /// Single sign-on through `[oidc]`, when configured.
    pub sso: Option<Arc<crate::identity::oidc::Sso>>,
    /// Rule evaluation, alert lifecycle, acknowledgement; owns the outbox handle.
    pub alerts: crate::alerts::engine::Engine,
    /// Notification channels (settings with secrets encrypted).
    pub channels: crate::notify::store::ChannelStore,
    /// Where outbound requests an admin aimed may go (`[network]`).
    pub outbound_rules: Arc<crate::net::OutboundRules>,
    /// MCP servers registered as resources.
    pub mcp_servers: crate::mcp::McpServers,
    /// The MCP gateway's decisions, limits and upstream client.
    pub gateway: crate::mcp::gateway::Gateway,
    /// OAuth clients that sign users in.
    pub oauth_clients: crate::oauth::clients::Clients,
    /// Dynamic registrations per client IP (`oauth.registrations_per_minute`).
    pub registration_limiter: ClientLimiter,
    /// Held calls' wake-ups and the approval rules as last read.
    pub approvals_live: Arc<crate::approvals::live::Live>,
}

impl App {
    /// `csrf_key` comes from the appliance keys (it survives master key
    /// rotation); the wrapping keys are derived from the master key.
    pub fn new(
        config: Config,
        db: Db,
        audit: Audit,
        master_key: &MasterKey,
        csrf_key: DerivedKey,
    ) -> App {
        let keyring = KeyRing::new(
            master_key.derive(crate::crypto::data_keys::WRAP_KEY_LABEL),
            Limits {
                max_encryptions: config.encryption.max_encryptions_per_key,
                rotation_days: config.encryption.rotation_days,
            },
        );
        let issuer_url = Arc::new(config.base_url());
        let passkeys = Arc::new(crate::identity::passkeys::Passkeys::new(&issuer_url));
        let outbound_rules = Arc::new(config.network.rules());
        let sso = crate::identity::oidc::Sso::new(
            &config.oidc,
            &issuer_url,
            crate::net::Outbound::new(outbound_rules.clone(), 0, SSO_USER_AGENT),
        )
        .map(Arc::new);
        let mcp_servers = crate::mcp::McpServers::new(
            db.clone(),
            audit.clone(),
            issuer_url.to_string(),
            outbound_rules.clone(),
            keyring.clone(),
        );
        let policy = PolicyView::default();
        let telemetry_stats = Arc::new(crate::monitor::telemetry_stats::TelemetryStats::default());
        let telemetry = crate::telemetry::store::TelemetryStore::start(
            db.clone(),
            forwarder(&config.telemetry, &outbound_rules, &telemetry_stats),
            telemetry_stats,
        );
        let gateway = crate::mcp::gateway::Gateway::new(
            db.clone(),
            audit.clone(),
            keyring.clone(),
            mcp_servers.clone(),
            policy.clone(),
            issuer_url.to_string(),
            crate::net::Outbound::with(outbound_rules.clone(), 0, GATEWAY_USER_AGENT, |b| {
                b.connect_timeout(std::time::Duration::from_secs(10))
                    .pool_idle_timeout(std::time::Duration::from_secs(60))
            }),
            Arc::new(telemetry.clone()),
        );
        App {
            approvals_live: Arc::default(),
            passkeys,
            sso,
            gateway,
            mcp_servers,
            alerts: crate::alerts::engine::Engine::new(
                crate::notify::outbox::Outbox::default(),
                issuer_url.clone(),
            ),
            channels: crate::notify::store::ChannelStore::new(
                db.clone(),
                audit.clone(),
                keyring.clone(),
                outbound_rules.clone(),
            ),
            oauth_clients: crate::oauth::clients::Clients::new(
                db.clone(),
                audit.clone(),
                outbound_rules.clone(),
            ),
            registration_limiter: ClientLimiter::per_minute(config.oauth.registrations_per_minute),
            outbound_rules,
            session_policy: SessionPolicy::from_config(&config.session),
            lockout_policy: LockoutPolicy::from_config(&config.login),
            login_limiter: ClientLimiter::per_minute(config.login.rate_limit_per_minute),
            token_limiter: ClientLimiter::per_minute(config.tokens.rate_limit_per_minute),
            auth_failure_limiter: ClientLimiter::per_minute(config.api.auth_failures_per_minute),
            anonymous_limiter: (config.api.anonymous_requests_per_minute > 0)
                .then(|| ClientLimiter::per_minute(config.api.anonymous_requests_per_minute)),
            signing_keys: SigningKeys::new(master_key.derive(crate::tokens::keys::WRAP_KEY_LABEL)),
            token_cache: TokenCache::default(),
            principals: PrincipalCache::default(),
            api_key_cache: ApiKeyCache::default(),
            policy,
            keyring,
            csrf_key: Arc::new(csrf_key),
            checker_stats: Arc::default(),
            metrics: crate::monitor::metrics::MetricsStore::start(db.clone()),
            telemetry,
            hasher: Hasher::new(),
            status: Arc::default(),
            issuer_url,
            config: Arc::new(config),
            db,
            audit,
        }
    }
}

/// The re-export to a Collector, when `telemetry.forward_otlp_url` is set
/// (the configuration was validated: names and values are headers).
fn forwarder(
    t: &crate::config::TelemetryConfig,
    rules: &Arc<crate::net::OutboundRules>,
    stats: &Arc<crate::monitor::telemetry_stats::TelemetryStats>,
) -> Option<crate::telemetry::forward::Forwarder> {
    if t.forward_otlp_url.is_empty() {
        return None;
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &t.forward_headers {
        if let (Ok(n), Ok(mut v)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_str(value),
        ) {
            v.set_sensitive(true);
            headers.insert(n, v);
        }
    }
    let http = crate::net::Outbound::new(rules.clone(), 0, FORWARD_USER_AGENT);
    Some(crate::telemetry::forward::Forwarder::start(
        &t.forward_otlp_url,
        headers,
        t.forward_queue_bytes,
        http,
        stats.clone(),
    ))
}

impl App {
    /// Refresh token lifetimes (`[oauth]`).
    pub fn refresh_policy(&self) -> crate::oauth::grants::RefreshPolicy {
        crate::oauth::grants::RefreshPolicy::days(
            self.config.oauth.refresh_idle_days,
            self.config.oauth.refresh_absolute_days,
        )
    }

    /// How client metadata documents are used (`[oauth]`).
    pub fn document_policy(&self) -> crate::oauth::clients::DocumentPolicy {
        crate::oauth::clients::DocumentPolicy {
            enabled: self.config.oauth.client_metadata_documents == crate::config::Switch::On,
            allow_http_loopback: self.config.oauth.allow_http_loopback_client_ids,
        }
    }

    /// The authorization-code and refresh flows.
    pub fn grants(&self) -> crate::oauth::grants::Grants<'_> {
        crate::oauth::grants::Grants {
            issuer: self.issuer(),
            refresh: self.refresh_policy(),
        }
    }

    /// Approval requests.
    pub fn approvals(&self) -> crate::approvals::requests::Approvals<'_> {
        crate::approvals::requests::Approvals {
            db: &self.db,
            audit: &self.audit,
            keyring: &self.keyring,
            policy: &self.policy,
            live: &self.approvals_live,
            link_key: &self.csrf_key,
            external_url: &self.issuer_url,
            outbox: self.alerts.outbox(),
        }
    }

    /// Users' second factors.
    pub fn factors(&self) -> crate::identity::factors::Factors<'_> {
        crate::identity::factors::Factors {
            db: &self.db,
            audit: &self.audit,
            keyring: &self.keyring,
        }
    }

    /// The token issuer: `iss` and the appliance's own audience.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            db: &self.db,
            audit: &self.audit,
            keys: &self.signing_keys,
            cache: &self.token_cache,
            principals: &self.principals,
            api_keys: &self.api_key_cache,
            policy: &self.policy,
            issuer: self.issuer_url.as_str(),
            lifetime_secs: i64::from(self.config.tokens.lifetime_seconds),
            servers: &self.mcp_servers,
            require_registered_resource: self.config.oauth.require_registered_resource,
        }
    }
}

impl App {
    /// The one decision path (`rbac::decide`).
    pub fn decider(&self) -> Decider<'_> {
        Decider {
            db: &self.db,
            audit: &self.audit,
            policy: &self.policy,
            principals: &self.principals,
        }
    }

    /// The purpose of a question put to the decision API or the "check
    /// access" page: allowed answers are recorded when
    /// `authz.audit_decisions` is `all`.
    pub fn query_purpose(&self) -> Purpose {
        Purpose::Query {
            record_allowed: self.config.authz.audit_decisions == crate::config::AuditDecisions::All,
        }
    }

    /// What the health report, `/metrics` and the self-sampler read.
    pub fn watched(&self) -> crate::monitor::runtime::Watched<'_> {
        crate::monitor::runtime::Watched {
            db: &self.db,
            audit: &self.audit,
            config: &self.config,
            status: &self.status,
            checker_stats: &self.checker_stats,
            keyring: &self.keyring,
            signing_keys: &self.signing_keys,
            metrics: &self.metrics,
            outbox_stats: &self.alerts.outbox().stats,
            gateway_stats: self.gateway.stats(),
            telemetry_stats: &self.telemetry.stats,
        }
    }

    /// What API-key verification reads.
    pub fn key_lookup(&self) -> KeyLookup<'_> {
        KeyLookup {
            db: &self.db,
            audit: &self.audit,
            principals: &self.principals,
            cache: &self.api_key_cache,
        }
    }
}
