//! The form of an address an admin types for agentry to reach (a health
//! check, an MCP server's upstream): checked once, here, before the
//! outbound rules judge its host.

/// Longest URL an admin may aim agentry at.
pub const MAX_URL: usize = 2048;

/// Checks a URL to reach: http or https, a host, no credentials (they would
/// sit in the database and in logs; send them another way). Returns it
/// parsed.
pub fn validate_url(url: &str) -> Result<url::Url, String> {
    if url.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "must not carry credentials (user:password@); they would be stored and logged".into(),
        );
    }
    Ok(parsed)
}
