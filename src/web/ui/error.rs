//! Errors on UI pages: a friendly HTML page (or a redirect to the login
//! page), never a stack trace or an internal cause.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::layout::Layout;
use crate::error::Error;

#[derive(Debug)]
pub enum UiError {
    LoginRequired,
    Csrf,
    RateLimited {
        retry_after_secs: u64,
    },
    Internal(Error),
    /// An API-layer refusal shown as a page (403, 404, 503, ...).
    Api(crate::web::problem::ApiError),
}

impl From<crate::web::problem::ApiError> for UiError {
    fn from(e: crate::web::problem::ApiError) -> Self {
        UiError::Api(e)
    }
}

impl From<Error> for UiError {
    fn from(e: Error) -> Self {
        match e {
            Error::RateLimited { retry_after_secs } => UiError::RateLimited { retry_after_secs },
            other => UiError::Internal(other),
        }
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// Renders the error page. Used for every non-API error response.
pub fn error_page(status: StatusCode, message: &str, retry_after: Option<u64>) -> HttpResponse {
    let page = ErrorPage {
        layout: Layout::new(
            status.canonical_reason().unwrap_or("Error"),
            None,
            String::new(),
            "",
        ),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"));
    if let Some(secs) = retry_after {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    res.body(page.render().unwrap_or_else(|_| message.to_string()))
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::LoginRequired => StatusCode::SEE_OTHER,
            UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            UiError::Internal(e) => crate::web::problem::status_of(e).0,
            UiError::Api(e) => e.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            UiError::LoginRequired => super::see_other("/login"),
            UiError::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "The form was missing its security token or it had expired. Go back, reload the page and try again.",
                None,
            ),
            UiError::RateLimited { retry_after_secs } => error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts from your address. Wait a minute and try again.",
                Some(*retry_after_secs),
            ),
            UiError::Api(e) => {
                let message = if e.status.is_server_error() {
                    "The service cannot do that right now. Try again shortly."
                } else {
                    e.detail.as_str()
                };
                error_page(e.status, message, e.retry_after)
            }
            UiError::Internal(e) => {
                let status = self.status_code();
                if status.is_server_error() {
                    tracing::error!(error = %e, "error on a UI page");
                }
                let message = if status.is_server_error() {
                    "Something went wrong on our side. The server log has the details.".to_string()
                } else {
                    e.to_string()
                };
                error_page(status, &message, None)
            }
        }
    }
}
