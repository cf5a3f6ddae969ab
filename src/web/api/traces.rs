//! `GET /api/v1/traces`: traces by where they enter the store, newest
//! first, filtered; `GET /api/v1/traces/{trace_id}`: every stored span of
//! a trace with its parent, attributes, events and status (both need
//! `telemetry:read`).

use actix_web::{get, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::spans::{EntryFilter, SpanRow, TraceEntry};
use crate::timefmt::Edge;
use crate::web::pagination::{Page, PageParams, PageRequest};
use crate::web::query::{self, NS_PER_MS};

use crate::rbac::Permission;
use crate::web::auth::Caller;
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct SpanView {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    /// OTLP SpanKind (0 unspecified, 1 internal, 2 server, 3 client,
    /// 4 producer, 5 consumer).
    pub kind: i32,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub duration_ms: f64,
    /// `unset`, `ok` or `error`.
    pub status: &'static str,
    pub status_message: String,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub events: serde_json::Value,
    #[schema(value_type = Object)]
    pub resource: serde_json::Value,
    pub scope: String,
    pub dropped_attributes_count: u32,
}

#[derive(Serialize, ToSchema)]
pub struct TraceView {
    pub trace_id: String,
    pub spans: Vec<SpanView>,
}

/// A span's status as the API names it.
pub fn status_name(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

impl From<SpanRow> for SpanView {
    fn from(s: SpanRow) -> SpanView {
        SpanView {
            duration_ms: (s.end_ns - s.start_ns) as f64 / 1e6,
            status: status_name(s.status),
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            service: s.service,
            name: s.name,
            kind: s.kind,
            start_time_unix_nano: s.start_ns,
            end_time_unix_nano: s.end_ns,
            status_message: s.status_message,
            attributes: s.attributes,
            events: s.events,
            resource: s.resource,
            scope: s.scope,
            dropped_attributes_count: s.dropped_attributes,
        }
    }
}

/// A trace id from a path or query: 32 hex digits, lowercased.
pub fn trace_id(raw: &str) -> Result<String, ApiError> {
    let id = raw.to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "bad_trace_id",
            "a trace id is 32 hex digits",
        ));
    }
    Ok(id)
}

/// The trace `raw_id` names (lowercased) and its spans by start time
/// (shared by the API and the waterfall page); 404 when none are stored.
pub async fn read_trace(
    st: &crate::web::state::WebState,
    raw_id: &str,
) -> Result<(String, Vec<SpanRow>), ApiError> {
    let id = trace_id(raw_id)?;
    let q = id.clone();
    let rows = st.db.read(move |c| crate::db::spans::trace(c, &q)).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no spans of trace {id}")));
    }
    Ok((id, rows))
}

/// A trace's spans, by start time.
#[utoipa::path(operation_id = "traces.get", tag = "telemetry",
    params(("trace_id" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "32 hex digits")),
    responses((status = 200, body = TraceView), (status = 400, body = Problem), (status = 404, body = Problem)))]
#[get("/traces/{trace_id}")]
pub async fn get_trace(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TraceView>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    let (id, rows) = read_trace(&st, &path).await?;
    Ok(web::Json(TraceView {
        trace_id: id,
        spans: rows.into_iter().map(SpanView::from).collect(),
    }))
}

/// A trace as listed.
#[derive(Serialize, ToSchema)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The span where the trace enters the store: its service and name.
    pub service: String,
    pub name: String,
    pub start_time_unix_nano: i64,
    pub duration_ms: f64,
    /// That span's status: `unset`, `ok` or `error`.
    pub status: &'static str,
    /// Spans of the trace stored, and how many of them failed.
    pub span_count: i64,
    pub error_count: i64,
}

