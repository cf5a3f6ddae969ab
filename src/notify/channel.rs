//! Channel settings: one struct per channel type, validated from the JSON a
//! user sends, split into a public part (stored and shown in clear) and a
//! secret part (stored encrypted by the caller), and joined back.
//!
//! Secret fields: email `password`; slack `url` (the incoming-webhook URL
//! carries its token); pagerduty `routing_key`; webhook `secret`. They never
//! appear in `Debug` output nor in validation messages.
//!
//! Updates ([`Settings::parse_update`]): a secret field absent from the JSON
//! keeps its stored value; `null` (or `""`) clears an optional secret and is
//! refused for a required one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The default PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// At most this many recipients per email channel.
pub const MAX_RECIPIENTS: usize = 50;

const MAX_URL_LEN: usize = 2048;
const MAX_HOST_LEN: usize = 253;
const MAX_CREDENTIAL_LEN: usize = 256;
const MAX_ADDRESS_LEN: usize = 320;
const MAX_ROUTING_KEY_LEN: usize = 64;
const WEBHOOK_SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

const REDACTED: &str = "<redacted>";

crate::closed_set! {
    /// The kinds of notification channel.
    pub enum ChannelType {
        Email = "email",
        Slack = "slack",
        Pagerduty = "pagerduty",
        Webhook = "webhook",
    }
}

impl ChannelType {
    /// The names of this type's secret fields, set or not.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            ChannelType::Email => &["password"],
            ChannelType::Slack => &["url"],
            ChannelType::Pagerduty => &["routing_key"],
            ChannelType::Webhook => &["secret"],
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain SMTP (only for relays on a trusted network; no credentials).
    None,
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Tls,
}

impl Tls {
    pub fn as_str(self) -> &'static str {
        match self {
            Tls::None => "none",
            Tls::Starttls => "starttls",
            Tls::Tls => "tls",
        }
    }
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tls {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Tls::None),
            "starttls" => Ok(Tls::Starttls),
            "tls" => Ok(Tls::Tls),
            _ => Err("must be one of none, starttls, tls".to_string()),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    /// Secret.
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SlackSettings {
    /// Secret: the incoming-webhook URL carries its token.
    pub url: String,
}

#[derive(Clone, PartialEq, Eq)]
pub struct PagerdutySettings {
    /// Secret.
    pub routing_key: String,
    /// Events API v2 endpoint, [`PAGERDUTY_EVENTS_URL`] unless set.
    pub url: String,
}

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: String,
    /// Secret: the HMAC-SHA256 key of the `X-Agentry-Signature` header.
    pub secret: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Settings {
    Email(EmailSettings),
    Slack(SlackSettings),
    Pagerduty(PagerdutySettings),
    Webhook(WebhookSettings),
}

/// One validation problem: which field (`to[1]`, `smtp_port`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// As a field → message map (the shape of validation errors in the
    /// API); the first message per field wins.
    pub fn to_map(errors: &[FieldError]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for e in errors {
            out.entry(e.field.clone())
                .or_insert_with(|| e.message.clone());
        }
        out
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

// ---------------------------------------------------------------- Debug ---

/// Prints as `"<redacted>"`.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(REDACTED, f)
    }
}

fn redact_opt(v: &Option<String>) -> Option<Redacted> {
    v.as_ref().map(|_| Redacted)
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &redact_opt(&self.password))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSettings")
            .field("url", &Redacted)
            .finish()
    }
}

impl fmt::Debug for PagerdutySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerdutySettings")
            .field("routing_key", &Redacted)
            .field("url", &self.url)
            .finish()
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &redact_opt(&self.secret))
            .finish()
    }
}

// ----------------------------------------------------------- Validation ---

mod parse;
use parse::{parse_email, parse_pagerduty, parse_slack, parse_webhook};

impl Settings {
    /// Validate settings sent by a user (a JSON object). Unknown fields are
    /// refused; every problem is reported with its field name (`to[1]`).
    pub fn parse(kind: ChannelType, json: &Value) -> Result<Settings, Vec<FieldError>> {
        match kind {
            ChannelType::Email => parse_email(json).map(Settings::Email),
            ChannelType::Slack => parse_slack(json).map(Settings::Slack),
            ChannelType::Pagerduty => parse_pagerduty(json).map(Settings::Pagerduty),
            ChannelType::Webhook => parse_webhook(json).map(Settings::Webhook),
        }
    }

