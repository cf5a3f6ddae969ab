//! `/api/v1/channels`: where notifications go. Secret settings are stored
//! encrypted and never returned (`secrets_set` says which are set).

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};

use crate::notify::outbox::RetryPolicy;
use crate::notify::store::{ChannelSpec, ChannelView};
use crate::rbac::Permission;
use crate::web::api::notifications::NotificationView;
use crate::web::auth::{AlertManage, AlertRead, Guarded};
use crate::web::needs::needs;
use crate::web::pagination::{Page, PageParams};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// Every channel, by name.
#[utoipa::path(operation_id = "channels.list", tag = "alerting", params(PageParams),
    responses((status = 200, body = Page<ChannelView>), (status = 400, body = Problem)))]
#[get("/channels")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    q: Result<web::Query<PageParams>, actix_web::Error>,
) -> Result<web::Json<Page<ChannelView>>, ApiError> {
    let st = state::of(&req);
    let page = q?.resolve()?;
    let rows = st.channels.list(page.after.clone(), page.limit + 1).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        &page,
        |c| c.name.clone(),
        |c| c,
    )))
}

/// Create a channel: `email`, `slack`, `pagerduty` or `webhook`.
#[utoipa::path(operation_id = "channels.create", tag = "alerting", request_body = ChannelSpec,
    responses((status = 201, body = ChannelView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/channels")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    body: Body<ChannelSpec>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    let view = st.channels.create(&caller.ctx, body?.into_inner()).await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(operation_id = "channels.get", tag = "alerting",
    responses((status = 200, body = ChannelView), (status = 404, body = Problem)))]
#[get("/channels/{id}")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<AlertRead>,
    id: web::Path<String>,
) -> Result<web::Json<ChannelView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(st.channels.get(&id).await?))
}

/// Replace a channel's settings; secret fields left out keep their value.
#[utoipa::path(operation_id = "channels.replace", tag = "alerting", request_body = ChannelSpec,
    responses((status = 200, body = ChannelView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[put("/channels/{id}")]
pub async fn replace(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    id: web::Path<String>,
    body: Body<ChannelSpec>,
) -> Result<web::Json<ChannelView>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(
        st.channels
            .update(&caller.ctx, &id, body?.into_inner())
            .await?,
    ))
}

#[utoipa::path(operation_id = "channels.remove", tag = "alerting", responses((status = 204), (status = 404, body = Problem)))]
#[delete("/channels/{id}")]
pub async fn remove(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state::of(&req);
    st.channels.delete(&caller.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Send a test notification now (one attempt; a retryable failure stays
/// queued). The result is in the notification log too.
#[utoipa::path(operation_id = "channels.test", tag = "alerting",
    responses((status = 200, body = NotificationView), (status = 404, body = Problem)))]
#[post("/channels/{id}/test")]
pub async fn test(
    req: HttpRequest,
    caller: Guarded<AlertManage>,
    id: web::Path<String>,
) -> Result<web::Json<NotificationView>, ApiError> {
    let st = state::of(&req);
    let policy = RetryPolicy::from(&st.config.alerting);
    let row = st
        .channels
        .test(&caller.ctx, &id, st.issuer_url.as_str(), policy)
        .await?;
    Ok(web::Json(row.into()))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AlertRead, list))
        .service(needs(Permission::AlertManage, create))
        .service(needs(Permission::AlertRead, get))
        .service(needs(Permission::AlertManage, replace))
        .service(needs(Permission::AlertManage, remove))
        .service(needs(Permission::AlertManage, test));
}
