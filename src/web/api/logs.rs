//! `GET /api/v1/logs`: log records received over OTLP, newest first:
//! words in the body, service, least severity, trace, time (needs
//! `telemetry:read`).

use actix_web::{get, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::logs::{LogFilter, LogRow};
use crate::rbac::Permission;
use crate::telemetry::logs::{severity_name, SEVERITIES};
use crate::timefmt::Edge;
use crate::web::auth::Caller;
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams, PageRequest};
use crate::web::problem::{ApiError, Problem};
use crate::web::query::{self, NS_PER_MS};
use crate::web::state::{self, WebState};

/// Words a search takes at most.
const MAX_WORDS: usize = 16;

#[derive(Serialize, ToSchema)]
pub struct LogView {
    pub time_unix_nano: i64,
    /// OTLP SeverityNumber (1-24; 0 unspecified).
    pub severity_number: i32,
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `unspecified`.
    pub severity: &'static str,
    /// As the sender named it.
    pub severity_text: String,
    /// A string body as sent; any other body as JSON.
    pub body: String,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    #[schema(value_type = Object)]
    pub resource: serde_json::Value,
    pub service: String,
    pub scope: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub dropped_attributes_count: u32,
}

impl From<LogRow> for LogView {
    fn from(l: LogRow) -> LogView {
        LogView {
            time_unix_nano: l.time_ns,
            severity_number: l.severity,
            severity: severity_name(l.severity),
            severity_text: l.severity_text,
            body: l.body,
            attributes: l.attributes,
            resource: l.resource,
            service: l.service,
            scope: l.scope,
            trace_id: l.trace_id,
            span_id: l.span_id,
            dropped_attributes_count: l.dropped_attributes,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Words the body holds, each also as the start of a longer word
    /// (`refus` finds "refused"); all of them must appear.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// Resource `service.name`.
    #[param(max_length = 256)]
    pub service: Option<String>,
    /// The least severity: `trace`, `debug`, `info`, `warn`, `error`,
    /// `fatal`.
    #[param(value_type = Option<crate::formats::LogSeverityFilter>)]
    pub severity: Option<String>,
    /// Records of this trace.
    #[param(value_type = Option<crate::formats::TraceId>)]
    pub trace_id: Option<String>,
    /// Records at or after.
    #[param(value_type = Option<crate::formats::TimeBound>)]
    pub since: Option<String>,
    /// Records before.
    #[param(value_type = Option<crate::formats::TimeBound>)]
    pub until: Option<String>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

/// `q` as a full-text query: each word quoted (so nothing in it is query
/// syntax) and taken as a prefix.
fn text_query(q: &str) -> Result<Option<String>, ApiError> {
    let words: Vec<String> = q
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    if words.len() > MAX_WORDS {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("q takes at most {MAX_WORDS} words"),
        ));
    }
    if words.is_empty() {
        return if q.trim().is_empty() {
            Ok(None)
        } else {
            Err(ApiError::bad_request(
                "bad_query",
                "q needs at least one word (letters or digits)",
            ))
        };
    }
    Ok(Some(words.join(" ")))
}

impl LogQuery {
    /// The validated filter and page.
    pub fn filter(&self) -> Result<(LogFilter, PageRequest), ApiError> {
        let page = PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .resolve()?;
        let after = match &page.after {
            None => None,
            Some(k) => Some(
                k.split_once('|')
                    .and_then(|(t, id)| Some((t.parse().ok()?, id.parse().ok()?)))
                    .ok_or_else(|| ApiError::bad_request("bad_query", "cursor is not valid"))?,
            ),
        };
        let min_severity = match self.severity.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => Some(
                SEVERITIES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, from)| *from)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "bad_query",
                            "severity must be trace, debug, info, warn, error or fatal",
                        )
                    })?,
            ),
        };
        let trace_id = match self.trace_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(super::traces::trace_id(t)?),
        };
        let now = crate::db::now_ms();
        let since = query::time_bound("since", self.since.as_deref(), Edge::Start, now)?;
        let until = query::time_bound("until", self.until.as_deref(), Edge::End, now)?;
        query::ordered(since, until)?;
        let q = query::text("q", self.q.as_deref(), 256)?;
        Ok((
            LogFilter {
                text: match q {
                    Some(q) => text_query(&q)?,
                    None => None,
                },
                service: query::text("service", self.service.as_deref(), 256)?,
                min_severity,
                trace_id,
                since_ns: since.map(|t| t.saturating_mul(NS_PER_MS)),
                until_ns: until.map(|t| t.saturating_mul(NS_PER_MS)),
                after,
            },
            page,
        ))
    }
}

/// Records newest first (shared by the API and the logs page).
pub async fn search_logs(st: &WebState, q: &LogQuery) -> Result<Page<LogView>, ApiError> {
    let (filter, page) = q.filter()?;
    let limit = page.limit;
    let rows = st
        .db
        .read(move |c| crate::db::logs::search(c, &filter, limit + 1))
        .await?;
    Ok(Page::from_rows(
        rows,
        &page,
        |l| format!("{}|{}", l.time_ns, l.id),
        LogView::from,
    ))
}

/// Log records, newest first.
#[utoipa::path(operation_id = "logs.search", tag = "telemetry",
    params(LogQuery),
    responses((status = 200, body = Page<LogView>), (status = 400, body = Problem)))]
#[get("/logs")]
pub async fn search(
    req: HttpRequest,
    caller: Caller,
    q: web::Query<LogQuery>,
) -> Result<web::Json<Page<LogView>>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    Ok(web::Json(search_logs(&st, &q).await?))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::TelemetryRead, search));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_prefixes() {
        assert_eq!(
            text_query(r#"conn "refused OR"#).unwrap().as_deref(),
            Some(r#""conn"* """refused"* "OR"*"#)
        );
        assert_eq!(text_query("  ").unwrap(), None);
        assert!(text_query("-- **").is_err());
        assert!(text_query(&"a ".repeat(17)).is_err());
    }
}
