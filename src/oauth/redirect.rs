//! Redirect URIs: which a client may register (RFC 8252, OAuth 2.1 §7.5)
//! and whether a presented one is registered. Pure functions.
//!
//! Matching is exact, string for string, except that a loopback redirect
//! (`http://127.0.0.1`, `http://[::1]`, `http://localhost`) matches on any
//! port: native clients listen on whatever port they got (RFC 8252 §7.3).

/// Longest redirect URI.
pub const MAX_REDIRECT_URI: usize = 2048;

/// Schemes that are never a redirect target: they run or read something
/// in the browser instead of reaching the client.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "about", "blob"];

/// Whether `url` is plain http on a loopback host.
fn loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

/// Checks a redirect URI a client registers: https, http on a loopback
/// host, or a private-use scheme (`cursor://…`, `com.example.app:/cb`); no
/// fragment, no credentials.
pub fn check(uri: &str) -> Result<url::Url, String> {
    if uri.len() > MAX_REDIRECT_URI {
        return Err(format!("must be at most {MAX_REDIRECT_URI} characters"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let parsed = url::Url::parse(uri).map_err(|e| format!("is not an absolute URI: {e}"))?;
    if parsed.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(parsed),
        "https" => Err("must name a host".into()),
        "http" if loopback_http(&parsed) => Ok(parsed),
        "http" => {
            Err("http is allowed only on a loopback host (127.0.0.1, [::1], localhost)".into())
        }
        s if FORBIDDEN_SCHEMES.contains(&s) => Err(format!("the {s}: scheme is not a redirect")),
        _ => Ok(parsed),
    }
}

/// Whether `presented` is one of `registered`.
pub fn matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(p) = url::Url::parse(presented) else {
        return false;
    };
    if !loopback_http(&p) || p.fragment().is_some() {
        return false;
    }
    registered.iter().any(|r| {
        url::Url::parse(r).is_ok_and(|r| {
            loopback_http(&r)
                && r.host() == p.host()
                && r.path() == p.path()
                && r.query() == p.query()
        })
    })
}

/// The origin (or, for a private-use scheme, the `scheme:`) a redirect
/// goes to: what the consent page's form-action must allow.
pub fn form_action_source(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    match u.scheme() {
        "http" | "https" => Some(u.origin().ascii_serialization()),
        s => Some(format!("{s}:")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn what_may_be_registered() {
        for ok in [
            "https://www.cursor.com/agents/mcp/oauth/callback",
            "http://localhost:8787/callback",
            "http://127.0.0.1:33418/",
            "http://[::1]/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "com.example.app:/oauth2redirect",
            "https://vscode.dev/redirect",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "https://user:pw@example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "/relative",
            "https://example.com/a b",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_match_except_loopback_ports() {
        let reg = strings(&[
            "https://app.example.com/cb",
            "http://127.0.0.1:33418/",
            "http://localhost/callback?x=1",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ]);
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:33418/",
            "http://127.0.0.1:50000/",
            "http://127.0.0.1/",
            "http://localhost:9999/callback?x=1",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ] {
            assert!(matches(&reg, ok), "{ok}");
        }
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com:8443/cb",
            "https://APP.example.com/cb?x",
            "http://127.0.0.1:50000/other",
            "http://[::1]:50000/",
            "http://localhost:9999/callback",
            "http://localhost:9999/callback?x=1#f",
            "cursor://anysphere.cursor-mcp/oauth/callback2",
            "https://evil.example.com/cb",
        ] {
            assert!(!matches(&reg, bad), "{bad}");
        }
    }

    #[test]
    fn form_action_sources() {
        assert_eq!(
            form_action_source("https://app.example.com/cb?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            form_action_source("http://127.0.0.1:5000/cb").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            form_action_source("cursor://anysphere.cursor-mcp/cb").as_deref(),
            Some("cursor:")
        );
    }
}
