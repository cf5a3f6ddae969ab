//! JSON API handlers, one module per resource. Every handler carries a
//! `#[utoipa::path]` and is registered through [`configure`], which is how
//! it reaches the OpenAPI document. Its `operation_id` is
//! `<module>.<function>` (utoipa's default, the bare function name, repeats
//! across modules, and OpenAPI requires it unique: code generators name
//! their methods after it).

pub mod agents;
pub mod alert_rules;
pub mod alerts;
pub mod audit;
pub mod authz;
pub mod channels;
pub mod crypto;
pub mod crypto_keys;
pub mod escalation_policies;
pub mod health;
pub mod instances;
pub mod keys;
pub mod me;
pub mod metrics;
pub mod notifications;
pub mod oauth;
pub mod prometheus;
pub mod roles;
pub mod service;
pub mod signing_keys;
pub mod silences;
pub mod users;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Body limit of `/api/v1/crypto/*`: room for a 1 MiB value as a package.
pub const CRYPTO_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Registers every API route; `max_body_bytes` is the configured limit,
/// raised to [`CRYPTO_BODY_LIMIT`] for the crypto endpoints.
pub fn configure(cfg: &mut ServiceConfig, max_body_bytes: usize) {
    let crypto_body_limit = max_body_bytes.max(CRYPTO_BODY_LIMIT);
    cfg.service(service::healthz)
        .service(service::readyz)
        .service(oauth::issue_token)
        .service(oauth::introspect)
        .service(oauth::revoke)
        .service(oauth::jwks)
        .service(oauth::metadata)
        .service(prometheus::metrics)
        .service(
            scope::scope("/api/v1")
                .service(service::openapi_json)
                .service(me::me)
                .service(users::create)
                .service(users::list)
                .service(users::get)
                .service(users::update)
                .service(users::remove)
                .service(users::set_password)
                .service(users::unlock)
                .service(users::revoke_sessions)
                .service(users::list_keys)
                .service(users::create_key)
                .service(users::revoke_key)
                .service(agents::create)
                .service(agents::list)
                .service(agents::get)
                .service(agents::update)
                .service(agents::remove)
                .service(agents::list_keys)
                .service(agents::create_key)
                .service(agents::revoke_key)
                .service(agents::quarantine)
                .service(alert_rules::list)
                .service(alert_rules::create)
                .service(alert_rules::preview)
                .service(alert_rules::get)
                .service(alert_rules::replace)
                .service(alert_rules::remove)
                .service(alerts::list)
                .service(alerts::get)
                .service(alerts::acknowledge)
                .service(silences::list)
                .service(silences::create)
                .service(silences::expire)
                .service(channels::list)
                .service(channels::create)
                .service(channels::get)
                .service(channels::replace)
                .service(channels::remove)
                .service(channels::test)
                .service(escalation_policies::list)
                .service(escalation_policies::create)
                .service(escalation_policies::get)
                .service(escalation_policies::replace)
                .service(escalation_policies::remove)
                .service(notifications::list)
                .service(signing_keys::list)
                .service(signing_keys::rotate)
                .service(roles::list)
                .service(roles::create)
                .service(roles::get)
                .service(roles::replace)
                .service(roles::remove)
                .service(roles::list_assignments)
                .service(roles::create_assignment)
                .service(roles::delete_assignment)
                .service(
                    // Larger bodies than elsewhere: a 1 MiB value's package
                    // is a third larger again once in base64.
                    scope::scope("/crypto")
                        .app_data(
                            actix_web::web::JsonConfig::default()
                                .limit(crypto_body_limit)
                                .error_handler(crate::web::problem::json_error),
                        )
                        .service(crypto::encrypt)
                        .service(crypto::decrypt)
                        .service(crypto::rewrap)
                        .service(crypto::datakey)
                        .service(crypto::encrypt_batch)
                        .service(crypto::decrypt_batch)
                        .service(crypto::rewrap_batch)
                        .service(crypto_keys::keys)
                        .service(crypto_keys::create)
                        .service(crypto_keys::rotate)
                        .service(crypto_keys::update),
                )
                .service(instances::create)
                .service(instances::list)
                .service(instances::get)
                .service(instances::update)
                .service(instances::remove)
                .service(instances::checks)
                .service(instances::heartbeat)
                .service(health::get)
                .service(metrics::report)
                .service(metrics::query)
                .service(authz::check)
                .service(authz::check_batch)
                .service(authz::permissions)
                .service(audit::list)
                .service(audit::export_records)
                .service(audit::verify)
                .service(audit::head),
        );
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
