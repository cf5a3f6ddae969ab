//! Delivery of one message to one channel, with a verdict the outbox acts
//! on: delivered, retry later, or failed for good.
//!
//! HTTP channels (`slack`, `pagerduty`, `webhook`): `POST` of JSON with
//! `Content-Type: application/json`, `User-Agent: agentry/<version>` and
//! `Idempotency-Key: <message id>` (plus `X-Agentry-Signature` for a webhook
//! with a secret). 2xx is delivered; 408, 429, 5xx and network errors
//! (cannot connect, timeout, connection reset) are retried; any other
//! status is a failure: the receiver refused the message and would refuse
//! it again.
//!
//! Email: SMTP through lettre, one transport per delivery. A transient SMTP
//! reply (4xx) and connection problems are retried; a permanent one (5xx)
//! is a failure.
//!
//! Error strings are short, meant for the notification log, and never hold
//! the URL (a Slack URL is a secret): reqwest errors are stripped of it and
//! reduced to their root cause.

use std::time::Duration;

use std::sync::Arc;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use super::channel::{EmailSettings, Settings, Tls};
use super::message::{truncate, Message, USER_AGENT as AGENT};
use super::{email, pagerduty, slack, webhook};
use crate::net::{Outbound, OutboundRules, ResolveError};

/// The `Idempotency-Key` header: the message id, stable across retries.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// At most this many characters of a refusing receiver's body in an error.
const BODY_SNIPPET: usize = 200;
/// Longest error string returned.
const ERROR_MAX: usize = 500;

/// The HTTP client deliveries go through, under the outbound rules:
/// redirects are not followed (a receiver that redirects is misconfigured,
/// and a redirect could carry a signed body elsewhere), and requests say
/// who sends them.
pub fn client(rules: Arc<OutboundRules>) -> Outbound {
    Outbound::new(rules, 0, AGENT)
}

/// What the outbox does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// A temporary problem: try again later. The string says what happened.
    Retry(String),
    /// The receiver refused it, or it cannot be sent as configured: do not
    /// retry.
    Fail(String),
}

impl Outcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered)
    }

    /// The error for the notification log, if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Retry(e) | Outcome::Fail(e) => Some(e),
        }
    }
}

/// Deliver `msg` once through the channel `channel_name` configured with
/// `settings`, giving up after `timeout` (the whole HTTP request, body
/// included; the whole SMTP exchange, each of its steps within half of
/// it).
pub async fn deliver(
    http: &Outbound,
    settings: &Settings,
    channel_name: &str,
    msg: &Message,
    timeout: Duration,
) -> Outcome {
    match settings {
        Settings::Slack(s) => {
            let body = to_bytes(&slack::body(msg));
            post(http, &s.url, body, None, msg, timeout).await
        }
        Settings::Pagerduty(p) => match pagerduty::body(msg, &p.routing_key) {
            Some(event) => post(http, &p.url, to_bytes(&event), None, msg, timeout).await,
            None => Outcome::Fail(
                "cannot acknowledge or resolve a PagerDuty incident: the alert has no fingerprint"
                    .into(),
            ),
        },
        Settings::Webhook(w) => {
            let body = to_bytes(&webhook::body(msg, channel_name));
            let signature = w.secret.as_deref().map(|s| webhook::signature(s, &body));
            post(http, &w.url, body, signature, msg, timeout).await
        }
        Settings::Email(e) => send_email(http.rules(), e, msg, timeout).await,
    }
}

fn to_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value serialises")
}

async fn post(
    http: &Outbound,
    url: &str,
    body: Vec<u8>,
    signature: Option<String>,
    msg: &Message,
    timeout: Duration,
) -> Outcome {
    let req = match http.request(reqwest::Method::POST, url) {
        Ok(r) => r,
        Err(refusal) => return Outcome::Fail(refusal.to_string()),
    };
    let mut req = req
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, AGENT)
        .header(IDEMPOTENCY_KEY_HEADER, msg.id.as_str());
    if let Some(sig) = signature {
        req = req.header(webhook::SIGNATURE_HEADER, sig);
    }
    let outcome = match req.body(body).send().await {
        Err(e) => request_error(e, timeout),
        Ok(res) => response_outcome(res).await,
    };
    scrub(outcome, url)
}

/// The verdict on a receiver's answer.
async fn response_outcome(mut res: reqwest::Response) -> Outcome {
    let status = res.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let retry_after = res
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|v| truncate(&printable(v), 40));
    let snippet = body_snippet(&mut res).await;
    let code = status.as_u16();
    let mut what = format!("status {code}");
    if let Some(r) = retry_after {
        what.push_str(&format!(" (retry-after {r})"));
    }
    if !snippet.is_empty() {
        what.push_str(&format!(": {snippet}"));
    }
    if code == 408 || code == 429 || status.is_server_error() {
        Outcome::Retry(format!("the receiver is unavailable: {what}"))
    } else if status.is_redirection() {
        Outcome::Fail(format!(
            "the receiver answered with a redirect, which is not followed: {what}"
        ))
    } else {
        Outcome::Fail(format!("the receiver refused the notification: {what}"))
    }
}

