//! The authorization endpoint's decisions (OAuth 2.1 §4.1, RFC 9207),
//! apart from HTTP: which requests get an error page and which an error
//! redirect, what scope a user can grant, and the redirect that carries
//! the answer.
//!
//! An unknown or disabled client, or a redirect URI it did not register,
//! gets an error page and never a redirect: otherwise the endpoint would
//! send browsers wherever a request says.

use serde::Deserialize;

use super::pkce;
use super::redirect;
use crate::db::oauth_clients::ClientRow;
use crate::rbac::patterns;

/// The scope that asks for a refresh token; not a permission.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The query of `GET /oauth/authorize` (and the consent form's fields).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub prompt: Option<String>,
}

/// Refused before a redirect can be trusted: shown as a page (400).
#[derive(Debug, Clone, PartialEq)]
pub struct PageError(pub String);

/// Refused after the redirect is known good: sent back to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectError {
    pub error: &'static str,
    pub description: String,
}

impl RedirectError {
    pub fn new(error: &'static str, description: impl Into<String>) -> RedirectError {
        RedirectError {
            error,
            description: description.into(),
        }
    }
}

/// Longest `state` accepted (it comes back verbatim in a URL).
pub const MAX_STATE: usize = 1024;
/// Longest `scope` string.
pub const MAX_SCOPE: usize = 4096;

/// The redirect URI the response goes to: the one given, which must be
/// registered (loopback on any port); or, when none is given, the only one
/// the client registered.
pub fn redirect_uri(client: &ClientRow, given: Option<&str>) -> Result<String, PageError> {
    match given {
        Some(u) if redirect::matches(&client.redirect_uris, u) => Ok(u.to_string()),
        Some(_) => Err(PageError(
            "the redirect_uri is not one this client registered".into(),
        )),
        None if client.redirect_uris.len() == 1 => Ok(client.redirect_uris[0].clone()),
        None => Err(PageError(
            "redirect_uri is required (the client registered more than one)".into(),
        )),
    }
}

/// The parts of a request that are checked before anyone signs in.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub code_challenge: String,
    /// Requested permissions, `offline_access` removed; empty: all held.
    pub requested: Vec<String>,
}

/// Checks response type, PKCE, state and scope form.
pub fn check(p: &AuthorizeParams) -> Result<Checked, RedirectError> {
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(RedirectError::new(
                "invalid_request",
                "response_type is required",
            ))
        }
        Some(_) => {
            return Err(RedirectError::new(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    let challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, _) => {
            return Err(RedirectError::new(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ))
        }
        (Some(c), Some(pkce::S256)) if pkce::valid_challenge(c) => c.to_string(),
        (Some(_), Some(pkce::S256)) => {
            return Err(RedirectError::new(
                "invalid_request",
                "code_challenge must be 43 base64url characters (an S256 challenge)",
            ))
        }
        (Some(_), _) => {
            return Err(RedirectError::new(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ))
        }
    };
    if p.state.as_deref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(RedirectError::new(
            "invalid_request",
            format!("state must be at most {MAX_STATE} characters"),
        ));
    }
    let requested = requested_scope(p.scope.as_deref())?;
    Ok(Checked {
        code_challenge: challenge,
        requested,
    })
}

