//! Query parameters several lists share: time bounds and short text
//! filters, each a 400 naming the parameter when it cannot be read.

use super::problem::ApiError;
use crate::timefmt::Edge;

/// Nanoseconds (OTLP's times) in a millisecond (the filters' unit).
pub const NS_PER_MS: i64 = 1_000_000;

/// `since`/`until`: RFC 3339, a UTC date or a span back from `now` (ms).
pub fn time_bound(
    name: &str,
    v: Option<&str>,
    edge: Edge,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => crate::timefmt::parse_filter_time(s, edge, now)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_query",
                    format!(
                        "{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, \
                         a UTC date such as 2026-01-31, or a span back from now such as 24h or 7d"
                    ),
                )
            }),
    }
}

/// `since` before `until` when both are given.
pub fn ordered(since: Option<i64>, until: Option<i64>) -> Result<(), ApiError> {
    match (since, until) {
        (Some(s), Some(u)) if s >= u => Err(ApiError::bad_request(
            "bad_query",
            "since must be before until",
        )),
        _ => Ok(()),
    }
}

/// A text filter of at most `max` characters; empty is no filter.
pub fn text(name: &str, v: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match v {
        Some("") | None => Ok(None),
        Some(s) if s.chars().count() > max => Err(ApiError::bad_request(
            "bad_query",
            format!("{name} must be at most {max} characters"),
        )),
        Some(s) => Ok(Some(s.to_string())),
    }
}
