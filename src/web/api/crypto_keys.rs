//! `/api/v1/crypto/keys`: key rings and their versions (never key
//! material), creating a classification, rotation, minimum decryption
//! version and rotation period. Needs `key:manage`.

use actix_web::{get, patch, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::encryption::keyring::{NewRing, RingView};
use crate::rbac::Permission;
use crate::web::api::double_option;
use crate::web::auth::{Guarded, KeyManage};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state::{self, WebState};

#[derive(Serialize, ToSchema)]
pub struct RingList {
    pub items: Vec<RingView>,
}

async fn list(st: &WebState) -> Result<web::Json<RingList>, ApiError> {
    Ok(web::Json(RingList {
        items: st.keyring.rings(&st.db, &st.audit).await?,
    }))
}

/// Key rings: versions, use counts, minimum decryption versions, rotation.
#[utoipa::path(operation_id = "crypto_keys.keys", tag = "crypto", responses((status = 200, body = RingList)))]
#[get("/keys")]
pub async fn keys(
    req: HttpRequest,
    _caller: Guarded<KeyManage>,
) -> Result<web::Json<RingList>, ApiError> {
    list(&state::of(&req)).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"classification": "payments", "rotation_days": 90}))]
pub struct RingCreate {
    /// 1-32 characters: a lower-case letter, then lower-case letters,
    /// digits, `_` or `-`.
    #[schema(value_type = crate::formats::Classification)]
    pub classification: String,
    /// Decrypting needs `crypto:decrypt:<classification>`, not only
    /// `crypto:decrypt`. Default true: new classifications are for data
    /// that needs more than the common grant.
    #[serde(default = "yes")]
    pub requires_specific_permission: bool,
    /// Days between scheduled rotations (0: on demand only); absent or
    /// null: the configured default.
    #[schema(minimum = 0, maximum = 3650)]
    pub rotation_days: Option<i64>,
}

fn yes() -> bool {
    true
}

/// Add a classification, with its first key version.
#[utoipa::path(operation_id = "crypto_keys.create", tag = "crypto", request_body = RingCreate,
    responses((status = 201, body = RingList), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/keys")]
pub async fn create(
    req: HttpRequest,
    caller: Guarded<KeyManage>,
    body: Body<RingCreate>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    let ring = NewRing {
        classification: b.classification,
        requires_specific_permission: b.requires_specific_permission,
        rotation_days: b.rotation_days,
    };
    st.keyring.create(&st.audit, &caller.ctx, ring).await?;
    Ok(actix_web::HttpResponse::Created().json(list(&st).await?.into_inner()))
}

/// Add a new key version to a classification; new encryptions use it.
#[utoipa::path(operation_id = "crypto_keys.rotate", tag = "crypto", responses((status = 200, body = RingList), (status = 404, body = Problem)))]
#[post("/keys/{classification}/rotate")]
pub async fn rotate(
    req: HttpRequest,
    caller: Guarded<KeyManage>,
    classification: web::Path<String>,
) -> Result<web::Json<RingList>, ApiError> {
    let st = state::of(&req);
    st.keyring
        .rotate(&st.audit, &caller.ctx, &classification, "requested")
        .await?;
    list(&st).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RingChange {
    /// Packages of older versions are refused from now on.
    pub min_decryption_version: Option<i64>,
    /// Days between scheduled rotations (0: on demand only); null: the
    /// configured default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    #[schema(minimum = 0, maximum = 3650)]
    pub rotation_days: Option<Option<i64>>,
}

/// Set a classification's minimum decryption version and/or rotation period.
#[utoipa::path(operation_id = "crypto_keys.update", tag = "crypto", request_body = RingChange, responses((status = 200, body = RingList), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[patch("/keys/{classification}")]
pub async fn update(
    req: HttpRequest,
    caller: Guarded<KeyManage>,
    classification: web::Path<String>,
    body: Body<RingChange>,
) -> Result<web::Json<RingList>, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    st.keyring
        .update(
            &st.db,
            &st.audit,
            &caller.ctx,
            &classification,
            b.min_decryption_version,
            b.rotation_days,
        )
        .await?;
    list(&st).await
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::KeyManage, keys))
        .service(needs(Permission::KeyManage, create))
        .service(needs(Permission::KeyManage, rotate))
        .service(needs(Permission::KeyManage, update));
}
