//! `/api/v1/instances`: agent instances, their check history, heartbeats.

use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::monitor::instances::{
    self, CheckRow, InstanceChanges, InstanceKind, InstanceRow, InstanceSpec,
};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::api::double_option;
use crate::web::auth::{Caller, Guarded, HealthView, MonitorManage, Required};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct InstanceView {
    pub id: String,
    /// The owning agent; absent for a proxied MCP server's probe.
    pub agent_id: Option<String>,
    /// The owning proxied MCP server (its automatic `mcp` probe).
    pub mcp_server_id: Option<String>,
    pub name: String,
    #[schema(value_type = crate::monitor::instances::InstanceKind)]
    pub kind: String,
    pub url: Option<String>,
    pub interval_seconds: i64,
    pub timeout_ms: i64,
    pub expected_status: String,
    pub body_contains: Option<String>,
    pub failure_threshold: i64,
    pub success_threshold: i64,
    pub degraded_latency_ms: Option<i64>,
    pub enabled: bool,
    /// `unknown`, `healthy`, `degraded` or `unhealthy`.
    pub state: String,
    pub state_since: Option<String>,
    pub last_check: Option<String>,
    pub last_response_time_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_heartbeat: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl InstanceView {
    /// See [`InstanceKind::polled`] (for the pages).
    pub fn polled(&self) -> bool {
        InstanceKind::parse(&self.kind).is_some_and(InstanceKind::polled)
    }
}

impl From<InstanceRow> for InstanceView {
    fn from(r: InstanceRow) -> Self {
        InstanceView {
            id: r.id,
            agent_id: r.agent_id,
            mcp_server_id: r.mcp_server_id,
            name: r.name,
            kind: r.kind,
            url: r.url,
            interval_seconds: r.interval_seconds,
            timeout_ms: r.timeout_ms,
            expected_status: r.expected_status,
            body_contains: r.body_contains,
            failure_threshold: r.failure_threshold,
            success_threshold: r.success_threshold,
            degraded_latency_ms: r.degraded_latency_ms,
            enabled: r.enabled,
            state: r.state,
            state_since: r.state_since.map(rfc3339),
            last_check: r.last_check_at.map(rfc3339),
            last_response_time_ms: r.last_latency_ms,
            last_error: r.last_error,
            last_heartbeat: r.last_heartbeat_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

fn default_interval() -> i64 {
    30
}
fn default_timeout() -> i64 {
    instances::DEFAULT_TIMEOUT_MS
}
fn default_expected() -> String {
    "200-399".into()
}
fn default_failures() -> i64 {
    3
}
fn default_successes() -> i64 {
    2
}
fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"agent_id": "01a21408-c579-7189-8498-d332af50f421", "name": "primary", "kind": "http", "url": "https://planner.example.com/healthz", "interval_seconds": 30}))]
pub struct CreateInstance {
    pub agent_id: String,
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// `http` (polled) or `heartbeat` (the agent calls in).
    #[schema(value_type = crate::monitor::instances::InstanceKind)]
    pub kind: String,
    /// http(s) URL to GET; required for `http`, absent for `heartbeat`.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// 5-86400, default 30.
    #[serde(default = "default_interval")]
    #[schema(minimum = 5, maximum = 86400)]
    pub interval_seconds: i64,
    /// 100-60000 and below the interval, default 5000.
    #[serde(default = "default_timeout")]
    #[schema(minimum = 100, maximum = 60000)]
    pub timeout_ms: i64,
    /// Codes and ranges, default `200-399`.
    #[serde(default = "default_expected")]
    pub expected_status: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub body_contains: Option<String>,
    #[serde(default = "default_failures")]
    #[schema(minimum = 1, maximum = 100)]
    pub failure_threshold: i64,
    #[serde(default = "default_successes")]
    #[schema(minimum = 1, maximum = 100)]
    pub success_threshold: i64,
    #[schema(minimum = 1, maximum = 60000)]
    pub degraded_latency_ms: Option<i64>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Register an instance of an agent to check.
#[utoipa::path(operation_id = "instances.create", tag = "monitoring", request_body = CreateInstance,
    responses((status = 201, body = InstanceView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/instances")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<MonitorManage>,
    body: Body<CreateInstance>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let spec = InstanceSpec {
        agent_id: b.agent_id,
        name: b.name,
        kind: b.kind,
        url: b.url,
        interval_seconds: b.interval_seconds,
        timeout_ms: b.timeout_ms,
        expected_status: b.expected_status,
        body_contains: b.body_contains,
        failure_threshold: b.failure_threshold,
        success_threshold: b.success_threshold,
        degraded_latency_ms: b.degraded_latency_ms,
        enabled: b.enabled,
    };
    let row = instances::create(&st.audit, &caller.ctx, &st.outbound_rules, spec).await?;
    Ok(HttpResponse::Created().json(InstanceView::from(row)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InstanceQuery {
    /// Only this agent's instances.
    pub agent_id: Option<String>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

/// List instances with their state.
#[utoipa::path(operation_id = "instances.list", tag = "monitoring", params(InstanceQuery),
    responses((status = 200, body = Page<InstanceView>), (status = 400, body = Problem)))]
#[get("/instances")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
    q: web::Query<InstanceQuery>,
) -> Result<web::Json<Page<InstanceView>>, ApiError> {
    let st = state::of(&req);
    let q = q.into_inner();
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .resolve()?;
    let rows = instances::list(&st.db, q.agent_id, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |r| r.id.clone(),
        InstanceView::from,
    )))
}

/// Get an instance with its state.
#[utoipa::path(operation_id = "instances.get", tag = "monitoring", responses((status = 200, body = InstanceView), (status = 404, body = Problem)))]
#[get("/instances/{id}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
    id: web::Path<String>,
) -> Result<web::Json<InstanceView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(instances::get(&st.db, &id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    #[schema(max_length = 2048)]
    pub url: Option<Option<String>>,
    #[schema(minimum = 5, maximum = 86400)]
    pub interval_seconds: Option<i64>,
    #[schema(minimum = 100, maximum = 60000)]
    pub timeout_ms: Option<i64>,
    pub expected_status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    #[schema(min_length = 1, max_length = 1024)]
    pub body_contains: Option<Option<String>>,
    #[schema(minimum = 1, maximum = 100)]
    pub failure_threshold: Option<i64>,
    #[schema(minimum = 1, maximum = 100)]
    pub success_threshold: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    #[schema(minimum = 1, maximum = 60000)]
    pub degraded_latency_ms: Option<Option<i64>>,
    pub enabled: Option<bool>,
}

/// Change an instance's check (its kind and agent are fixed).
#[utoipa::path(operation_id = "instances.update", tag = "monitoring", request_body = UpdateInstance,
    responses((status = 200, body = InstanceView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[patch("/instances/{id}")]
pub async fn update(
    req: HttpRequest,
    caller: Guarded<MonitorManage>,
    id: web::Path<String>,
    body: Body<UpdateInstance>,
) -> Result<web::Json<InstanceView>, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let ch = InstanceChanges {
        name: b.name,
        url: b.url,
        interval_seconds: b.interval_seconds,
        timeout_ms: b.timeout_ms,
        expected_status: b.expected_status,
        body_contains: b.body_contains,
        failure_threshold: b.failure_threshold,
        success_threshold: b.success_threshold,
        degraded_latency_ms: b.degraded_latency_ms,
        enabled: b.enabled,
    };
    let row =
        instances::update(&st.db, &st.audit, &caller.ctx, &st.outbound_rules, &id, ch).await?;
    Ok(web::Json(row.into()))
}

/// Remove an instance and its history.
#[utoipa::path(operation_id = "instances.remove", tag = "monitoring", responses((status = 204), (status = 404, body = Problem)))]
#[delete("/instances/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<MonitorManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    instances::delete(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct CheckView {
    pub at: String,
    pub ok: bool,
    pub status_code: Option<i64>,
    pub response_time_ms: Option<i64>,
    pub error: Option<String>,
}

impl From<CheckRow> for CheckView {
    fn from(c: CheckRow) -> Self {
        CheckView {
            at: rfc3339(c.at),
            ok: c.ok,
            status_code: c.status_code,
            response_time_ms: c.latency_ms,
            error: c.error,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CheckList {
    /// Newest first.
    pub items: Vec<CheckView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// 1-1000, default 100.
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    /// Only checks before this RFC 3339 time (to page back).
    #[param(value_type = Option<crate::formats::Timestamp>)]
    pub before: Option<String>,
}

/// An instance's recent check results, newest first.
#[utoipa::path(operation_id = "instances.checks", tag = "monitoring", params(CheckQuery),
    responses((status = 200, body = CheckList), (status = 400, body = Problem), (status = 404, body = Problem)))]
#[get("/instances/{id}/checks")]
pub async fn checks(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
    id: web::Path<String>,
    q: web::Query<CheckQuery>,
) -> Result<web::Json<CheckList>, ApiError> {
    let st = state::of(&req);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_query",
            "limit must be between 1 and 1000",
        ));
    }
    let before = match &q.before {
        Some(t) => Some(crate::timefmt::parse_rfc3339(t).ok_or_else(|| {
            ApiError::bad_request("bad_query", "before must be an RFC 3339 time")
        })?),
        None => None,
    };
    instances::get(&st.db, &id).await?;
    let rows = instances::checks(&st.db, &id, before, limit).await?;
    Ok(web::Json(CheckList {
        items: rows.into_iter().map(CheckView::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// `1h` (by the minute), `24h` (by the hour, the default), `7d` (by the
    /// hour) or `30d` (by the day).
    #[param(value_type = Option<crate::monitor::history::Range>)]
    pub range: Option<String>,
}

/// One bucket of a history.
#[derive(Serialize, ToSchema)]
pub struct BucketView {
    /// When the bucket starts (RFC 3339, UTC).
    pub start: String,
    /// Checks run in it (0: none ran).
    pub checks: i64,
    pub failures: i64,
    /// Median and 95th percentile response time (ms), when any check timed.
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// An instance's check history over a range.
#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    pub instance_id: String,
    #[schema(value_type = crate::monitor::history::Range)]
    pub range: String,
    pub bucket_seconds: i64,
    pub from: String,
    pub to: String,
    pub checks: i64,
    pub failures: i64,
    /// Share of the range's checks that passed (0..1); null without checks.
    pub uptime: Option<f64>,
    /// The same over the last 24 hours, 7 days and 30 days.
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    pub uptime_30d: Option<f64>,
    /// Oldest first, evenly spaced, with no gaps.
    pub buckets: Vec<BucketView>,
}

/// An instance's check history: evenly spaced buckets over the range (a
/// check bar, a latency chart) and its uptime, from every tier of stored
/// history.
#[utoipa::path(operation_id = "instances.history", tag = "monitoring", params(HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 400, body = Problem), (status = 404, body = Problem)))]
#[get("/instances/{id}/history")]
pub async fn history(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
    id: web::Path<String>,
    q: web::Query<HistoryQuery>,
) -> Result<web::Json<HistoryView>, ApiError> {
    use crate::monitor::history::{self, Range};
    let st = state::of(&req);
    let range = match q.range.as_deref() {
        None => Range::Day,
        Some(r) => Range::parse(r).ok_or_else(|| {
            ApiError::bad_request(
                "bad_query",
                format!("range must be one of {}", Range::names()),
            )
        })?,
    };
    instances::get(&st.db, &id).await?;
    let now = crate::db::now_ms();
    let h = history::load(&st.db, &id, range, now).await?;
    let [uptime_24h, uptime_7d, uptime_30d] = history::uptimes(&st.db, &id, now).await?;
    Ok(web::Json(HistoryView {
        instance_id: id.into_inner(),
        range: range.as_str().to_string(),
        bucket_seconds: range.bucket_ms() / 1000,
        from: rfc3339(h.from),
        to: rfc3339(h.to),
        checks: h.checks(),
        failures: h.failures(),
        uptime: h.uptime(),
        uptime_24h,
        uptime_7d,
        uptime_30d,
        buckets: h
            .buckets
            .into_iter()
            .map(|b| BucketView {
                start: rfc3339(b.start),
                checks: b.checks,
                failures: b.failures,
                p50_ms: b.p50_ms,
                p95_ms: b.p95_ms,
            })
            .collect(),
    }))
}

/// A heartbeat from a `heartbeat` instance: its agent calls this at least
/// once per interval. The agent itself, or a holder of `monitor:manage`.
#[utoipa::path(operation_id = "instances.heartbeat", tag = "monitoring", responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
#[post("/instances/{id}/heartbeat")]
pub async fn heartbeat(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let instance = instances::get(&st.db, &id).await;
    let own =
        matches!(&instance, Ok(i) if i.agent_id.as_deref() == Some(caller.principal.id.as_str()));
    if !own {
        // Without the right, whether the instance exists stays unsaid.
        caller.require(&st, MonitorManage::NAME).await?;
    }
    instance?;
    instances::heartbeat(&st.db, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::MonitorManage, create))
        .service(needs(Permission::HealthView, list))
        .service(needs(Permission::HealthView, get))
        .service(needs(Permission::MonitorManage, update))
        .service(needs(Permission::MonitorManage, remove))
        .service(needs(Permission::HealthView, checks))
        .service(needs(Permission::HealthView, history))
        .service(needs(Permission::MonitorManage, heartbeat));
}
