//! The OpenAPI document's frame. Paths and schemas are collected from the
//! handlers' `#[utoipa::path]` annotations as routes are registered, so the
//! document cannot drift from the code.

use utoipa::openapi::content::{Content, ContentBuilder};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentry",
        description = "Security and operations control plane for AI agents. Errors are \
                       RFC 9457 problem+json documents.",
        license(name = "Apache-2.0")
    ),
    // The named formats are registered here because parameters refer to
    // them by `$ref` and nothing else would add them.
    components(schemas(
        super::problem::Problem,
        super::pagination::PageLimit,
        super::pagination::Cursor,
        crate::formats::Username,
        crate::formats::LowerSnake,
        crate::formats::Permission,
        crate::formats::PermissionPattern,
        crate::formats::ResourceGlob,
        crate::formats::Classification,
        crate::formats::AlertingName,
        crate::formats::MetricName,
        crate::formats::Timestamp,
        crate::formats::TimeBound,
        crate::formats::SpanStatusFilter,
        crate::formats::LogSeverityFilter,
        crate::formats::TraceId,
        crate::formats::OutcomeFilter,
        crate::formats::Severity,
        crate::alerts::AlertState,
        crate::notify::DeliveryStatus,
        crate::monitor::instances::InstanceKind,
        crate::monitor::history::Range,
        crate::formats::ExportFormat,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "service", description = "Liveness, readiness and this document"),
        (name = "identity", description = "Principals and credentials"),
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "authz", description = "Authorization decisions, roles and assignments"),
        (name = "crypto", description = "Envelope encryption with key rings per classification"),
        (name = "oauth", description = "OAuth 2.0 client credentials, JWKS, token signing keys"),
        (name = "mcp", description = "MCP servers registered as resources, and their protected resource metadata"),
        (name = "approvals", description = "Human approval of risky calls: rules and requests"),
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

/// The finished document, serialised once per worker at start: it is
/// served without authentication or a rate limit, so a request must cost no
/// more than copying bytes (completing and serialising it per request took
/// a deep clone of the whole document every time).
pub struct Document(pub actix_web::web::Bytes);

/// Completes the document ([`add_common_responses`], then the links of
/// [`super::openapi_links`]) and serialises it.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> Document {
    add_common_responses(&mut doc);
    let mut value = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    super::openapi_links::add(&mut value);
    let json = serde_json::to_vec(&value).expect("the OpenAPI document serialises");
    Document(json.into())
}

/// Completes the assembled document (paths included) with what the shared
/// extractors and guards answer, so no handler has to repeat it:
///
/// - every `Problem` response is `application/problem+json`, as sent;
/// - an operation with a security requirement can answer 401 (no or bad
///   credentials) and 403 (permission, CSRF);
/// - one with a JSON body 400 (malformed JSON), 413 (over the limit), 415
///   (not JSON) and 422 (wrong shape);
/// - one with query parameters 400 (bad or unknown parameter);
/// - one with path parameters 404 (no such resource, or an unparsable id);
/// - every one 429 (a per-address rate limit).
///
/// Responses a handler documents itself are left as they are.
pub fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;

    for item in doc.paths.paths.values_mut() {
        for op in super::needs::operations_mut(item) {
            for response in op.responses.responses.values_mut() {
                if let RefOr::T(r) = response {
                    if r.content.get(JSON).is_some_and(is_problem) {
                        if let Some(c) = r.content.shift_remove(JSON) {
                            r.content.insert(problem::CONTENT_TYPE.into(), c);
                        }
                    }
                }
            }
            let mut add: Vec<(u16, &str)> = Vec::new();
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add.push((401, "No or bad credentials"));
                add.push((403, "The caller lacks the permission (or the CSRF token)"));
            }
            if op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.contains_key(JSON))
            {
                add.push((400, "The body is not JSON"));
                add.push((413, "The body is over the limit"));
                add.push((415, "The body is not application/json"));
                add.push((422, "The body does not match the schema, or breaks a rule"));
            }
            let params = op.parameters.as_deref().unwrap_or_default();
            if params.iter().any(|p| p.parameter_in == ParameterIn::Query) {
                add.push((400, "A query parameter is wrong or unknown"));
            }
            if params.iter().any(|p| p.parameter_in == ParameterIn::Path) {
                add.push((404, "No such resource"));
            }
            // Every operation has a per-address limit: refused credentials
            // where a credential is needed, the anonymous budget where none is
            // (`web::anonymous`), every attempt on the OAuth endpoints.
            add.push((
                429,
                "Rate limited for this client address; Retry-After says when to retry",
            ));
            for (status, description) in add {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem_response(description).into());
            }
        }
    }
}

const JSON: &str = "application/json";

fn is_problem(c: &Content) -> bool {
    matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location == "#/components/schemas/Problem")
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            problem::CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}
