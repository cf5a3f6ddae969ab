//! The one way to reach an address an admin typed: HTTP clients whose
//! every connection and redirect hop obeys the [`OutboundRules`], and a
//! resolver for protocols that connect themselves (SMTP).
//!
//! A URL check alone is not enough: a name can resolve to a forbidden
//! address (or be made to, between the check and the connection), and a
//! permitted server can redirect anywhere. So the rules are applied
//!
//! - to every address a host name resolves to, inside the client's DNS
//!   resolver, at connection time: forbidden addresses are dropped, and a
//!   name left with none fails with the rule that refused it;
//! - to address literals (which reqwest does not resolve) before the
//!   request and at every redirect hop.
//!
//! Environment proxies (`HTTP_PROXY`, ...) are not used: a proxy resolves
//! names itself, out of the rules' reach.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::rules::{OutboundRules, Refusal};

/// Resolves with the system resolver, keeping only permitted addresses.
#[derive(Debug, Clone)]
struct GuardedResolver {
    rules: Arc<OutboundRules>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs = resolve(&rules, &host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Why a host cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
}

/// The permitted addresses of `host` (a name or an address literal) with
/// `port`. Refused when the name itself is refused, or when every address
/// it resolves to is; the first refusal is the error.
pub async fn resolve(
    rules: &OutboundRules,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    rules.check_host_str(host)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_string(),
                source,
            })?
            .collect(),
    };
    let mut first_refusal = None;
    let permitted: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match rules.check_ip(a.ip()) {
            Ok(()) => true,
            Err(r) => {
                first_refusal.get_or_insert(r);
                false
            }
        })
        .collect();
    match (permitted.is_empty(), first_refusal) {
        (false, _) => Ok(permitted),
        (true, Some(r)) => Err(r.into()),
        (true, None) => Err(ResolveError::NoAddress {
            host: host.to_string(),
        }),
    }
}

/// The innermost error message ("Connection refused (os error 111)").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// What went wrong with a request, without its URL (it may carry tokens in
/// its query): "cannot connect: …" or "request failed: …".
pub fn request_failure(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_connect() {
        format!("cannot connect: {}", root_cause(&e))
    } else {
        format!("request failed: {}", root_cause(&e))
    }
}

/// An HTTP client under the rules. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Outbound {
    rules: Arc<OutboundRules>,
    http: reqwest::Client,
}

impl Outbound {
    /// Follows at most `max_redirects` redirects (each hop checked; 0: a
    /// redirect is returned as the response), says `user_agent`.
    pub fn new(rules: Arc<OutboundRules>, max_redirects: usize, user_agent: &str) -> Outbound {
        Self::with(rules, max_redirects, user_agent, |b| b)
    }

    /// As [`Outbound::new`], with further client settings (timeouts, pool)
    /// from `tune`.
    pub fn with(
        rules: Arc<OutboundRules>,
        max_redirects: usize,
        user_agent: &str,
        tune: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Outbound {
        let hop_rules = rules.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if max_redirects == 0 {
                return attempt.stop();
            }
            if attempt.previous().len() > max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match hop_rules.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(r) => attempt.error(r),
            }
        });
        let http = tune(reqwest::Client::builder())
            .redirect(redirect)
            .user_agent(user_agent)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                rules: rules.clone(),
            }))
            .build()
            .expect("the HTTP client builds (rustls with bundled roots)");
        Outbound { rules, http }
    }

    pub fn rules(&self) -> &Arc<OutboundRules> {
        &self.rules
    }

    /// A request to `url`, refused up front when its host is an address
    /// (or a name) the rules refuse; names are checked again, resolved,
    /// when the connection is made.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, Refusal> {
        if let Ok(parsed) = reqwest::Url::parse(url) {
            self.rules.check_url(&parsed)?;
        }
        Ok(self.http.request(method, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_refused() {
        let rules = OutboundRules::default();
        let ok = resolve(&rules, "localhost", 80).await.unwrap();
        assert!(ok.iter().all(|a| a.ip().is_loopback()), "{ok:?}");
        let e = resolve(&rules, "169.254.169.254", 80).await.unwrap_err();
        assert!(e.to_string().contains("network.outbound_deny"), "{e}");
        let e = resolve(&rules, "[::ffff:169.254.169.254]", 80)
            .await
            .unwrap_err();
        assert!(matches!(e, ResolveError::Refused(_)), "{e}");
        let strict = OutboundRules::new(&[], false);
        let e = resolve(&strict, "localhost", 80).await.unwrap_err();
        assert!(e.to_string().contains("outbound_allow_private"), "{e}");
    }
}
