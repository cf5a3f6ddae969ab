//! Server-rendered admin pages (askama). One module per page.

pub mod agents;
pub mod alert_rules;
pub mod alerts;
pub mod audit;
pub mod channels;
pub mod dashboard;
pub mod encryption_keys;
pub mod error;
pub mod escalation_policies;
pub mod forms;
pub mod layout;
pub mod login;
pub mod monitors;
pub mod notifications;
pub mod roles;
pub mod signing_keys;
pub mod silences;
pub mod users;

use actix_web::http::header;
use actix_web::HttpResponse;
use askama::Template;

use self::error::UiError;

/// Renders a template into an HTML response with `status`.
pub fn render<T: Template>(
    status: actix_web::http::StatusCode,
    page: &T,
) -> Result<HttpResponse, UiError> {
    let html = page
        .render()
        .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
    Ok(HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(html))
}

/// A 303 See Other to `to` (the answer to every successful form post).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(login::show)
        .service(login::submit)
        .service(login::logout)
        .service(dashboard::show)
        .service(audit::list)
        .service(audit::verify_chain)
        .service(audit::detail)
        .service(users::list)
        .service(users::create)
        .service(users::detail)
        .service(users::update)
        .service(users::reset_password)
        .service(users::unlock)
        .service(users::revoke_sessions)
        .service(users::delete)
        .service(agents::list)
        .service(agents::create)
        .service(agents::detail)
        .service(agents::update)
        .service(agents::create_key)
        .service(agents::show_new_key)
        .service(agents::revoke_key)
        .service(agents::quarantine)
        .service(agents::delete)
        .service(roles::list)
        .service(roles::create)
        .service(roles::detail)
        .service(roles::update)
        .service(roles::delete)
        .service(roles::assign)
        .service(roles::unassign)
        .service(roles::access)
        .service(signing_keys::list)
        .service(signing_keys::rotate)
        .service(monitors::list)
        .service(monitors::create)
        .service(monitors::detail)
        .service(monitors::update)
        .service(monitors::delete)
        .service(encryption_keys::list)
        .service(encryption_keys::create)
        .service(encryption_keys::test)
        .service(encryption_keys::rotate)
        .service(encryption_keys::update)
        .service(alerts::list)
        .service(alerts::detail)
        .service(alerts::acknowledge)
        .service(alerts::silence)
        // `/new` before `/{name}`: the literal path wins.
        .service(alert_rules::list)
        .service(alert_rules::new)
        .service(alert_rules::create)
        .service(alert_rules::detail)
        .service(alert_rules::update)
        .service(alert_rules::toggle)
        .service(alert_rules::delete)
        .service(silences::list)
        .service(silences::create)
        .service(silences::detail)
        .service(silences::expire)
        .service(channels::list)
        .service(channels::new)
        .service(channels::create)
        .service(channels::detail)
        .service(channels::update)
        .service(channels::delete)
        .service(channels::send_test)
        .service(escalation_policies::list)
        .service(escalation_policies::new)
        .service(escalation_policies::create)
        .service(escalation_policies::detail)
        .service(escalation_policies::update)
        .service(escalation_policies::delete)
        .service(notifications::list);
}
