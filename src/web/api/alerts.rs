//! `/api/v1/alerts`: alerts (pending, firing, resolved, inactive), one
//! alert with its history, and acknowledgement.

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::alerts::{engine, AlertState};
use crate::db::alerts::{AlertRow, EventRow};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AlertAcknowledge, AlertRead, Guarded};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct AlertView {
    pub id: String,
    pub rule: String,
    /// Stable per (rule, label set); PagerDuty's `dedup_key`.
    pub fingerprint: String,
    /// `pending`, `firing`, `resolved`, or `inactive` (stopped before firing).
    pub state: AlertState,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub value: Option<String>,
    pub active_since: String,
    pub fired_at: Option<String>,
    pub resolved_at: Option<String>,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    /// `silence:<id>` or `inhibited:<alert id>` while muted.
    pub suppressed_by: Option<String>,
    /// Index of the next escalation step.
    pub escalation_step: i64,
    pub next_notification_at: Option<String>,
    pub updated_at: String,
}

impl From<AlertRow> for AlertView {
    fn from(a: AlertRow) -> Self {
        AlertView {
            id: a.id,
            rule: a.rule,
            fingerprint: a.fingerprint,
            state: a.state,
            severity: a.severity,
            labels: a.labels,
            annotations: a.annotations,
            value: a.value,
            active_since: rfc3339(a.active_since),
            fired_at: a.fired_at.map(rfc3339),
            resolved_at: a.resolved_at.map(rfc3339),
            acknowledged_at: a.acknowledged_at.map(rfc3339),
            acknowledged_by: a.acknowledged_by,
            suppressed_by: a.suppressed_by,
            escalation_step: a.escalation_step,
            next_notification_at: a.next_notify_at.map(rfc3339),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub at: String,
    /// pending, firing, resolved, inactive, acknowledged, escalated,
    /// repeated, suppressed, unsuppressed, quarantine, ...
    pub kind: String,
    pub detail: String,
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        EventView {
            at: rfc3339(e.at),
            kind: e.kind,
            detail: e.detail,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlertDetail {
    #[serde(flatten)]
    pub alert: AlertView,
    /// Every transition and action, oldest first.
    pub history: Vec<EventView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// pending, firing, resolved or inactive.
    #[param(value_type = Option<AlertState>)]
    pub state: Option<String>,
    /// Only alerts of this rule.
    pub rule: Option<String>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

/// Alerts, newest first.
#[utoipa::path(operation_id = "alerts.list", tag = "alerting", params(AlertQuery),
    responses((status = 200, body = Page<AlertView>), (status = 400, body = Problem)))]
#[get("/alerts")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    q: Result<web::Query<AlertQuery>, actix_web::Error>,
) -> Result<web::Json<Page<AlertView>>, ApiError> {
    let st = state::of(&req);
    let q = q?.into_inner();
    let state = super::closed_filter::<AlertState>("state", q.state.as_deref())?;
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .resolve()?;
    let rows = engine::list(&st.db, state, q.rule, page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |a| a.id.clone(),
        AlertView::from,
    )))
}

/// One alert with its history.
#[utoipa::path(operation_id = "alerts.get", tag = "alerting",
    responses((status = 200, body = AlertDetail), (status = 404, body = Problem)))]
#[get("/alerts/{id}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    id: web::Path<String>,
) -> Result<web::Json<AlertDetail>, ApiError> {
    let st = state::of(&req);
    let (a, history) = engine::get(&st.db, &id).await?;
    Ok(web::Json(AlertDetail {
        alert: a.into(),
        history: history.into_iter().map(EventView::from).collect(),
    }))
}

/// Acknowledge a firing alert: escalation stops; channels told it fired
/// are told (PagerDuty gets `acknowledge`).
#[utoipa::path(operation_id = "alerts.acknowledge", tag = "alerting",
    responses((status = 200, body = AlertView), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/alerts/{id}/ack")]
pub async fn acknowledge(
    req: HttpRequest,
    caller: Guarded<AlertAcknowledge>,
    id: web::Path<String>,
) -> Result<web::Json<AlertView>, ApiError> {
    let st = state::of(&req);
    let by = caller.principal.name.clone();
    let a = st
        .alerts
        .acknowledge(&st.audit, &caller.ctx, &id, &by)
        .await?;
    Ok(web::Json(a.into()))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AlertRead, list))
        .service(needs(Permission::AlertRead, get))
        .service(needs(Permission::AlertAcknowledge, acknowledge));
}