/// The permissions a scope string asks for (`offline_access` dropped: a
/// refresh token comes with every code).
pub fn requested_scope(scope: Option<&str>) -> Result<Vec<String>, RedirectError> {
    let s = scope.unwrap_or("");
    if s.len() > MAX_SCOPE {
        return Err(RedirectError::new("invalid_scope", "the scope is too long"));
    }
    let mut out: Vec<String> = Vec::new();
    for t in s.split(' ').filter(|t| !t.is_empty()) {
        if t == OFFLINE_ACCESS {
            continue;
        }
        if !patterns::valid_pattern(t) {
            return Err(RedirectError::new(
                "invalid_scope",
                format!("{:?} is not a permission", crate::names::shown(t)),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// What a token may carry: the requested permissions the user holds (all
/// held when none is requested), within what the resource allows. Sorted,
/// so the same grant is recognised again.
pub fn grantable(held: &[String], requested: &[String], allows: Option<&[String]>) -> Vec<String> {
    let held = match allows {
        Some(a) => patterns::intersect(held, a),
        None => held.to_vec(),
    };
    let mut out: Vec<String> = if requested.is_empty() {
        held
    } else {
        requested
            .iter()
            .filter(|r| patterns::any_grants(&held, r))
            .cloned()
            .collect()
    };
    out.sort();
    out.dedup();
    out
}

/// `redirect_uri` with `params` added to its query.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        // Registered URIs parse; this is not reached.
        Err(_) => redirect_uri.to_string(),
    }
}

/// The error redirect (RFC 6749 §4.1.2.1, with `iss` from RFC 9207).
pub fn error_redirect(
    redirect_uri: &str,
    e: &RedirectError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut params = vec![
        ("error", e.error),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect_with(redirect_uri, &params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::oauth_clients::{AuthMethod, Registration};

    fn client(uris: &[&str]) -> ClientRow {
        ClientRow {
            id: "c".into(),
            name: "n".into(),
            registration: Registration::Dynamic,
            auth_method: AuthMethod::None,
            secret_hash: None,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            client_uri: None,
            registered_from: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
        }
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("c".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..AuthorizeParams::default()
        }
    }

    #[test]
    fn redirect_uris_are_chosen_or_refused_without_redirecting() {
        let one = client(&["http://127.0.0.1:9000/cb"]);
        assert_eq!(
            redirect_uri(&one, None).unwrap(),
            "http://127.0.0.1:9000/cb"
        );
        assert_eq!(
            redirect_uri(&one, Some("http://127.0.0.1:5555/cb")).unwrap(),
            "http://127.0.0.1:5555/cb"
        );
        assert!(redirect_uri(&one, Some("https://evil.example.com/cb")).is_err());
        let two = client(&["https://a.example.com/cb", "cursor://x/cb"]);
        assert!(redirect_uri(&two, None).is_err());
    }

    #[test]
    fn pkce_s256_is_required() {
        assert!(check(&params()).is_ok());
        let mut p = params();
        p.code_challenge_method = Some("plain".into());
        assert_eq!(check(&p).unwrap_err().error, "invalid_request");
        p.code_challenge_method = None;
        assert_eq!(check(&p).unwrap_err().error, "invalid_request");
        let mut p = params();
        p.code_challenge = None;
        assert!(check(&p).unwrap_err().description.contains("PKCE"));
        let mut p = params();
        p.code_challenge = Some("short".into());
        assert_eq!(check(&p).unwrap_err().error, "invalid_request");
        let mut p = params();
        p.response_type = Some("token".into());
        assert_eq!(check(&p).unwrap_err().error, "unsupported_response_type");
    }

    #[test]
    fn scopes_requested_held_and_allowed() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            requested_scope(Some("kb:read offline_access kb:read")).unwrap(),
            s(&["kb:read"])
        );
        assert_eq!(
            requested_scope(Some("bad scope!")).unwrap_err().error,
            "invalid_scope"
        );
        let held = s(&["*"]);
        let allows = s(&["kb:read", "kb:write"]);
        assert_eq!(
            grantable(&held, &[], Some(&allows)),
            s(&["kb:read", "kb:write"])
        );
        assert_eq!(
            grantable(&held, &s(&["kb:write", "db:read"]), Some(&allows)),
            s(&["kb:write"])
        );
        assert_eq!(
            grantable(&s(&["kb:read"]), &s(&["kb:write"]), None),
            s(&[] as &[&str])
        );
        assert_eq!(
            grantable(&s(&["kb:*"]), &s(&["kb:write"]), None),
            s(&["kb:write"])
        );
    }

    #[test]
    fn redirects_keep_the_registered_query_and_carry_iss() {
        let e = RedirectError::new("access_denied", "the user said no");
        let to = error_redirect(
            "cursor://x/cb?a=1",
            &e,
            Some("st"),
            "https://as.example.com",
        );
        assert_eq!(
            to,
            "cursor://x/cb?a=1&error=access_denied&error_description=the+user+said+no&state=st&iss=https%3A%2F%2Fas.example.com"
        );
    }
}
