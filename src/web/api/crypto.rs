//! `/api/v1/crypto/*`: envelope encryption for agents, and key admin.

use actix_web::{get, patch, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Outcome;
use crate::crypto::keyring::{Package, RingView};
use crate::error::Error;
use crate::web::auth::{Caller, Guarded, KeyManage};
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state::{self, WebState};

const MAX_CONTEXT: usize = 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    /// Any JSON value.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// `public`, `internal`, `confidential`, `restricted`, or another ring.
    pub classification: String,
    /// Bound as associated data: decryption must present the same context.
    pub context: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    pub package: Package,
    pub context: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Decrypted {
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

fn check_context(c: &Option<String>) -> Result<(), ApiError> {
    match c {
        Some(c) if c.chars().count() > MAX_CONTEXT => Err(Error::field(
            "context",
            format!("must be at most {MAX_CONTEXT} characters"),
        )
        .into()),
        _ => Ok(()),
    }
}

/// `crypto:decrypt:<classification>` always works; `crypto:decrypt` too,
/// unless the ring requires the specific permission.
async fn require_decrypt(
    st: &WebState,
    caller: &Caller,
    classification: &str,
) -> Result<(), ApiError> {
    let specific = format!("crypto:decrypt:{classification}");
    if !crate::rbac::patterns::valid_permission(&specific) {
        return Err(Error::Rejected {
            code: "unknown_classification",
            message: format!("no key ring for classification {classification:?}"),
        }
        .into());
    }
    let needs_specific = st
        .keyring
        .requires_specific(&st.db, &st.audit, classification)
        .await?;
    if needs_specific {
        return caller.require(st, &specific).await;
    }
    match caller.require(st, "crypto:decrypt").await {
        Ok(()) => Ok(()),
        Err(_) => caller.require(st, &specific).await,
    }
}

/// Encrypt a JSON value under the newest key of a classification.
#[utoipa::path(tag = "crypto", request_body = EncryptRequest,
    responses((status = 200, body = Package), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = ["crypto:encrypt"]), ("bearer" = ["crypto:encrypt"])))]
#[post("/crypto/encrypt")]
pub async fn encrypt(
    req: HttpRequest,
    caller: Caller,
    body: Body<EncryptRequest>,
) -> Result<web::Json<Package>, ApiError> {
    let st = state::of(&req);
    caller.require(&st, "crypto:encrypt").await?;
    let b = body?.into_inner();
    check_context(&b.context)?;
    let event = caller
        .ctx
        .event("crypto.encrypt", Outcome::Success)
        .target("key_ring", &b.classification);
    match st
        .keyring
        .encrypt(
            &st.db,
            &st.audit,
            &b.classification,
            &b.data,
            b.context.as_deref(),
        )
        .await
    {
        Ok(p) => {
            st.audit
                .record(
                    event
                        .detail("key_id", &p.key_id)
                        .detail("key_version", p.key_version),
                )
                .await?;
            Ok(web::Json(p))
        }
        Err(e) => Err(st.audit.fail(event, e).await.into()),
    }
}

/// Decrypt a package (with the context it was encrypted with).
#[utoipa::path(tag = "crypto", request_body = DecryptRequest,
    responses((status = 200, body = Decrypted), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = ["crypto:decrypt"]), ("bearer" = ["crypto:decrypt"])))]
#[post("/crypto/decrypt")]
pub async fn decrypt(
    req: HttpRequest,
    caller: Caller,
    body: Body<DecryptRequest>,
) -> Result<web::Json<Decrypted>, ApiError> {
    let st = state::of(&req);
    // Checked before the body: without any decrypt grant there is nothing to say.
    if caller.require(&st, "crypto:decrypt").await.is_err() {
        let b = body
            .as_ref()
            .ok()
            .map(|b| b.package.classification.clone())
            .unwrap_or_default();
        require_decrypt(&st, &caller, &b)
            .await
            .map_err(|_| ApiError::forbidden("this requires the crypto:decrypt permission"))?;
    }
    let b = body?.into_inner();
    check_context(&b.context)?;
    require_decrypt(&st, &caller, &b.package.classification).await?;
    let event = caller
        .ctx
        .event("crypto.decrypt", Outcome::Success)
        .target("key_ring", &b.package.classification)
        .detail("key_id", &b.package.key_id)
        .detail("key_version", b.package.key_version);
    match st
        .keyring
        .decrypt(&st.db, &st.audit, &b.package, b.context.as_deref())
        .await
    {
        Ok(data) => {
            st.audit.record(event).await?;
            Ok(web::Json(Decrypted { data }))
        }
        Err(e) => Err(st.audit.fail(event, e).await.into()),
    }
}

