//! Cursor pagination, the same for every list: `limit` (1-1000, default
//! 100) and an opaque `cursor` from the previous page's `next_cursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};

use super::problem::ApiError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// Longest cursor accepted (a key is far shorter).
pub const MAX_CURSOR: usize = 512;

/// Every cursor is the URL-safe base64 of `k1:<key>`, and `k1:` encodes
/// to `azE6`.
pub const CURSOR_PATTERN: &str = r"^azE6[A-Za-z0-9_-]*$";

crate::formats::schema_format!(
    /// Where a list continues (schema only: see `crate::formats`).
    Cursor => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("next_cursor of the previous page"))
        .pattern(Some(CURSOR_PATTERN))
        .max_length(Some(MAX_CURSOR))
        .into()
);

crate::formats::schema_format!(
    /// Items per page (schema only).
    PageLimit => ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .description(Some("items per page, default 100"))
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .into()
);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1-1000 (default 100).
    #[param(value_type = Option<PageLimit>)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<Cursor>)]
    pub cursor: Option<String>,
}

/// A validated page request: fetch `limit + 1` rows after `after`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

impl PageParams {
    pub fn resolve(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(
                decode_cursor(c)
                    .ok_or_else(|| ApiError::bad_request("bad_query", "cursor is not valid"))?,
            ),
        };
        Ok(PageRequest { after, limit })
    }
}

const CURSOR_PREFIX: &str = "k1:";

fn decode_cursor(c: &str) -> Option<String> {
    if c.len() > MAX_CURSOR {
        return None;
    }
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    raw.strip_prefix(CURSOR_PREFIX).map(str::to_string)
}

fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{key}"))
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in key order.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        req: &PageRequest,
        key: impl Fn(&R) -> String,
        view: impl Fn(R) -> T,
    ) -> Page<T> {
        let more = rows.len() > req.limit as usize;
        rows.truncate(req.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(&key(r)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_match_their_documented_pattern_and_round_trip() {
        let re = regex::Regex::new(CURSOR_PATTERN).unwrap();
        for key in ["", "x", "2026-01-01T00:00:00Z|01J", "é"] {
            let c = encode_cursor(key);
            assert!(re.is_match(&c), "{c}");
            assert_eq!(decode_cursor(&c).as_deref(), Some(key));
        }
    }
}
