//! RFC 9457 problem+json: the one place where errors become API responses.
//!
//! Every API error, from a domain [`Error`] to a malformed body rejected by
//! an extractor, is rendered here as
//! `{"type", "title", "status", "detail", "code", "errors"?}`. Internal
//! causes are logged with the request id and never returned.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, FieldErrors};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem kind: `urn:agentry:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// Per-field messages for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
}

/// An error on its way to becoming a problem+json response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub fields: Option<FieldErrors>,
    pub retry_after: Option<u64>,
    /// Adds `WWW-Authenticate: Bearer` (with the RFC 6750 error when set).
    pub bearer_challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            fields: None,
            retry_after: None,
            bearer_challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> ApiError {
        ApiError {
            bearer_challenge: Some("invalid_token"),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = code;
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:agentry:problem:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            errors: self.fields.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, CONTENT_TYPE));
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(err) = self.bearer_challenge {
            let value = format!("Bearer realm=\"agentry\", error=\"{err}\"");
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.insert_header((header::WWW_AUTHENTICATE, v));
            }
        }
        res.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

/// The status and problem code a domain error maps to (shared by the API
/// and the UI error pages).
pub fn status_of(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::Rejected { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
        Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = status_of(&e);
        let mut out = ApiError::new(status, code, e.to_string());
        match e {
            Error::Validation { fields, .. } => out.fields = Some(fields),
            Error::Unauthenticated => out.bearer_challenge = Some("invalid_token"),
            Error::RateLimited { retry_after_secs } => {
                out.retry_after = Some(retry_after_secs);
                out.detail = "too many requests; retry later".into();
            }
            Error::Unavailable(m) => {
                tracing::warn!(reason = %m, "service unavailable");
                out.retry_after = Some(5);
            }
            Error::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                out.detail =
                    "an internal error occurred; the request id identifies it in the server log"
                        .into();
            }
            Error::NotFound(_)
            | Error::Conflict(_)
            | Error::Forbidden(_)
            | Error::Rejected { .. } => {}
        }
        out
    }
}

// ---- extractor errors (bodies, queries, paths) ------------------------------

/// Malformed, mistyped, unknown-field, wrong-content-type and oversized JSON
/// bodies.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let e = match err {
        J::OverflowKnownLength { length, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is {length} bytes; the limit is {limit}"),
        ),
        J::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body exceeds the limit of {limit} bytes"),
        ),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ),
        J::Deserialize(e) => serde_error(&e),
        other => ApiError::bad_request("bad_body", format!("cannot read the body: {other}")),
    };
    e.into()
}

fn serde_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the body does not match the expected shape: {e}"),
        ),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
    }
}

/// Form bodies (OAuth endpoints, UI forms reached by API clients).
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as U;
    let e = match err {
        U::Overflow { size, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is {size} bytes; the limit is {limit}"),
        ),
        U::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/x-www-form-urlencoded",
        ),
        other => ApiError::bad_request("bad_form", format!("cannot read the form: {other}")),
    };
    e.into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request("bad_query", format!("invalid query string: {err}")).into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::not_found(format!("invalid path parameter: {err}")).into()
}

/// A JSON body whose extraction error is surfaced by the handler, after the
/// permission guard: extractors run concurrently, and a caller without the
/// permission must get 403 whatever body it sent.
pub type Body<T> = Result<actix_web::web::Json<T>, actix_web::Error>;

impl From<actix_web::Error> for ApiError {
    fn from(e: actix_web::Error) -> Self {
        // Body errors were rendered by `json_error` into an ApiError.
        match e.as_error::<ApiError>() {
            Some(api) => api.clone(),
            None => ApiError::bad_request("bad_body", format!("cannot read the body: {e}")),
        }
    }
}
