//! `/api/v1/notifications`: the notification log (and outbox).

use actix_web::{get, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::notifications::NotificationRow;
use crate::notify::outbox;
use crate::notify::DeliveryStatus;
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AlertRead, Guarded};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    /// Also the idempotency key receivers see.
    pub id: String,
    pub alert_id: Option<String>,
    pub channel: String,
    /// firing, resolved, acknowledged, test or approval.
    pub kind: String,
    /// pending, delivered or failed.
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl From<NotificationRow> for NotificationView {
    fn from(n: NotificationRow) -> Self {
        NotificationView {
            next_attempt_at: (n.status == DeliveryStatus::Pending)
                .then(|| rfc3339(n.next_attempt_at)),
            id: n.id,
            alert_id: n.alert_id,
            channel: n.channel,
            kind: n.kind,
            status: n.status,
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: rfc3339(n.created_at),
            delivered_at: n.delivered_at.map(rfc3339),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// pending, delivered or failed.
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    pub alert_id: Option<String>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

/// Notifications, newest first.
#[utoipa::path(operation_id = "notifications.list", tag = "alerting", params(NotificationQuery),
    responses((status = 200, body = Page<NotificationView>), (status = 400, body = Problem)))]
#[get("/notifications")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    q: Result<web::Query<NotificationQuery>, actix_web::Error>,
) -> Result<web::Json<Page<NotificationView>>, ApiError> {
    let st = state::of(&req);
    let q = q?.into_inner();
    let status = super::closed_filter::<DeliveryStatus>("status", q.status.as_deref())?;
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .resolve()?;
    let rows = outbox::list(
        &st.db,
        status,
        q.alert_id,
        page.after.clone(),
        page.limit + 1,
    )
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |n| n.id.clone(),
        NotificationView::from,
    )))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AlertRead, list));
}
