//! `GET /api/v1/health`: the fleet and the appliance in one document.

use actix_web::{get, web, HttpRequest};

use crate::monitor::health::{self, HealthReport};
use crate::rbac::Permission;
use crate::web::auth::{Guarded, HealthView};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

/// Overall status and score, per agent type instance health,
/// infrastructure and security figures, active alerts. The score is
/// explained in the README.
#[utoipa::path(operation_id = "health.get", tag = "monitoring", responses((status = 200, body = HealthReport), (status = 403, body = Problem)))]
#[get("/health")]
pub async fn get(
    req: HttpRequest,
    _caller: Guarded<HealthView>,
) -> Result<web::Json<HealthReport>, ApiError> {
    Ok(web::Json(health::report(&state::of(&req).watched()).await?))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::HealthView, get));
}
