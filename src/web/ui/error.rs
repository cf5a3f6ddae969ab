//! Errors on UI pages: a friendly HTML page (or a redirect to the login
//! page), never a stack trace or an internal cause.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpResponse, ResponseError};
use askama::Template;

use super::layout::Layout;
use crate::error::Error;
use crate::web::auth::MaybeSession;

#[derive(Debug)]
pub enum UiError {
    /// No session: to the login page, and back to `next` (a local path)
    /// after signing in.
    LoginRequired {
        next: Option<String>,
    },
    /// A sign-in half done (second factor or enrolment due): to its page,
    /// whatever was asked for.
    SignInUnfinished(&'static str),
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

/// What an error page says, kept on its response so that
/// [`with_navigation`] can draw it again with the signed-in user's
/// navigation (error responses are made without the request at hand).
#[derive(Debug, Clone)]
struct Shown {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

fn draw(shown: &Shown, layout: Layout) -> HttpResponse {
    let reason = shown.status.canonical_reason().unwrap_or("Error");
    let page = ErrorPage {
        layout,
        status: shown.status.as_u16(),
        reason,
        message: &shown.message,
    };
    let mut res = HttpResponse::build(shown.status);
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"));
    if let Some(secs) = shown.retry_after {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    let mut res = res.body(page.render().unwrap_or_else(|_| shown.message.clone()));
    res.extensions_mut().insert(shown.clone());
    res
}

/// Renders the error page. Used for every non-API error response; a
/// signed-in user gets it with the navigation ([`with_navigation`]).
pub fn error_page(status: StatusCode, message: &str, retry_after: Option<u64>) -> HttpResponse {
    let reason = status.canonical_reason().unwrap_or("Error");
    let shown = Shown {
        status,
        message: message.to_string(),
        retry_after,
    };
    draw(&shown, Layout::new(reason, None, String::new(), ""))
}

/// Middleware: an error page answered to a signed-in user is drawn again
/// with the navigation bar, so a 403 or a 404 is not a dead end.
pub async fn with_navigation(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let shown = res.response().extensions().get::<Shown>().cloned();
    let Some(shown) = shown else {
        return Ok(res.map_into_left_body());
    };
    let session = match MaybeSession::extract(res.request()).await {
        Ok(MaybeSession(Some(user))) => user,
        _ => return Ok(res.map_into_left_body()),
    };
    let reason = shown.status.canonical_reason().unwrap_or("Error");
    let page = draw(&shown, Layout::for_session(reason, &session, ""));
    Ok(res.into_response(page).map_into_right_body())
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::LoginRequired { .. } | UiError::SignInUnfinished(_) => StatusCode::SEE_OTHER,
            UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            UiError::Internal(e) => crate::web::problem::status_of(e).0,
            UiError::Api(e) => e.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            UiError::LoginRequired { next } => match next {
                Some(path) => super::see_other(&format!(
                    "/login?next={}",
                    percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC)
                )),
                None => super::see_other("/login"),
            },
            UiError::SignInUnfinished(path) => super::see_other(path),
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