/// Re-encrypt a package under the newest key version, without returning
/// the data.
#[utoipa::path(tag = "crypto", request_body = DecryptRequest,
    responses((status = 200, body = Package), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = ["crypto:encrypt"]), ("bearer" = ["crypto:encrypt"])))]
#[post("/crypto/rewrap")]
pub async fn rewrap(
    req: HttpRequest,
    caller: Caller,
    body: Body<DecryptRequest>,
) -> Result<web::Json<Package>, ApiError> {
    let st = state::of(&req);
    caller.require(&st, "crypto:encrypt").await?;
    let b = body?.into_inner();
    check_context(&b.context)?;
    require_decrypt(&st, &caller, &b.package.classification).await?;
    let event = caller
        .ctx
        .event("crypto.rewrap", Outcome::Success)
        .target("key_ring", &b.package.classification)
        .detail("from_key_id", &b.package.key_id);
    let result = async {
        let data = st
            .keyring
            .decrypt(&st.db, &st.audit, &b.package, b.context.as_deref())
            .await?;
        st.keyring
            .encrypt(
                &st.db,
                &st.audit,
                &b.package.classification,
                &data,
                b.context.as_deref(),
            )
            .await
    }
    .await;
    match result {
        Ok(p) => {
            st.audit
                .record(
                    event
                        .detail("key_id", &p.key_id)
                        .detail("key_version", p.key_version),
                )
                .await?;
            Ok(web::Json(p))
        }
        Err(e) => Err(st.audit.fail(event, e).await.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RingList {
    pub items: Vec<RingView>,
}

/// Key rings: versions and minimum decryption versions (never key material).
#[utoipa::path(tag = "crypto", responses((status = 200, body = RingList)),
    security(("session" = ["key:manage"]), ("bearer" = ["key:manage"])))]
#[get("/crypto/keys")]
pub async fn keys(
    req: HttpRequest,
    _caller: Guarded<KeyManage>,
) -> Result<web::Json<RingList>, ApiError> {
    let st = state::of(&req);
    Ok(web::Json(RingList {
        items: st.keyring.rings(&st.db, &st.audit).await?,
    }))
}

/// Add a new key version to a classification; new encryptions use it.
#[utoipa::path(tag = "crypto", responses((status = 200, body = RingList), (status = 404, body = Problem)),
    security(("session" = ["key:manage"]), ("bearer" = ["key:manage"])))]
#[post("/crypto/keys/{classification}/rotate")]
pub async fn rotate(
    req: HttpRequest,
    caller: Guarded<KeyManage>,
    classification: web::Path<String>,
) -> Result<web::Json<RingList>, ApiError> {
    let st = state::of(&req);
    st.keyring
        .rotate(&st.audit, &caller.ctx, &classification, None)
        .await?;
    Ok(web::Json(RingList {
        items: st.keyring.rings(&st.db, &st.audit).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RingChange {
    /// Packages of older versions are refused from now on.
    pub min_decryption_version: i64,
}

/// Set a classification's minimum decryption version.
#[utoipa::path(tag = "crypto", request_body = RingChange, responses((status = 200, body = RingList), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("session" = ["key:manage"]), ("bearer" = ["key:manage"])))]
#[patch("/crypto/keys/{classification}")]
pub async fn update(
    req: HttpRequest,
    caller: Guarded<KeyManage>,
    classification: web::Path<String>,
    body: Body<RingChange>,
) -> Result<web::Json<RingList>, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    st.keyring
        .set_min_version(
            &st.db,
            &st.audit,
            &caller.ctx,
            &classification,
            b.min_decryption_version,
        )
        .await?;
    Ok(web::Json(RingList {
        items: st.keyring.rings(&st.db, &st.audit).await?,
    }))
}