    /// Same as [`Settings::parse`], for an update of `existing` (same type):
    /// secret fields absent from `json` keep their current value.
    pub fn parse_update(existing: &Settings, json: &Value) -> Result<Settings, Vec<FieldError>> {
        let mut merged = match json.as_object() {
            Some(map) => map.clone(),
            None => return Settings::parse(existing.kind(), json),
        };
        let (_, secrets) = existing.split();
        if let Value::Object(secrets) = secrets {
            for (k, v) in secrets {
                merged.entry(k).or_insert(v);
            }
        }
        Settings::parse(existing.kind(), &Value::Object(merged))
    }

    /// Whether the outbound rules let deliveries reach this channel's
    /// destination, judged from what it names (an address literal, a
    /// metadata host); the resolved address is checked again at every
    /// delivery. `Err((field, message))`.
    pub fn check_destination(
        &self,
        rules: &crate::net::OutboundRules,
    ) -> Result<(), (&'static str, String)> {
        let (field, checked) = match self {
            Settings::Email(e) => ("smtp_host", rules.check_host_str(&e.smtp_host)),
            Settings::Slack(SlackSettings { url })
            | Settings::Pagerduty(PagerdutySettings { url, .. })
            | Settings::Webhook(WebhookSettings { url, .. }) => (
                "url",
                match reqwest::Url::parse(url) {
                    Ok(u) => rules.check_url(&u),
                    Err(_) => Ok(()),
                },
            ),
        };
        checked.map_err(|r| (field, r.to_string()))
    }

    pub fn kind(&self) -> ChannelType {
        match self {
            Settings::Email(_) => ChannelType::Email,
            Settings::Slack(_) => ChannelType::Slack,
            Settings::Pagerduty(_) => ChannelType::Pagerduty,
            Settings::Webhook(_) => ChannelType::Webhook,
        }
    }

    /// Split into the part shown and stored in clear, and the secret part
    /// (a JSON object holding only the secret fields that are set; stored
    /// encrypted by the caller).
    pub fn split(&self) -> (Value, Value) {
        let mut public = Map::new();
        let mut secrets = Map::new();
        match self {
            Settings::Email(e) => {
                public.insert("smtp_host".into(), e.smtp_host.clone().into());
                public.insert("smtp_port".into(), e.smtp_port.into());
                public.insert("tls".into(), e.tls.as_str().into());
                public.insert("username".into(), e.username.clone().into());
                public.insert("from".into(), e.from.clone().into());
                public.insert("to".into(), e.to.clone().into());
                if let Some(p) = &e.password {
                    secrets.insert("password".into(), p.clone().into());
                }
            }
            Settings::Slack(s) => {
                secrets.insert("url".into(), s.url.clone().into());
            }
            Settings::Pagerduty(p) => {
                public.insert("url".into(), p.url.clone().into());
                secrets.insert("routing_key".into(), p.routing_key.clone().into());
            }
            Settings::Webhook(w) => {
                public.insert("url".into(), w.url.clone().into());
                if let Some(s) = &w.secret {
                    secrets.insert("secret".into(), s.clone().into());
                }
            }
        }
        (Value::Object(public), Value::Object(secrets))
    }

    /// The inverse of [`Settings::split`] (validated again, so stored
    /// settings hold the same invariants as fresh ones).
    pub fn join(kind: ChannelType, public: &Value, secrets: &Value) -> Result<Settings, String> {
        let (Some(public), Some(secrets)) = (public.as_object(), secrets.as_object()) else {
            return Err("stored channel settings are not JSON objects".into());
        };
        let mut merged = public.clone();
        for (k, v) in secrets {
            if !kind.secret_fields().contains(&k.as_str()) {
                return Err(format!("stored secrets hold a non-secret field '{k}'"));
            }
            merged.insert(k.clone(), v.clone());
        }
        Settings::parse(kind, &Value::Object(merged)).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Names of the secret fields that are set (for display: "url: set").
    pub fn secrets_set(&self) -> Vec<&'static str> {
        match self {
            Settings::Email(e) if e.password.is_some() => vec!["password"],
            Settings::Email(_) => vec![],
            Settings::Slack(_) => vec!["url"],
            Settings::Pagerduty(_) => vec!["routing_key"],
            Settings::Webhook(w) if w.secret.is_some() => vec!["secret"],
            Settings::Webhook(_) => vec![],
        }
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
