//! JSON API handlers, one module per resource. Every handler carries a
//! `#[utoipa::path]` and is registered through [`configure`], which is how
//! it reaches the OpenAPI document. Its `operation_id` is
//! `<module>.<function>` (utoipa's default, the bare function name, repeats
//! across modules, and OpenAPI requires it unique: code generators name
//! their methods after it).

pub mod agent_jwks;
pub mod agents;
pub mod alert_rules;
pub mod alerts;
pub mod approval_rules;
pub mod approvals;
pub mod audit;
pub mod authz;
pub mod authz_forward;
pub mod channels;
pub mod crypto;
pub mod crypto_keys;
pub mod escalation_policies;
pub mod grants;
pub mod health;
pub mod instances;
pub mod keys;
pub mod logs;
pub mod mcp_servers;
pub mod me;
pub mod metrics;
pub mod notifications;
pub mod oauth;
pub mod oauth_clients;
pub mod oauth_register;
pub mod otlp;
pub mod prometheus;
pub mod roles;
pub mod service;
pub mod signing_keys;
pub mod silences;
pub mod traces;
pub mod users;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Body limit of `/api/v1/crypto/*`: room for a 1 MiB value as a package.
pub const CRYPTO_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Registers every API route; `max_body_bytes` is the configured limit,
/// raised to [`CRYPTO_BODY_LIMIT`] for the crypto endpoints.
pub fn configure(cfg: &mut ServiceConfig, max_body_bytes: usize) {
    let crypto_body_limit = max_body_bytes.max(CRYPTO_BODY_LIMIT);
    cfg.configure(service::routes)
        .configure(oauth::routes)
        .configure(oauth_register::routes)
        .configure(prometheus::routes)
        .configure(mcp_servers::well_known_routes)
        .configure(crate::web::gateway::routes)
        .configure(otlp::routes)
        .service(
            scope::scope("/api/v1")
                .configure(service::api_routes)
                .configure(me::routes)
                .configure(users::routes)
                .configure(grants::routes)
                .configure(agents::routes)
                .configure(agent_jwks::routes)
                .configure(alert_rules::routes)
                .configure(alerts::routes)
                .configure(silences::routes)
                .configure(channels::routes)
                .configure(escalation_policies::routes)
                .configure(approval_rules::routes)
                .configure(approvals::routes)
                .configure(notifications::routes)
                .configure(signing_keys::routes)
                .configure(roles::routes)
                .configure(instances::routes)
                .configure(health::routes)
                .configure(metrics::routes)
                .configure(traces::routes)
                .configure(logs::routes)
                .configure(authz::routes)
                .configure(authz_forward::routes)
                .configure(mcp_servers::routes)
                .configure(oauth_clients::routes)
                .configure(audit::routes)
                .service(
                    // Larger bodies than elsewhere: a 1 MiB value's package
                    // is a third larger again once in base64.
                    scope::scope("/crypto")
                        .app_data(
                            actix_web::web::JsonConfig::default()
                                .limit(crypto_body_limit)
                                .error_handler(crate::web::problem::json_error),
                        )
                        .configure(crypto::routes)
                        .configure(crypto_keys::routes),
                ),
        );
}

/// A query parameter that filters by a member of a closed set: absent is
/// no filter; a string that is not a member is a 400 naming the members.
pub fn closed_filter<T: crate::closed_set::ClosedSet>(
    param: &str,
    value: Option<&str>,
) -> Result<Option<T>, crate::web::problem::ApiError> {
    value
        .map(|s| {
            T::parse(s).ok_or_else(|| {
                crate::web::problem::ApiError::bad_request(
                    "bad_query",
                    format!("{param} {s:?} is not one of {}", T::names()),
                )
            })
        })
        .transpose()
}

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`) in PATCH bodies.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
