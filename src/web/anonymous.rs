//! A per-address budget for the requests that need no credential: the
//! probes (`/healthz`, `/readyz`), the published documents (JWKS, server
//! metadata, OpenAPI), static assets, the login page and any path no route
//! serves.
//!
//! They check no secret and write nothing, so this is not about guessing
//! (the credential-checking endpoints have their own, much smaller limits):
//! it stops one address from spending the appliance on them (`/readyz`
//! reads the database; the login page renders a template and signs a
//! nonce). The default, 6,000 a minute per address, is far above what
//! probes, a Prometheus server or the people signing in behind one proxy
//! send; `api.anonymous_requests_per_minute = 0` turns it off.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::fallback::is_api_path;
use super::problem::ApiError;
use super::state;
use super::ui::error::UiError;
use crate::error::Error;

/// Paths served to anyone, whatever the method (a wrong method is a 405
/// from the fallback, just as anonymous).
fn is_anonymous_route(method: &Method, path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/api/v1/openapi.json")
        || path.starts_with("/.well-known/")
        || path.starts_with("/static/")
        || (path == "/login" && (method == Method::GET || method == Method::HEAD))
}

/// The 429 answer when `req`'s address has spent its budget; `None` when
/// it may go on (or the budget is off).
pub fn refusal(req: &HttpRequest) -> Option<HttpResponse> {
    let st = state::of(req);
    let limiter = st.anonymous_limiter.as_ref()?;
    let retry_after_secs = limiter.check(state::client_ip(req)).err()?;
    let e = Error::RateLimited { retry_after_secs };
    let path = req.path();
    Some(
        if is_api_path(path) || path == "/healthz" || path == "/readyz" {
            ApiError::from(e).error_response()
        } else {
            UiError::from(e).error_response()
        },
    )
}

/// Middleware for the routes above. Paths no route serves are counted by
/// the fallback handler (`web::fallback`), which only runs for them, so
/// ordinary requests pay for a few string comparisons and nothing more.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_anonymous_route(req.method(), req.path()) {
        if let Some(res) = refusal(req.request()) {
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anonymous_routes() {
        for p in [
            "/healthz",
            "/readyz",
            "/api/v1/openapi.json",
            "/.well-known/jwks.json",
            "/.well-known/oauth-authorization-server",
            "/static/app.css",
            "/login",
        ] {
            assert!(is_anonymous_route(&Method::GET, p), "{p}");
        }
        // Sign-in attempts have the login limit; the API and pages need a
        // credential and are limited (or refused) by what checks it.
        for (m, p) in [
            (Method::POST, "/login"),
            (Method::GET, "/"),
            (Method::GET, "/api/v1/me"),
            (Method::POST, "/oauth/token"),
            (Method::GET, "/metrics"),
            (Method::GET, "/healthzz"),
        ] {
            assert!(!is_anonymous_route(&m, p), "{m} {p}");
        }
    }
}
