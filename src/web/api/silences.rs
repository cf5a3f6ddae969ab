//! `/api/v1/silences`: mute notifications of matching alerts for a while.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::alerts::silences::{self, SilenceSpec};
use crate::db::silences::{MatcherRow, SilenceRow, SilenceStatus};
use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{AlertAcknowledge, AlertRead, Guarded};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct SilenceView {
    pub id: String,
    pub matchers: Vec<MatcherRow>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
    pub created_at: String,
    /// `active`, `pending` (starts later) or `expired`.
    pub status: SilenceStatus,
}

impl From<SilenceRow> for SilenceView {
    fn from(s: SilenceRow) -> Self {
        let status = s.status(crate::db::now_ms());
        SilenceView {
            id: s.id,
            matchers: s.matchers,
            starts_at: rfc3339(s.starts_at),
            ends_at: rfc3339(s.ends_at),
            created_by: s.created_by,
            comment: s.comment,
            created_at: rfc3339(s.created_at),
            status,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SilenceQuery {
    /// true: only silences not yet ended.
    pub current: Option<bool>,
    #[param(value_type = Option<crate::web::pagination::PageLimit>)]
    pub limit: Option<u32>,
    #[param(value_type = Option<crate::web::pagination::Cursor>)]
    pub cursor: Option<String>,
}

/// Silences, newest first.
#[utoipa::path(operation_id = "silences.list", tag = "alerting", params(SilenceQuery),
    responses((status = 200, body = Page<SilenceView>), (status = 400, body = Problem)))]
#[get("/silences")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    q: Result<web::Query<SilenceQuery>, actix_web::Error>,
) -> Result<web::Json<Page<SilenceView>>, ApiError> {
    let st = state::of(&req);
    let q = q?.into_inner();
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .resolve()?;
    let rows = silences::list(
        &st.db,
        q.current.unwrap_or(false),
        page.after.clone(),
        page.limit + 1,
    )
    .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |s| s.id.clone(),
        SilenceView::from,
    )))
}

/// Create a silence (the caller is its author).
#[utoipa::path(operation_id = "silences.create", tag = "alerting", request_body = SilenceSpec,
    responses((status = 201, body = SilenceView), (status = 422, body = Problem)))]
#[post("/silences")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<AlertAcknowledge>,
    body: Body<SilenceSpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let author = caller.principal.name.clone();
    let row = silences::create(&st.audit, &caller.ctx, &author, body?.into_inner()).await?;
    Ok(HttpResponse::Created().json(SilenceView::from(row)))
}

/// End a silence now (it stays in the history).
#[utoipa::path(operation_id = "silences.expire", tag = "alerting",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[delete("/silences/{id}")]
pub async fn expire(
    req: HttpRequest,
    caller: Guarded<AlertAcknowledge>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    silences::expire(&st.audit, &caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AlertRead, list))
        .service(needs(Permission::AlertAcknowledge, create))
        .service(needs(Permission::AlertAcknowledge, expire));
}