impl From<TraceEntry> for TraceSummary {
    fn from(e: TraceEntry) -> TraceSummary {
        TraceSummary {
            duration_ms: (e.span.end_ns - e.span.start_ns) as f64 / 1e6,
            status: status_name(e.span.status),
            trace_id: e.span.trace_id,
            service: e.span.service,
            name: e.span.name,
            start_time_unix_nano: e.span.start_ns,
            span_count: e.spans,
            error_count: e.errors,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// Service (resource `service.name`) of the span where the trace enters.
    #[param(max_length = 256)]
    pub service: Option<String>,
    /// Name of that span.
    #[param(max_length = 1024)]
    pub name: Option<String>,
    /// `ok`, `error` or `unset`: that span's status.
    #[param(value_type = Option<crate::formats::SpanStatusFilter>)]
    pub status: Option<String>,
    /// Only traces whose entry span lasted at least this long.
    #[param(minimum = 0, maximum = 86400000)]
    pub min_duration_ms: Option<u64>,
    /// Traces starting at or after.
    #[param(value_type = Option<crate::formats::TimeBound>)]
    pub since: Option<String>,
    /// Traces starting before.
    #[param(value_type = Option<crate::formats::TimeBound>)]
    pub until: Option<String>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

impl TraceQuery {
    /// The validated filter and page.
    pub fn filter(&self) -> Result<(EntryFilter, PageRequest), ApiError> {
        let page = PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .resolve()?;
        let after = match &page.after {
            None => None,
            Some(k) => Some(
                parse_key(k)
                    .ok_or_else(|| ApiError::bad_request("bad_query", "cursor is not valid"))?,
            ),
        };
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some("unset") => Some(0),
            Some("ok") => Some(1),
            Some("error") => Some(2),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    "status must be ok, error or unset",
                ))
            }
        };
        let min_duration_ns = match self.min_duration_ms {
            None => None,
            Some(ms) if ms <= 86_400_000 => Some(ms as i64 * NS_PER_MS),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    "min_duration_ms must be at most 86400000 (a day)",
                ))
            }
        };
        let now = crate::db::now_ms();
        let since = query::time_bound("since", self.since.as_deref(), Edge::Start, now)?;
        let until = query::time_bound("until", self.until.as_deref(), Edge::End, now)?;
        query::ordered(since, until)?;
        Ok((
            EntryFilter {
                service: query::text("service", self.service.as_deref(), 256)?,
                name: query::text("name", self.name.as_deref(), 1024)?,
                status,
                min_duration_ns,
                since_ns: since.map(|t| t.saturating_mul(NS_PER_MS)),
                until_ns: until.map(|t| t.saturating_mul(NS_PER_MS)),
                after,
            },
            page,
        ))
    }
}

fn parse_key(k: &str) -> Option<(i64, String, String)> {
    let mut parts = k.splitn(3, '|');
    let start = parts.next()?.parse().ok()?;
    let trace = parts.next()?.to_string();
    let span = parts.next()?.to_string();
    Some((start, trace, span))
}

/// Traces newest first (shared by the API and the traces page).
pub async fn list_traces(
    st: &crate::web::state::WebState,
    q: &TraceQuery,
) -> Result<Page<TraceSummary>, ApiError> {
    let (filter, page) = q.filter()?;
    let limit = page.limit;
    let rows = st
        .db
        .read(move |c| crate::db::spans::entries(c, &filter, limit + 1))
        .await?;
    Ok(Page::from_rows(
        rows,
        &page,
        |e| format!("{}|{}|{}", e.span.start_ns, e.span.trace_id, e.span.span_id),
        TraceSummary::from,
    ))
}

/// Traces by where they enter the store (a span without a parent, or with
/// a remote one), newest first.
#[utoipa::path(operation_id = "traces.list", tag = "telemetry",
    params(TraceQuery),
    responses((status = 200, body = Page<TraceSummary>), (status = 400, body = Problem)))]
#[get("/traces")]
pub async fn list(
    req: HttpRequest,
    caller: Caller,
    q: web::Query<TraceQuery>,
) -> Result<web::Json<Page<TraceSummary>>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    Ok(web::Json(list_traces(&st, &q).await?))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::TelemetryRead, list))
        .service(needs(Permission::TelemetryRead, get_trace));
}
