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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Email,
    Slack,
    Pagerduty,
    Webhook,
}

impl ChannelType {
    pub const ALL: [ChannelType; 4] = [
        ChannelType::Email,
        ChannelType::Slack,
        ChannelType::Pagerduty,
        ChannelType::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Email => "email",
            ChannelType::Slack => "slack",
            ChannelType::Pagerduty => "pagerduty",
            ChannelType::Webhook => "webhook",
        }
    }

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

impl fmt::Display for ChannelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| "must be one of email, slack, pagerduty, webhook".to_string())
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

/// Reads fields out of a JSON object, collecting every problem.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    fn new(json: &'a Value, allowed: &[&str]) -> Result<Fields<'a>, Vec<FieldError>> {
        let Some(map) = json.as_object() else {
            return Err(vec![FieldError::new("settings", "must be a JSON object")]);
        };
        let errors = map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| FieldError::new(k.clone(), "unknown field"))
            .collect();
        Ok(Fields { map, errors })
    }

    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A string that must be present and non-empty.
    fn required_str(&mut self, name: &str) -> Option<String> {
        match self.optional_str(name) {
            Some(s) => Some(s),
            None => {
                if !self.errors.iter().any(|e| e.field == name) {
                    self.error(name, "is required");
                }
                None
            }
        }
    }

    /// A string that may be absent, `null` or `""` (all meaning "not set").
    fn optional_str(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_host(host: &str) -> Result<(), &'static str> {
    if host.len() > MAX_HOST_LEN {
        return Err("must be at most 253 characters");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#'))
    {
        return Err("must be a host name or IP address, without spaces, scheme or path");
    }
    Ok(())
}

fn check_mailbox(address: &str) -> Result<(), String> {
    if address.len() > MAX_ADDRESS_LEN {
        return Err(format!("must be at most {MAX_ADDRESS_LEN} characters"));
    }
    if has_control(address) {
        return Err("must not contain control characters".into());
    }
    address
        .parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|_| {
            "must be an email address (name@example.com or Name <name@example.com>)".into()
        })
}

/// An http(s) URL with a host and no credentials. The message never
/// repeats the URL (a Slack URL is a secret).
pub(crate) fn check_url(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err("must be an http or https URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must have a host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not contain credentials (user:password@)");
    }
    Ok(())
}

fn check_credential(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_CREDENTIAL_LEN {
        return Err(format!("must be at most {MAX_CREDENTIAL_LEN} characters"));
    }
    if has_control(value) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn parse_email(json: &Value) -> Result<EmailSettings, Vec<FieldError>> {
    let mut f = Fields::new(
        json,
        &[
            "smtp_host",
            "smtp_port",
            "tls",
            "username",
            "password",
            "from",
            "to",
        ],
    )?;

    let smtp_host = f.required_str("smtp_host");
    if let Some(h) = &smtp_host {
        if let Err(m) = check_host(h) {
            f.error("smtp_host", m);
        }
    }

    let smtp_port = match f.map.get("smtp_port") {
        None | Some(Value::Null) => {
            f.error("smtp_port", "is required");
            None
        }
        Some(v) => match v.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p >= 1 => Some(p),
            _ => {
                f.error("smtp_port", "must be an integer between 1 and 65535");
                None
            }
        },
    };

    let tls = match f.map.get("tls") {
        None | Some(Value::Null) => {
            f.error("tls", "is required (none, starttls or tls)");
            None
        }
        Some(Value::String(s)) => match s.parse::<Tls>() {
            Ok(t) => Some(t),
            Err(m) => {
                f.error("tls", m);
                None
            }
        },
        Some(_) => {
            f.error("tls", "must be one of none, starttls, tls");
            None
        }
    };

    let username = f.optional_str("username");
    if let Some(u) = &username {
        if let Err(m) = check_credential(u) {
            f.error("username", m);
        }
    }
    let password = f.optional_str("password");
    if let Some(p) = &password {
        if let Err(m) = check_credential(p) {
            f.error("password", m);
        }
        if username.is_none() {
            f.error("password", "a password needs a username");
        }
    }
    if tls == Some(Tls::None) && username.is_some() {
        f.error(
            "tls",
            "credentials would be sent in clear with tls none; use starttls or tls",
        );
    }

    let from = f.required_str("from");
    if let Some(a) = &from {
        if let Err(m) = check_mailbox(a) {
            f.error("from", m);
        }
    }

    let to = match f.map.get("to") {
        None | Some(Value::Null) => {
            f.error("to", "is required (at least one address)");
            None
        }
        Some(Value::Array(items)) => {
            if items.is_empty() {
                f.error("to", "must have at least one address");
            } else if items.len() > MAX_RECIPIENTS {
                f.error(
                    "to",
                    format!("must have at most {MAX_RECIPIENTS} addresses"),
                );
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate().take(MAX_RECIPIENTS) {
                let field = format!("to[{i}]");
                match item {
                    Value::String(a) => match check_mailbox(a) {
                        Ok(()) => out.push(a.clone()),
                        Err(m) => f.error(field, m),
                    },
                    _ => f.error(field, "must be a string"),
                }
            }
            Some(out)
        }
        Some(_) => {
            f.error("to", "must be an array of email addresses");
            None
        }
    };

    let value = match (smtp_host, smtp_port, tls, from, to) {
        (Some(smtp_host), Some(smtp_port), Some(tls), Some(from), Some(to)) => {
            Some(EmailSettings {
                smtp_host,
                smtp_port,
                tls,
                username,
                password,
                from,
                to,
            })
        }
        _ => None,
    };
    f.finish(value)
}

fn parse_slack(json: &Value) -> Result<SlackSettings, Vec<FieldError>> {
    let mut f = Fields::new(json, &["url"])?;
    let url = f.required_str("url");
    if let Some(u) = &url {
        if let Err(m) = check_url(u) {
            f.error("url", m);
        }
    }
    let value = url.map(|url| SlackSettings { url });
    f.finish(value)
}

fn parse_pagerduty(json: &Value) -> Result<PagerdutySettings, Vec<FieldError>> {
    let mut f = Fields::new(json, &["routing_key", "url"])?;
    let routing_key = f.required_str("routing_key");
    if let Some(k) = &routing_key {
        if k.chars().count() > MAX_ROUTING_KEY_LEN || !k.chars().all(|c| c.is_ascii_graphic()) {
            f.error(
                "routing_key",
                "must be 1 to 64 printable characters without spaces",
            );
        }
    }
    let url = f
        .optional_str("url")
        .unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_string());
    if let Err(m) = check_url(&url) {
        f.error("url", m);
    }
    let value = routing_key.map(|routing_key| PagerdutySettings { routing_key, url });
    f.finish(value)
}

fn parse_webhook(json: &Value) -> Result<WebhookSettings, Vec<FieldError>> {
    let mut f = Fields::new(json, &["url", "secret"])?;
    let url = f.required_str("url");
    if let Some(u) = &url {
        if let Err(m) = check_url(u) {
            f.error("url", m);
        }
    }
    let secret = f.optional_str("secret");
    if let Some(s) = &secret {
        if !WEBHOOK_SECRET_LEN.contains(&s.chars().count()) {
            f.error("secret", "must be 16 to 256 characters");
        } else if has_control(s) {
            f.error("secret", "must not contain control characters");
        }
    }
    let value = url.map(|url| WebhookSettings { url, secret });
    f.finish(value)
}

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
