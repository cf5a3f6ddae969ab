//! Reading each channel type's settings from the JSON a user sends, with
//! an error per field.

use serde_json::Value;

use super::*;

/// Reads fields out of a JSON object, collecting every problem.
pub(super) struct Fields<'a> {
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

pub(super) fn parse_email(json: &Value) -> Result<EmailSettings, Vec<FieldError>> {
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

pub(super) fn parse_slack(json: &Value) -> Result<SlackSettings, Vec<FieldError>> {
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

pub(super) fn parse_pagerduty(json: &Value) -> Result<PagerdutySettings, Vec<FieldError>> {
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

pub(super) fn parse_webhook(json: &Value) -> Result<WebhookSettings, Vec<FieldError>> {
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
