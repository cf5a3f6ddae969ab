//! The OpenAPI document's frame. Paths and schemas are collected from the
//! handlers' `#[utoipa::path]` annotations as routes are registered, so the
//! document cannot drift from the code.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentry",
        description = "Security and operations control plane for AI agents. Errors are \
                       RFC 9457 problem+json documents.",
        license(name = "Apache-2.0")
    ),
    components(schemas(super::problem::Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "service", description = "Liveness, readiness and this document"),
        (name = "identity", description = "Principals and credentials"),
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "authz", description = "Authorization decisions, roles and assignments"),
        (name = "crypto", description = "Envelope encryption with key rings per classification"),
        (name = "oauth", description = "OAuth 2.0 client credentials, JWKS, token signing keys"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "agentry_session",
                "Browser session (named __Host-agentry_session over TLS); state-changing calls also \
                 need the page's CSRF token in X-CSRF-Token",
            ))),
        );
    }
}
