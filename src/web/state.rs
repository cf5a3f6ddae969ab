//! What every handler can reach: the appliance services plus web policy.

use std::ops::Deref;

use actix_web::{web, HttpRequest};

use super::cookies::CookiePolicy;
use crate::app::App;

#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub cookies: CookiePolicy,
    /// `trusted_proxies`, parsed once.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// New secrets waiting for the page that shows them once.
    pub show_once: super::once::ShowOnce,
    /// Settled hours of the audit page's activity chart.
    pub activity: crate::audit::activity::HourCache,
}

impl Deref for WebState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

/// The state from a request (registered for every route by the factory).
pub fn of(req: &HttpRequest) -> web::Data<WebState> {
    req.app_data::<web::Data<WebState>>()
        .cloned()
        .expect("WebState is registered on the App")
}

/// The client address used for rate limiting and records: the peer, or
/// what a trusted proxy says in `X-Forwarded-For` (see `web::forwarded`).
pub fn client_ip(req: &HttpRequest) -> std::net::IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let Some(st) = req.app_data::<web::Data<WebState>>() else {
        return peer;
    };
    if st.trusted_proxies.is_empty() {
        return peer;
    }
    let values: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = (!values.is_empty()).then(|| values.join(","));
    super::forwarded::client(peer, joined.as_deref(), &st.trusted_proxies)
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}
