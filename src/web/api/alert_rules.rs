//! `/api/v1/alert-rules`: rules, and the "test this expression now" preview.

use std::collections::BTreeMap;

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::alerts::rules::{self, Preview, RuleSpec};
use crate::db::alert_rules::RuleRow;
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AlertManage, AlertRead, Guarded};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// A rule as stored: its [`RuleSpec`] fields and when it was written. The
/// fields are spelled out rather than flattened from `RuleSpec`, whose
/// schema forbids other properties (it is a request body that refuses
/// unknown fields) and so could not be combined with the timestamps.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub name: String,
    /// e.g. `agent_health == 'unhealthy' for 2 minutes`; see the grammar.
    pub expression: String,
    /// critical, major, minor, warning or info.
    pub severity: String,
    /// Channel names notified when the rule fires.
    pub channels: Vec<String>,
    pub escalation_policy: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`, with `{{ $labels.x }}` / `{{ $value }}`.
    pub annotations: BTreeMap<String, String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        RuleView {
            name: r.name,
            expression: r.expression,
            severity: r.severity,
            channels: r.channels,
            escalation_policy: r.escalation_policy,
            labels: r.labels,
            annotations: r.annotations,
            enabled: r.enabled,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// Every rule, by name.
#[utoipa::path(operation_id = "alert_rules.list", tag = "alerting", params(PageParams),
    responses((status = 200, body = Page<RuleView>), (status = 400, body = Problem)))]
#[get("/alert-rules")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    q: Result<web::Query<PageParams>, actix_web::Error>,
) -> Result<web::Json<Page<RuleView>>, ApiError> {
    let st = state::of(&req);
    let page = q?.resolve()?;
    let rows = rules::list(&st.db, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |r| r.name.clone(),
        RuleView::from,
    )))
}

/// Create a rule; a parse error names the column (`expression`).
#[utoipa::path(operation_id = "alert_rules.create", tag = "alerting", request_body = RuleSpec,
    responses((status = 201, body = RuleView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/alert-rules")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    body: Body<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let row = rules::create(&st.db, &st.audit, &caller.ctx, body?.into_inner()).await?;
    Ok(HttpResponse::Created().json(RuleView::from(row)))
}

#[utoipa::path(operation_id = "alert_rules.get", tag = "alerting",
    responses((status = 200, body = RuleView), (status = 404, body = Problem)))]
#[get("/alert-rules/{name}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    name: web::Path<String>,
) -> Result<web::Json<RuleView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(rules::get(&st.db, &name).await?.into()))
}

/// Replace a rule (enable or disable it with `enabled`).
#[utoipa::path(operation_id = "alert_rules.replace", tag = "alerting", request_body = RuleSpec,
    responses((status = 200, body = RuleView), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[put("/alert-rules/{name}")]
pub async fn replace(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    name: web::Path<String>,
    body: Body<RuleSpec>,
) -> Result<web::Json<RuleView>, ApiError> {
    let st = state::of(&req);
    let row = rules::replace(&st.db, &st.audit, &caller.ctx, &name, body?.into_inner()).await?;
    Ok(web::Json(row.into()))
}

/// Delete a rule; its open alerts resolve at the next evaluation.
#[utoipa::path(operation_id = "alert_rules.remove", tag = "alerting", responses((status = 204), (status = 404, body = Problem)))]
#[delete("/alert-rules/{name}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    rules::delete(&st.audit, &caller.ctx, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expression": "error_rate > 5% for 5 minutes"}))]
pub struct PreviewRequest {
    #[schema(min_length = 1, max_length = 2000)]
    pub expression: String,
}

/// Evaluate an expression once against current data, without saving.
#[utoipa::path(operation_id = "alert_rules.preview", tag = "alerting", request_body = PreviewRequest,
    responses((status = 200, body = Preview), (status = 422, body = Problem)))]
#[post("/alert-rules/preview")]
pub async fn preview(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    body: Body<PreviewRequest>,
) -> Result<web::Json<Preview>, ApiError> {
    let st = state::of(&req);
    let expression = body?.into_inner().expression;
    Ok(web::Json(rules::preview(&st.db, expression).await?))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AlertRead, list))
        .service(needs(Permission::AlertManage, create))
        .service(needs(Permission::AlertRead, preview))
        .service(needs(Permission::AlertRead, get))
        .service(needs(Permission::AlertManage, replace))
        .service(needs(Permission::AlertManage, remove));
}
