//! Client ID metadata documents: a `client_id` that is an https URL names
//! a JSON document describing the client, fetched from there (under the
//! outbound rules, within 5 s and 64 KiB, cached as its headers allow for
//! at most 24 h). The document must name itself as `client_id`; its
//! redirect URIs are checked like any client's.

use std::time::Duration;

use serde_json::{Map, Value};

use super::clients;
use crate::db::oauth_clients::{AuthMethod, ClientRow, Registration};
use crate::net::Outbound;

pub const TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_BYTES: usize = 64 * 1024;
/// Longest a fetched document is trusted without fetching it again.
pub const MAX_AGE_MS: i64 = 24 * 3_600_000;
/// How long a document without caching headers is kept.
pub const DEFAULT_AGE_MS: i64 = 3_600_000;

/// Whether `client_id` is a metadata-document URL: https with a path (or,
/// when `allow_http_loopback`, http on a loopback address, for local
/// testing).
pub fn is_document_url(client_id: &str, allow_http_loopback: bool) -> bool {
    let Ok(u) = url::Url::parse(client_id) else {
        return false;
    };
    let path_ok = !matches!(u.path(), "" | "/");
    let no_extras = u.fragment().is_none() && u.username().is_empty() && u.password().is_none();
    let scheme_ok = match u.scheme() {
        "https" => true,
        "http" if allow_http_loopback => {
            matches!(
                u.host(),
                Some(url::Host::Ipv4(a)) if a.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(a)) if a.is_loopback())
        }
        _ => false,
    };
    path_ok && no_extras && scheme_ok && client_id.len() <= 2048
}

/// The cache lifetime a response's `Cache-Control` allows (ms): `max-age`
/// up to 24 h; `no-store`/`no-cache` none; otherwise an hour.
pub fn cache_age_ms(cache_control: Option<&str>) -> i64 {
    let Some(cc) = cache_control else {
        return DEFAULT_AGE_MS;
    };
    let cc = cc.to_ascii_lowercase();
    if cc.contains("no-store") || cc.contains("no-cache") {
        return 0;
    }
    for part in cc.split(',') {
        if let Some(v) = part.trim().strip_prefix("max-age=") {
            if let Ok(secs) = v.trim().parse::<i64>() {
                return (secs.saturating_mul(1000)).clamp(0, MAX_AGE_MS);
            }
        }
    }
    DEFAULT_AGE_MS
}

/// Reads a fetched document into a client row (`now` as created/updated).
pub fn client_of(client_id: &str, doc: &Map<String, Value>, now: i64) -> Result<ClientRow, String> {
    match doc.get("client_id").and_then(Value::as_str) {
        Some(id) if id == client_id => {}
        Some(_) => return Err("the document names another client_id".into()),
        None => return Err("the document has no client_id".into()),
    }
    let uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .ok_or("the document has no redirect_uris")?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or("redirect_uris must be strings")
        })
        .collect::<Result<_, _>>()?;
    clients::check_redirect_uris(&uris).map_err(|(f, m)| format!("{f}: {m}"))?;
    match doc.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method {other:?} is not supported for metadata documents; use none"
            ))
        }
    }
    let host = url::Url::parse(client_id)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let name = doc
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| clients::check_name(n).is_ok())
        .map(str::to_string)
        .unwrap_or(host);
    Ok(ClientRow {
        id: client_id.to_string(),
        name,
        registration: Registration::MetadataDocument,
        auth_method: AuthMethod::None,
        secret_hash: None,
        redirect_uris: uris,
        client_uri: doc
            .get("client_uri")
            .and_then(Value::as_str)
            .filter(|u| u.len() <= 2048 && u.starts_with("https://"))
            .map(str::to_string),
        registered_from: None,
        enabled: true,
        created_at: now,
        updated_at: now,
        last_used_at: None,
    })
}

/// Fetches a document: (the JSON object, how long it may be cached, ms).
pub async fn fetch(http: &Outbound, url: &str) -> Result<(Map<String, Value>, i64), String> {
    let req = http
        .request(reqwest::Method::GET, url)
        .map_err(|r| format!("the document's address is refused: {r}"))?
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(TIMEOUT);
    let mut res = req
        .send()
        .await
        .map_err(|e| format!("the document could not be fetched: {}", without_url(&e)))?;
    if !res.status().is_success() {
        return Err(format!("fetching the document answered {}", res.status()));
    }
    let age = cache_age_ms(
        res.headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("the document could not be read: {}", without_url(&e)))?
    {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err("the document is larger than 64 KiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    let doc: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|_| "the document is not a JSON object".to_string())?;
    Ok((doc, age))
}

/// An error's text without the URL reqwest puts in it (it is known).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" ({u})"), "");
    }
    if e.is_timeout() {
        return "no answer within 5 s".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn which_client_ids_are_documents() {
        assert!(is_document_url(
            "https://claude.ai/oauth/claude-code-client-metadata",
            false
        ));
        assert!(is_document_url(
            "https://vscode.dev/oauth/client-metadata.json",
            false
        ));
        assert!(!is_document_url("https://example.com/", false));
        assert!(!is_document_url("http://127.0.0.1:8000/client.json", false));
        assert!(is_document_url("http://127.0.0.1:8000/client.json", true));
        assert!(!is_document_url("http://example.com/client.json", true));
        assert!(!is_document_url("01a2b3c4-opaque-id", true));
    }

    #[test]
    fn cache_lifetimes_follow_the_headers_within_a_day() {
        assert_eq!(cache_age_ms(Some("public, max-age=600")), 600_000);
        assert_eq!(cache_age_ms(Some("max-age=9999999")), MAX_AGE_MS);
        assert_eq!(cache_age_ms(Some("no-store")), 0);
        assert_eq!(cache_age_ms(None), DEFAULT_AGE_MS);
    }

    #[test]
    fn a_document_must_name_itself_and_list_good_redirects() {
        let id = "https://app.example.com/client.json";
        let doc = |v: Value| v.as_object().unwrap().clone();
        let ok = client_of(
            id,
            &doc(json!({"client_id": id, "client_name": "App", "redirect_uris": ["http://127.0.0.1/cb"]})),
            0,
        )
        .unwrap();
        assert_eq!(ok.registration, Registration::MetadataDocument);
        assert_eq!(ok.name, "App");
        let other = doc(
            json!({"client_id": "https://evil.example.com/c.json", "redirect_uris": ["http://127.0.0.1/cb"]}),
        );
        assert!(client_of(id, &other, 0)
            .unwrap_err()
            .contains("another client_id"));
        let bad_uri =
            doc(json!({"client_id": id, "redirect_uris": ["http://evil.example.com/cb"]}));
        assert!(client_of(id, &bad_uri, 0).is_err());
        let secret = doc(
            json!({"client_id": id, "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
        );
        assert!(client_of(id, &secret, 0).is_err());
        let unnamed = doc(json!({"client_id": id, "redirect_uris": ["http://127.0.0.1/cb"]}));
        assert_eq!(client_of(id, &unnamed, 0).unwrap().name, "app.example.com");
    }
}
