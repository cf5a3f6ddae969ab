//! Dynamic client registration (RFC 7591): reading a registration request
//! the way clients in the wild send it (unknown metadata ignored, several
//! redirect URIs of mixed kinds), and the answer.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::clients::{self, NewClient};
use crate::db::oauth_clients::AuthMethod;

/// Largest registration body read.
pub const MAX_BODY: usize = 64 * 1024;

/// RFC 7591 §3.2.2 error codes.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationError {
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            RegistrationError::InvalidRedirectUri(m)
            | RegistrationError::InvalidClientMetadata(m) => m,
        }
    }
}

/// What a registration asks for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub auth_method: AuthMethod,
    pub client_uri: Option<String>,
}

fn metadata(m: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(m.into())
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, RegistrationError> {
    v.as_array()
        .ok_or_else(|| metadata(format!("{field} must be an array of strings")))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| metadata(format!("{field} must be an array of strings")))
        })
        .collect()
}

/// Reads a registration body. Unknown metadata (`resource`, `logo_uri`,
/// `software_id`, ...) is accepted and ignored.
pub fn parse(body: &Map<String, Value>) -> Result<Request, RegistrationError> {
    let redirect_uris = match body.get("redirect_uris") {
        Some(v) => string_list(v, "redirect_uris")?,
        None => {
            return Err(RegistrationError::InvalidRedirectUri(
                "redirect_uris is required for the authorization code flow".into(),
            ))
        }
    };
    if let Err((field, m)) = clients::check_redirect_uris(&redirect_uris) {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "{field}: {m}"
        )));
    }
    let auth_method = match body.get("token_endpoint_auth_method") {
        // RFC 7591 §2: the default is client_secret_basic.
        None => AuthMethod::ClientSecretBasic,
        Some(v) => v.as_str().and_then(AuthMethod::parse).ok_or_else(|| {
            metadata(format!(
                "token_endpoint_auth_method must be one of {}",
                AuthMethod::names()
            ))
        })?,
    };
    if let Some(v) = body.get("grant_types") {
        let grants = string_list(v, "grant_types")?;
        if let Some(bad) = grants
            .iter()
            .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
        {
            return Err(metadata(format!(
                "grant type {:?} cannot be registered here; use authorization_code and refresh_token",
                crate::names::shown(bad)
            )));
        }
    }
    if let Some(v) = body.get("response_types") {
        if string_list(v, "response_types")?
            .iter()
            .any(|r| r != "code")
        {
            return Err(metadata("only the response type code is supported"));
        }
    }
    let name = match body.get("client_name") {
        None | Some(Value::Null) => "Unnamed client".to_string(),
        Some(v) => {
            let n = v
                .as_str()
                .ok_or_else(|| metadata("client_name must be a string"))?
                .trim()
                .to_string();
            clients::check_name(&n).map_err(|m| metadata(format!("client_name {m}")))?;
            n
        }
    };
    let client_uri = match body.get("client_uri") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let u = v
                .as_str()
                .ok_or_else(|| metadata("client_uri must be a string"))?;
            let ok = u.len() <= 2048
                && url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "https" | "http"));
            if !ok {
                return Err(metadata("client_uri must be an http(s) URL"));
            }
            Some(u.to_string())
        }
    };
    Ok(Request {
        name,
        redirect_uris,
        auth_method,
        client_uri,
    })
}

/// RFC 7591 §3.2.1: the registered client's metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationResponse {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<&'static str>,
    pub response_types: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
}

pub fn response(new: NewClient, issued_at_secs: i64) -> RegistrationResponse {
    let c = new.client;
    RegistrationResponse {
        client_secret_expires_at: new.client_secret.as_ref().map(|_| 0),
        client_secret: new.client_secret,
        client_id: c.client_id,
        client_id_issued_at: issued_at_secs,
        client_name: c.name,
        redirect_uris: c.redirect_uris,
        token_endpoint_auth_method: c.token_endpoint_auth_method,
        grant_types: vec!["authorization_code", "refresh_token"],
        response_types: vec!["code"],
        client_uri: c.client_uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(v: Value) -> Result<Request, RegistrationError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn cursor_style_registrations_are_accepted() {
        let r = parse_json(json!({
            "client_name": "Cursor",
            "redirect_uris": [
                "cursor://anysphere.cursor-mcp/oauth/callback",
                "https://www.cursor.com/agents/mcp/oauth/callback",
                "http://localhost:8787/callback"
            ],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "resource": "https://kb.example.com/mcp",
            "software_id": "x", "logo_uri": "https://x/logo.png"
        }))
        .unwrap();
        assert_eq!(r.auth_method, AuthMethod::None);
        assert_eq!(r.redirect_uris.len(), 3);
        assert_eq!(r.name, "Cursor");
    }

    #[test]
    fn bad_registrations_name_their_fault() {
        let e = parse_json(json!({"redirect_uris": ["http://evil.example.com/cb"]})).unwrap_err();
        assert_eq!(e.code(), "invalid_redirect_uri");
        assert!(e.description().contains("redirect_uris[0]"));
        assert_eq!(
            parse_json(json!({})).unwrap_err().code(),
            "invalid_redirect_uri"
        );
        let base = |extra: Value| {
            let mut v = json!({"redirect_uris": ["http://127.0.0.1/cb"]});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse_json(v)
        };
        for bad in [
            json!({"grant_types": ["client_credentials"]}),
            json!({"grant_types": "authorization_code"}),
            json!({"response_types": ["token"]}),
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            json!({"client_name": 7}),
            json!({"client_name": "x".repeat(201)}),
            json!({"client_uri": "javascript:alert(1)"}),
        ] {
            assert_eq!(
                base(bad.clone()).unwrap_err().code(),
                "invalid_client_metadata",
                "{bad}"
            );
        }
        let r = base(json!({})).unwrap();
        assert_eq!(r.auth_method, AuthMethod::ClientSecretBasic);
    }
}