/// The first characters of the body, on one line; empty if unreadable.
async fn body_snippet(res: &mut reqwest::Response) -> String {
    let mut seen = Vec::new();
    while seen.len() < BODY_SNIPPET * 4 {
        match res.chunk().await {
            Ok(Some(chunk)) => seen.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&seen);
    truncate(printable(&text).trim(), BODY_SNIPPET)
}

fn request_error(e: reqwest::Error, timeout: Duration) -> Outcome {
    let e = e.without_url();
    if e.is_timeout() {
        Outcome::Retry(format!("timed out after {}", human(timeout)))
    } else if e.is_connect() {
        Outcome::Retry(format!("cannot connect: {}", root_cause(&e)))
    } else if e.is_builder() {
        Outcome::Fail(format!("cannot build the request: {}", root_cause(&e)))
    } else if e.is_redirect() {
        Outcome::Fail(format!("redirect refused: {}", root_cause(&e)))
    } else {
        Outcome::Retry(format!("request failed: {}", root_cause(&e)))
    }
}

/// The innermost error message, printable.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    printable(&crate::net::root_cause(e))
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Control characters become spaces.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Belt and braces: no error string holds the URL, or its path and query
/// (where a Slack URL keeps its token), whatever the layers below put in
/// their messages. Also caps the length.
fn scrub(outcome: Outcome, url: &str) -> Outcome {
    let clean = |s: String| -> String {
        let mut s = s;
        let mut secrets = vec![url.to_string()];
        if let Ok(parsed) = reqwest::Url::parse(url) {
            secrets.push(parsed.to_string());
            let mut tail = parsed.path().to_string();
            if let Some(q) = parsed.query() {
                tail.push('?');
                tail.push_str(q);
            }
            if tail.len() > 1 {
                secrets.push(tail);
            }
        }
        for secret in secrets {
            if !secret.is_empty() {
                s = s.replace(&secret, "<url>");
            }
        }
        truncate(&s, ERROR_MAX)
    };
    match outcome {
        Outcome::Delivered => Outcome::Delivered,
        Outcome::Retry(e) => Outcome::Retry(clean(e)),
        Outcome::Fail(e) => Outcome::Fail(clean(e)),
    }
}

async fn send_email(
    rules: &OutboundRules,
    s: &EmailSettings,
    msg: &Message,
    timeout: Duration,
) -> Outcome {
    let email = match email::compose(msg, s) {
        Ok(e) => e,
        Err(e) => return Outcome::Fail(e),
    };
    // lettre connects by itself: resolve the host under the outbound rules
    // and hand it the address, keeping the host name for the certificate.
    let addr = match crate::net::resolve(rules, &s.smtp_host, s.smtp_port).await {
        Ok(addrs) => addrs[0].ip().to_string(),
        Err(ResolveError::Refused(r)) => return Outcome::Fail(r.to_string()),
        Err(e) => return Outcome::Retry(format!("SMTP: {e}")),
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr);
    let builder = match s.tls {
        Tls::None => Ok(transport),
        Tls::Starttls => {
            TlsParameters::new(s.smtp_host.clone()).map(|p| transport.tls(SmtpTls::Required(p)))
        }
        Tls::Tls => {
            TlsParameters::new(s.smtp_host.clone()).map(|p| transport.tls(SmtpTls::Wrapper(p)))
        }
    };
    // Each SMTP step gets half the budget: after a refusal lettre still
    // waits for the reply to its QUIT, and the refusal must not be lost to
    // the overall timeout when a server is slow to answer that.
    let step = (timeout / 2).max(Duration::from_millis(100));
    let mut builder = match builder {
        Ok(b) => b.port(s.smtp_port).timeout(Some(step)),
        Err(e) => return Outcome::Fail(format!("cannot set up TLS for the SMTP host: {e}")),
    };
    if let Some(user) = &s.username {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            s.password.clone().unwrap_or_default(),
        ));
    }
    let transport = builder.build();
    // lettre's timeout bounds each step; this bounds the whole exchange.
    let result = tokio::time::timeout(timeout, transport.send(email)).await;
    transport.shutdown().await;
    let outcome = match result {
        Err(_) => Outcome::Retry(format!("timed out after {}", human(timeout))),
        Ok(Ok(_)) => Outcome::Delivered,
        Ok(Err(e)) => smtp_error(&e),
    };
    match outcome {
        Outcome::Retry(e) => Outcome::Retry(truncate(&e, ERROR_MAX)),
        Outcome::Fail(e) => Outcome::Fail(truncate(&e, ERROR_MAX)),
        Outcome::Delivered => Outcome::Delivered,
    }
}

fn smtp_error(e: &lettre::transport::smtp::Error) -> Outcome {
    let text = printable(&e.to_string());
    if e.is_permanent() {
        Outcome::Fail(format!("the SMTP server refused the message: {text}"))
    } else if e.is_transient() {
        Outcome::Retry(format!("the SMTP server deferred the message: {text}"))
    } else if e.is_timeout() {
        Outcome::Retry("SMTP timed out".to_string())
    } else if e.is_tls() {
        Outcome::Retry(format!("SMTP TLS error: {}", root_cause(e)))
    } else if e.is_client() {
        // Configuration problems: STARTTLS not offered, no usable
        // authentication mechanism.
        Outcome::Fail(format!("SMTP: {text}"))
    } else {
        Outcome::Retry(format!("SMTP: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_url_and_its_path() {
        let url = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN";
        let out = scrub(
            Outcome::Retry(format!("x {url} y /services/T0/B0/SECRETTOKEN z")),
            url,
        );
        let Outcome::Retry(e) = out else { panic!() };
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        assert_eq!(scrub(Outcome::Delivered, url), Outcome::Delivered);
        let Outcome::Fail(e) = scrub(Outcome::Fail("é".repeat(2000)), url) else {
            panic!()
        };
        assert_eq!(e.chars().count(), ERROR_MAX);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(10)), "10 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn outcome_helpers() {
        assert!(Outcome::Delivered.is_delivered());
        assert_eq!(Outcome::Retry("x".into()).error(), Some("x"));
        assert_eq!(Outcome::Delivered.error(), None);
    }
}
