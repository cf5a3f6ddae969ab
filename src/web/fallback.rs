//! Answers for requests no route matched: problem+json 404/405 on the API
//! paths, an HTML page elsewhere.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::problem::ApiError;
use super::ui::error::error_page;

/// Paths answered in JSON rather than HTML.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/oauth/")
        || path.starts_with("/.well-known/")
}

pub async fn default_service(req: HttpRequest) -> HttpResponse {
    // Unknown paths need no credential: they count against the address's
    // anonymous budget (`web::anonymous`).
    if let Some(refused) = super::anonymous::refusal(&req) {
        return refused;
    }
    let path = req.path().to_string();
    // A path that exists for some other method is a 405, not a 404.
    let known = req.resource_map().has_resource(&path);
    if is_api_path(&path) {
        let e = if known {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed on {path}", req.method()),
            )
        } else {
            ApiError::not_found(format!("no API endpoint at {path}"))
        };
        return e.error_response();
    }
    if known {
        return error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "That action is not available here.",
            None,
        );
    }
    not_found_page(&req)
}

pub fn not_found_page(_req: &HttpRequest) -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "There is no page at this address.",
        None,
    )
}
