//! `GET /metrics`: Prometheus exposition (scrape with a bearer API key
//! holding `health:view`).

use actix_web::{get, HttpRequest, HttpResponse};

use crate::monitor::exposition;
use crate::rbac::Permission;
use crate::web::auth::{Guarded, HealthView};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

/// The appliance's figures and instance health, Prometheus text format 0.0.4.
#[utoipa::path(operation_id = "prometheus.metrics", tag = "monitoring",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"), (status = 401, body = Problem), (status = 403, body = Problem)))]
#[get("/metrics")]
pub async fn metrics(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
) -> Result<HttpResponse, ApiError> {
    let text = exposition::render(&state::of(&req).watched()).await?;
    Ok(HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(text))
}

/// Registers this module's routes, outside `/api/v1`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::HealthView, metrics));
}
