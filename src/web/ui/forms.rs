//! Form plumbing shared by the admin pages: CSRF-carrying bodies, and domain
//! errors turned into messages next to the fields.

use crate::error::{Error, FieldErrors};
use crate::web::ui::error::UiError;

/// What a form shows after a failed submit: per-field messages and one
/// message for the whole form.
#[derive(Debug, Default)]
pub struct FormErrors {
    pub fields: FieldErrors,
    pub form: Option<String>,
}

impl FormErrors {
    /// Validation and conflicts go back to the form; anything else is an
    /// error page.
    pub fn from_error(e: Error) -> Result<FormErrors, UiError> {
        match e {
            Error::Validation { fields, .. } => Ok(FormErrors { fields, form: None }),
            Error::Conflict(m) => Ok(FormErrors {
                fields: FieldErrors::new(),
                form: Some(m),
            }),
            other => Err(other.into()),
        }
    }
}

impl FormErrors {
    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    pub fn field(&self, name: &str) -> Option<&String> {
        self.fields.get(name)
    }
}

/// The end of a form post: the change made, a 303 to the page `to` names
/// for its result; refused as invalid or conflicting, the form again with
/// the messages (`again` draws it); anything else an error page.
pub async fn respond<T, F, Fut>(
    result: crate::error::Result<T>,
    to: impl FnOnce(T) -> String,
    again: F,
) -> Result<actix_web::HttpResponse, UiError>
where
    F: FnOnce(FormErrors) -> Fut,
    Fut: std::future::Future<Output = Result<actix_web::HttpResponse, UiError>>,
{
    match result {
        Ok(v) => Ok(super::see_other(&to(v))),
        Err(e) => again(FormErrors::from_error(e)?).await,
    }
}

/// Checkbox semantics for HTML forms: present means on.
pub fn checked(v: &Option<String>) -> bool {
    v.is_some()
}

/// A search box's text cut to 200 characters: longer text matches nothing
/// a person typed, and is not worth comparing against every row.
pub fn bounded(q: &str) -> &str {
    match q.char_indices().nth(200) {
        Some((at, _)) => &q[..at],
        None => q,
    }
}

/// `text` escaped for a URL query value.
pub fn query_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A list's filters as a query string: the given ones in order, empty
/// ones left out (a GET form submits unused fields empty).
pub fn filter_query(pairs: &[(&str, Option<&str>)]) -> String {
    let given: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    serde_urlencoded::to_string(given).unwrap_or_default()
}

/// The query string of a list's next page: its filters and `cursor`.
pub fn next_page(filters: &str, cursor: &str) -> String {
    let cursor = serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default();
    if filters.is_empty() {
        cursor
    } else {
        format!("{filters}&{cursor}")
    }
}

/// `?q=` (a search) and the page of a list that searches on the server
/// (agents, users).
#[derive(Default, serde::Deserialize)]
pub struct ListSearch {
    #[serde(default)]
    q: String,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl ListSearch {
    /// The page asked for (a bad limit or cursor is a 400).
    pub fn page(
        &self,
    ) -> Result<crate::web::pagination::PageRequest, crate::web::problem::ApiError> {
        crate::web::pagination::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .resolve()
    }

    /// The search, bounded as every search box is.
    pub fn text(&self) -> String {
        bounded(&self.q).to_string()
    }
}
