//! `/api/v1/signing-keys`: the token signing keys (public parts only).

use actix_web::web::Json;
use actix_web::{get, post, HttpRequest};
use serde::Serialize;
use utoipa::ToSchema;

use crate::rbac::Permission;
use crate::timefmt::rfc3339;
use crate::web::auth::{Guarded, KeyManage};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Problem};
use crate::web::state;

#[derive(Serialize, ToSchema)]
pub struct SigningKeyView {
    pub kid: String,
    pub alg: &'static str,
    /// `active` signs new tokens; `retired` only verifies older ones.
    pub status: &'static str,
    pub created_at: String,
    pub retired_at: Option<String>,
    /// When a retired key leaves the JWKS.
    pub published_until: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SigningKeyList {
    pub items: Vec<SigningKeyView>,
}

fn list_view(st: &state::WebState) -> SigningKeyList {
    SigningKeyList {
        items: st
            .signing_keys
            .entries()
            .into_iter()
            .map(|e| SigningKeyView {
                kid: e.kid,
                alg: "EdDSA",
                status: if e.retired_at.is_none() {
                    "active"
                } else {
                    "retired"
                },
                created_at: rfc3339(e.created_at),
                retired_at: e.retired_at.map(rfc3339),
                published_until: e.publish_until.map(rfc3339),
            })
            .collect(),
    }
}

/// List the published signing keys, newest first.
#[utoipa::path(
    operation_id = "signing_keys.list",
    tag = "oauth",
    responses((status = 200, body = SigningKeyList), (status = 403, body = Problem))
)]
#[get("/signing-keys")]
pub async fn list(
    req: HttpRequest,
    _caller: Guarded<KeyManage>,
) -> Result<Json<SigningKeyList>, ApiError> {
    let st = state::of(&req);
    Ok(Json(list_view(&st)))
}

/// Rotate now: a new key signs from here on; the previous one stays in the
/// JWKS until every token it signed has expired.
#[utoipa::path(
    operation_id = "signing_keys.rotate",
    tag = "oauth",
    responses((status = 200, body = SigningKeyList), (status = 403, body = Problem))
)]
#[post("/signing-keys/rotate")]
pub async fn rotate(
    req: HttpRequest,
    caller: Guarded<KeyManage>,
) -> Result<Json<SigningKeyList>, ApiError> {
    let st = state::of(&req);
    let max_token_ms = i64::from(st.config.tokens.lifetime_seconds) * 1000;
    st.signing_keys
        .rotate(&st.db, &st.audit, &caller.ctx, max_token_ms)
        .await?;
    Ok(Json(list_view(&st)))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::KeyManage, list))
        .service(needs(Permission::KeyManage, rotate));
}
