//! `POST /oauth/register`: dynamic client registration (RFC 7591), as
//! `oauth.dynamic_registration` allows, rate-limited per address. Errors
//! are RFC 7591 JSON (`{"error", "error_description"}`).

use actix_web::http::header;
use actix_web::{post, web, HttpRequest, HttpResponse};

use crate::config::DynamicRegistration;
use crate::oauth::registration::{self, RegistrationError, RegistrationResponse};
use crate::web::api::oauth::{no_store, too_many, OAuthErrorBody};
use crate::web::context::audit_context;
use crate::web::state;

fn refuse(
    status: actix_web::http::StatusCode,
    error: &'static str,
    description: &str,
) -> HttpResponse {
    no_store(HttpResponse::build(status).json(OAuthErrorBody {
        error,
        error_description: description.to_string(),
    }))
}

/// Register a client (RFC 7591). Unknown metadata is ignored; a public
/// client (`token_endpoint_auth_method: none`) gets no secret.
#[utoipa::path(
    operation_id = "oauth.register",
    tag = "oauth",
    request_body(content = Object, description = "RFC 7591 client metadata: redirect_uris (required), client_name, token_endpoint_auth_method (none, client_secret_basic, client_secret_post), grant_types, response_types, client_uri; anything else is ignored"),
    responses(
        (status = 201, body = RegistrationResponse),
        (status = 400, body = OAuthErrorBody),
        (status = 404, body = OAuthErrorBody),
        (status = 413, body = OAuthErrorBody),
        (status = 429, body = OAuthErrorBody)
    )
)]
#[post("/oauth/register")]
pub async fn register(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    use actix_web::http::StatusCode;
    let st = state::of(&req);
    let mode = st.config.oauth.dynamic_registration;
    if mode == DynamicRegistration::Off {
        return refuse(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "dynamic registration is off here; ask an administrator to register the client",
        );
    }
    if let Err(secs) = st.registration_limiter.check(state::client_ip(&req)) {
        return too_many(
            secs,
            "too many registrations from this address; retry later",
        );
    }
    if body.len() > registration::MAX_BODY {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_client_metadata",
            "the registration is larger than 64 KiB",
        );
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let parsed: Result<serde_json::Map<String, serde_json::Value>, _> = if json {
        serde_json::from_slice(&body)
    } else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must be a JSON object (application/json)",
        );
    };
    let request = match parsed {
        Err(_) => Err(RegistrationError::InvalidClientMetadata(
            "the body must be a JSON object".into(),
        )),
        Ok(map) => registration::parse(&map),
    };
    let ctx = audit_context(&req, None);
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            let ev = ctx
                .event("oauth_client.register", crate::audit::Outcome::Failure)
                .reason(e.description().chars().take(200).collect::<String>());
            if let Err(err) = st.audit.record(ev).await {
                tracing::error!(error = %err, "recording a refused registration failed");
            }
            return refuse(StatusCode::BAD_REQUEST, e.code(), e.description());
        }
    };
    let from = state::client_ip(&req).to_string();
    let enabled = mode == DynamicRegistration::Open;
    match st
        .oauth_clients
        .register(&ctx, request, &from, enabled)
        .await
    {
        Ok(new) => no_store(
            HttpResponse::Created()
                .json(registration::response(new, crate::tokens::jwt::now_secs())),
        ),
        Err(e) => {
            tracing::error!(error = %e, "registering a client failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the registration could not be stored; retry later",
            )
        }
    }
}

/// Registers this module's routes, outside `/api/v1`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(register);
}
