//! JSON API handlers, one module per resource. Every handler carries a
//! `#[utoipa::path]` and is registered through [`configure`], which is how
//! it reaches the OpenAPI document.

pub mod me;
pub mod service;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(service::healthz)
        .service(service::readyz)
        .service(
            scope::scope("/api/v1")
                .service(service::openapi_json)
                .service(me::me),
        );
}
