//! Server-rendered admin pages (askama). One module per page.

pub mod account;
pub mod agents;
pub mod alert_rules;
pub mod alerts;
pub mod approval_rules;
pub mod approvals;
pub mod audit;
pub mod authorize;
pub mod channels;
pub mod connected_apps;
pub mod dashboard;
pub mod encryption_keys;
pub mod error;
pub mod escalation_policies;
pub mod filters;
pub mod forms;
pub mod hub;
pub mod layout;
pub mod login;
pub mod logs;
pub mod mcp_gateway;
pub mod mcp_servers;
pub mod monitors;
pub mod notifications;
pub mod oauth_clients;
pub mod passkeys;
pub mod qr;
pub mod roles;
pub mod second_factor;
pub mod series;
pub mod signing_keys;
pub mod silences;
pub mod sso;
pub mod traces;
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

/// Registers every page, each module its own routes.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    login::routes(cfg);
    second_factor::routes(cfg);
    account::routes(cfg);
    passkeys::routes(cfg);
    sso::routes(cfg);
    authorize::routes(cfg);
    dashboard::routes(cfg);
    approvals::routes(cfg);
    approval_rules::routes(cfg);
    audit::routes(cfg);
    traces::routes(cfg);
    logs::routes(cfg);
    users::routes(cfg);
    hub::routes(cfg);
    series::routes(cfg);
    agents::routes(cfg);
    roles::routes(cfg);
    signing_keys::routes(cfg);
    monitors::routes(cfg);
    mcp_servers::routes(cfg);
    encryption_keys::routes(cfg);
    alerts::routes(cfg);
    alert_rules::routes(cfg);
    silences::routes(cfg);
    channels::routes(cfg);
    escalation_policies::routes(cfg);
    notifications::routes(cfg);
    oauth_clients::routes(cfg);
    connected_apps::routes(cfg);
}
