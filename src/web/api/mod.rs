//! JSON API handlers, one module per resource. Every handler carries a
//! `#[utoipa::path]` and is registered through [`configure`], which is how
//! it reaches the OpenAPI document.

pub mod agents;
pub mod audit;
pub mod authz;
pub mod crypto;
pub mod keys;
pub mod me;
pub mod oauth;
pub mod roles;
pub mod service;
pub mod signing_keys;
pub mod users;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(service::healthz)
        .service(service::readyz)
        .service(oauth::issue_token)
        .service(oauth::introspect)
        .service(oauth::revoke)
        .service(oauth::jwks)
        .service(oauth::metadata)
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
                .service(crypto::encrypt)
                .service(crypto::decrypt)
                .service(crypto::rewrap)
                .service(crypto::keys)
                .service(crypto::rotate)
                .service(crypto::update)
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
