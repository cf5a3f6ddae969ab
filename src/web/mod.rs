//! The HTTP edge: actix-web app factory, extractors, problem+json, CSRF,
//! headers, embedded assets, OpenAPI. Handlers stay thin: extract, call one
//! domain function, map the result.

pub mod anonymous;
pub mod api;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod context;
pub mod cookies;
pub mod csrf;
pub mod fallback;
pub mod forwarded;
pub mod gateway;
pub mod headers;
pub mod needs;
pub mod once;
pub mod openapi;
pub mod openapi_links;
pub mod pagination;
pub mod problem;
pub mod query;
pub mod state;
pub mod tls;
pub mod ui;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpServer};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::app::App;
use cookies::CookiePolicy;
use state::WebState;

/// In-flight requests get this long to finish on shutdown.
const SHUTDOWN_GRACE_SECS: u64 = 30;

/// Builds the HTTP server on `listener` (TLS when `tls` is given). Signals
/// are handled by the caller, which stops the server through its handle.
pub fn server(
    app: App,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server> {
    let tls_on = tls.is_some();
    let cookies = CookiePolicy {
        secure: tls_on || app.config.session.cookie_secure,
    };
    let limit = app.config.max_body_bytes;
    let blocking = app.config.database.blocking_threads();
    let trusted_proxies = app.config.trusted_proxy_networks();
    let state = web::Data::new(WebState {
        app,
        cookies,
        trusted_proxies,
        show_once: once::ShowOnce::default(),
        activity: Default::default(),
    });

    let http = HttpServer::new(move || {
        let (app, api) = actix_web::App::new()
            .into_utoipa_app()
            .openapi(openapi::ApiDoc::openapi())
            .configure(move |c| api::configure(c, limit))
            .split_for_parts();
        app.app_data(state.clone())
            // Completed here, where the paths are all in: the extractors'
            // and guards' responses are added to every operation.
            .app_data(web::Data::new(openapi::finish(api)))
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(problem::json_error),
            )
            .app_data(
                web::FormConfig::default()
                    .limit(limit)
                    .error_handler(problem::form_error),
            )
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::QueryConfig::default().error_handler(problem::query_error))
            .app_data(web::PathConfig::default().error_handler(problem::path_error))
            .configure(ui::configure)
            .service(assets::asset)
            .default_service(web::to(fallback::default_service))
            .wrap(from_fn(ui::error::with_navigation))
            .wrap(from_fn(anonymous::limit))
            .wrap(headers::security_headers(tls_on))
            .wrap(from_fn(headers::request_id))
    })
    .disable_signals()
    .worker_max_blocking_threads(blocking)
    .shutdown_timeout(SHUTDOWN_GRACE_SECS);

    let http = match tls {
        Some(cfg) => http.listen_rustls_0_23(listener, cfg)?,
        None => http.listen(listener)?,
    };
    Ok(http.run())
}
