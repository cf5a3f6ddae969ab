//! `GET /api/v1/traces/{trace_id}`: every stored span of a trace with its
//! parent, attributes, events and status (needs `telemetry:read`).

use actix_web::{get, web, HttpRequest};
use serde::Serialize;
use utoipa::ToSchema;

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

/// A trace's spans, by start time.
#[utoipa::path(operation_id = "traces.get", tag = "telemetry",
    params(("trace_id" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "32 hex digits")),
    responses((status = 200, body = TraceView), (status = 400, body = Problem), (status = 404, body = Problem)))]
#[get("/traces/{trace_id}")]
pub async fn get_trace(
    req: HttpRequest,
    caller: Caller,
    trace_id: web::Path<String>,
) -> Result<web::Json<TraceView>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::TelemetryRead.as_str())
        .await?;
    let id = trace_id.into_inner().to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "bad_trace_id",
            "a trace id is 32 hex digits",
        ));
    }
    let q = id.clone();
    let rows = st.db.read(move |c| crate::db::spans::trace(c, &q)).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no spans of trace {id}")));
    }
    let spans = rows
        .into_iter()
        .map(|s| SpanView {
            duration_ms: (s.end_ns - s.start_ns) as f64 / 1e6,
            status: match s.status {
                1 => "ok",
                2 => "error",
                _ => "unset",
            },
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
        })
        .collect();
    Ok(web::Json(TraceView {
        trace_id: id,
        spans,
    }))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::TelemetryRead, get_trace));
}
