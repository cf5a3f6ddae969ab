//! `/healthz`, `/readyz` and the OpenAPI document.

use std::collections::BTreeMap;

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok` while the process serves HTTP.
    pub status: &'static str,
}

/// Liveness: the process is up. Touches nothing else.
#[utoipa::path(operation_id = "service.healthz", tag = "service", responses((status = 200, body = Liveness)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `ok` or what is wrong, per component: `database`, `migrations`,
    /// `audit`, `scheduler`.
    pub checks: BTreeMap<&'static str, String>,
}

/// Readiness: the database answers, its schema is the binary's, and the
/// scheduler is alive. 503 otherwise.
#[utoipa::path(
    operation_id = "service.readyz",
    tag = "service",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
#[get("/readyz")]
pub async fn readyz(req: HttpRequest) -> HttpResponse {
    let st = state::of(&req);
    let checks = crate::monitor::health::infrastructure_checks(&st.watched()).await;
    let ready = checks.values().all(|v| v == "ok");
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// This OpenAPI 3 document.
#[utoipa::path(operation_id = "service.openapi_json", tag = "service", responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
#[get("/openapi.json")]
pub async fn openapi_json(doc: web::Data<crate::web::openapi::Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(doc.0.clone())
}

/// Registers this module's routes under `/api/v1`.
pub fn api_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(openapi_json);
}

/// Registers this module's routes, outside `/api/v1`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}
