//! `POST /api/v1/metrics` (agents report samples) and
//! `GET /api/v1/metrics/query` (series over a window).

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, FieldErrors};
use crate::monitor::metrics::{self, Sample, Series};
use crate::rbac::Permission;
use crate::timefmt::parse_rfc3339;
use crate::web::auth::{Caller, Guarded, HealthView};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedSample {
    /// Prometheus naming; `*_rate` and `*_utilization` are ratios 0..1.
    #[schema(value_type = crate::formats::MetricName)]
    pub name: String,
    pub value: f64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339; default now. At most 5 minutes ahead.
    #[schema(value_type = Option<crate::formats::Timestamp>)]
    pub timestamp: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"metrics": [{"name": "error_rate", "value": 0.02, "labels": {"workflow": "nightly"}}, {"name": "workflow_success_rate", "value": 0.97, "labels": {"workflow": "nightly"}}]}))]
pub struct MetricsReport {
    /// 1 to 5000 samples, stored all or none.
    #[schema(min_items = 1, max_items = 5000)]
    pub metrics: Vec<ReportedSample>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub accepted: usize,
}

/// Report metric samples (needs `metrics:report`).
#[utoipa::path(operation_id = "metrics.report", tag = "monitoring", request_body = MetricsReport,
    responses((status = 200, body = Accepted), (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
#[post("/metrics")]
pub async fn report(
    req: HttpRequest,
    caller: Caller,
    body: Body<MetricsReport>,
) -> Result<web::Json<Accepted>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::MetricsReport.as_str())
        .await?;
    let b = body?.into_inner();
    let mut errors = FieldErrors::new();
    let mut samples = Vec::with_capacity(b.metrics.len());
    for (i, m) in b.metrics.into_iter().enumerate() {
        let at = match m.timestamp.as_deref().map(parse_rfc3339) {
            Some(None) => {
                errors.insert(
                    format!("metrics[{i}].timestamp"),
                    "must be an RFC 3339 time".into(),
                );
                None
            }
            Some(t) => t,
            None => None,
        };
        samples.push(Sample {
            name: m.name,
            value: m.value,
            labels: m.labels,
            at,
        });
    }
    if !errors.is_empty() {
        return Err(Error::fields(errors).into());
    }
    let retention = st.config.monitoring.metrics_retention_days;
    let accepted = st
        .metrics
        .ingest(&caller.principal.id, samples, retention)
        .await?;
    Ok(web::Json(Accepted { accepted }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueryParams {
    /// The metric name.
    #[param(value_type = crate::formats::MetricName)]
    pub name: String,
    /// Only series reported by this principal id.
    pub reporter: Option<String>,
    /// A JSON object of labels every returned series must carry.
    pub labels: Option<String>,
    /// RFC 3339; default an hour before `to`.
    #[param(value_type = Option<crate::formats::Timestamp>)]
    pub from: Option<String>,
    /// RFC 3339; default now.
    #[param(value_type = Option<crate::formats::Timestamp>)]
    pub to: Option<String>,
    /// Samples per series, 1-10000, default 1000 (oldest first).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct QueryResult {
    pub series: Vec<Series>,
}

/// A metric's series over a window.
#[utoipa::path(operation_id = "metrics.query", tag = "monitoring", params(QueryParams),
    responses((status = 200, body = QueryResult), (status = 400, body = Problem)))]
#[get("/metrics/query")]
pub async fn query(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
    // A Result, so that a caller without the permission gets 403, not a
    // verdict on its query.
    q: Result<web::Query<QueryParams>, actix_web::Error>,
) -> Result<web::Json<QueryResult>, ApiError> {
    let st = state::of(&req);
    let q = q?.into_inner();
    let bad = |m: &str| ApiError::bad_request("bad_query", m.to_string());
    let time = |t: &Option<String>, what: &str| match t {
        Some(t) => parse_rfc3339(t)
            .map(Some)
            .ok_or_else(|| bad(&format!("{what} must be an RFC 3339 time"))),
        None => Ok(None),
    };
    let to = time(&q.to, "to")?.unwrap_or_else(crate::db::now_ms);
    let from = time(&q.from, "from")?.unwrap_or(to - 3_600_000);
    if from >= to {
        return Err(bad("from must be before to"));
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(bad("limit must be between 1 and 10000"));
    }
    if !metrics::valid_name(&q.name) {
        return Err(bad("name is not a valid metric name"));
    }
    let matching = match &q.labels {
        Some(l) => {
            serde_json::from_str(l).map_err(|_| bad("labels must be a JSON object of strings"))?
        }
        None => BTreeMap::new(),
    };
    let series = metrics::query(&st.db, q.name, q.reporter, matching, from, to, limit).await?;
    Ok(web::Json(QueryResult { series }))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::MetricsReport, report))
        .service(needs(Permission::HealthView, query));
}
