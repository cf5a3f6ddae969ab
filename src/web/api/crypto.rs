//! `/api/v1/crypto/{encrypt,decrypt,rewrap,datakey}` and their batch forms:
//! envelope encryption for agents. Each operation is permission-checked
//! and audited (classification, key id and version, outcome; never data).

use actix_web::{post, web, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{Event, Outcome};
use crate::encryption::envelope::{Package, ALGORITHM};
use crate::error::Error;
use crate::rbac::Permission;
use crate::web::auth::Caller;
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state::{self, WebState};

const MAX_CONTEXT: usize = 1024;
pub const MAX_BATCH: usize = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"card": "4111 1111 1111 1111"}, "classification": "confidential", "context": "order-42"}))]
pub struct EncryptRequest {
    /// Any JSON value.
    #[schema(value_type = Value)]
    pub data: Box<serde_json::value::RawValue>,
    /// `public`, `internal`, `confidential`, `restricted`, or another ring.
    #[schema(value_type = crate::formats::Classification)]
    pub classification: String,
    /// Bound as associated data: decryption must present the same context.
    #[schema(max_length = 1024)]
    pub context: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    pub package: Package,
    #[schema(max_length = 1024)]
    pub context: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Decrypted {
    /// The JSON value that was encrypted, as it was.
    #[schema(value_type = Value)]
    pub data: Box<serde_json::value::RawValue>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"classification": "internal", "context": "export-2026-11"}))]
pub struct DataKeyRequest {
    #[schema(value_type = crate::formats::Classification)]
    pub classification: String,
    #[schema(max_length = 1024)]
    pub context: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DataKey {
    /// base64 of a fresh 256-bit AES key, for local AES-256-GCM. Keep it in
    /// memory only; store `package` instead.
    pub key: String,
    pub algorithm: &'static str,
    /// The same key encrypted under the classification; decrypt returns
    /// `{"data": "<key, base64>"}`.
    pub package: Package,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1000 items, each shaped like the single request. Each is
    /// judged on its own: one that is not shaped so (any JSON value is
    /// taken) is answered in its place with an `invalid_item` error, and the
    /// others still run.
    #[schema(value_type = Vec<serde_json::Value>)]
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<Box<serde_json::value::RawValue>>,
}

/// One result per item, in order: the single endpoint's response, or
/// `{"error": <problem>}`.
#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<serde_json::Value>,
}

/// What one operation did: its value and audit record, or its error and
/// the record of the failure (none when the permission check already
/// recorded the denial).
pub(crate) struct Step<T> {
    pub out: Result<T, ApiError>,
    pub event: Option<Event>,
}

fn done<T>(value: T, event: Event) -> Step<T> {
    Step {
        out: Ok(value),
        event: Some(event),
    }
}

fn failed<T>(event: Event, e: Error) -> Step<T> {
    Step {
        event: Some(event.failed(&e)),
        out: Err(e.into()),
    }
}

/// Refused by a permission check, which recorded the denial itself.
fn denied<T>(e: ApiError) -> Step<T> {
    Step {
        out: Err(e),
        event: None,
    }
}

fn check_context(c: &Option<String>) -> Result<(), Error> {
    match c {
        Some(c) if c.chars().count() > MAX_CONTEXT => Err(Error::field(
            "context",
            format!("must be at most {MAX_CONTEXT} characters"),
        )),
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
    match caller.require(st, Permission::CryptoDecrypt.as_str()).await {
        Ok(()) => Ok(()),
        Err(_) => caller.require(st, &specific).await,
    }
}

pub(crate) async fn encrypt_one(
    st: &WebState,
    caller: &Caller,
    b: EncryptRequest,
) -> Step<Package> {
    let event = caller
        .ctx
        .event("crypto.encrypt", Outcome::Success)
        .target("key_ring", &b.classification);
    if let Err(e) = check_context(&b.context) {
        return failed(event, e);
    }
    let ring = &st.keyring;
    match ring
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
            let ev = event
                .detail("key_id", &p.key_id)
                .detail("key_version", p.key_version);
            done(p, ev)
        }
        Err(e) => failed(event, e),
    }
}

pub(crate) async fn decrypt_one(
    st: &WebState,
    caller: &Caller,
    b: DecryptRequest,
) -> Step<Decrypted> {
    if let Err(e) = require_decrypt(st, caller, &b.package.classification).await {
        return denied(e);
    }
    let event = caller
        .ctx
        .event("crypto.decrypt", Outcome::Success)
        .target("key_ring", &b.package.classification)
        .detail("key_id", &b.package.key_id)
        .detail("key_version", b.package.key_version);
    if let Err(e) = check_context(&b.context) {
        return failed(event, e);
    }
    match st
        .keyring
        .decrypt(&st.db, &st.audit, &b.package, b.context.as_deref())
        .await
    {
        Ok(data) => done(Decrypted { data }, event),
        Err(e) => failed(event, e),
    }
}

async fn rewrap_one(st: &WebState, caller: &Caller, b: DecryptRequest) -> Step<Package> {
    if let Err(e) = require_decrypt(st, caller, &b.package.classification).await {
        return denied(e);
    }
    let event = caller
        .ctx
        .event("crypto.rewrap", Outcome::Success)
        .target("key_ring", &b.package.classification)
        .detail("from_key_id", &b.package.key_id)
        .detail("from_key_version", b.package.key_version);
    if let Err(e) = check_context(&b.context) {
        return failed(event, e);
    }
    let (db, audit, ctx) = (&st.db, &st.audit, b.context.as_deref());
    let result = async {
        let data = st.keyring.decrypt(db, audit, &b.package, ctx).await?;
        let class = &b.package.classification;
        st.keyring.encrypt(db, audit, class, &data, ctx).await
    }
    .await;
    match result {
        Ok(p) => {
            let ev = event
                .detail("key_id", &p.key_id)
                .detail("key_version", p.key_version);
            done(p, ev)
        }
        Err(e) => failed(event, e),
    }
}

/// Records the step's audit event and returns its outcome.
pub(crate) async fn finish<T>(st: &WebState, step: Step<T>) -> Result<T, ApiError> {
    if let Some(ev) = step.event {
        st.audit.record(ev).await?;
    }
    step.out
}

/// Encrypt a JSON value under the newest key of a classification.
#[utoipa::path(operation_id = "crypto.encrypt", tag = "crypto", request_body = EncryptRequest,
    responses((status = 200, body = Package), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/encrypt")]
pub async fn encrypt(
    req: HttpRequest,
    caller: Caller,
    body: Body<EncryptRequest>,
) -> Result<web::Json<Package>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::CryptoEncrypt.as_str())
        .await?;
    let step = encrypt_one(&st, &caller, body?.into_inner()).await;
    finish(&st, step).await.map(web::Json)
}

/// Without any decrypt grant there is nothing to say about the body: the
/// caller gets 403 before its input is looked at.
async fn require_some_decrypt(
    st: &WebState,
    caller: &Caller,
    classification: Option<&str>,
) -> Result<(), ApiError> {
    if caller
        .require(st, Permission::CryptoDecrypt.as_str())
        .await
        .is_ok()
    {
        return Ok(());
    }
    require_decrypt(st, caller, classification.unwrap_or_default())
        .await
        .map_err(|_| ApiError::forbidden("this requires the crypto:decrypt permission"))
}

/// Decrypt a package (with the context it was encrypted with).
#[utoipa::path(operation_id = "crypto.decrypt", tag = "crypto", request_body = DecryptRequest,
    responses((status = 200, body = Decrypted), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/decrypt")]
pub async fn decrypt(
    req: HttpRequest,
    caller: Caller,
    body: Body<DecryptRequest>,
) -> Result<web::Json<Decrypted>, ApiError> {
    let st = state::of(&req);
    let class = body
        .as_ref()
        .ok()
        .map(|b| b.package.classification.as_str());
    require_some_decrypt(&st, &caller, class).await?;
    let step = decrypt_one(&st, &caller, body?.into_inner()).await;
    finish(&st, step).await.map(web::Json)
}

/// Re-encrypt a package under the newest key version, without returning
/// the data.
#[utoipa::path(operation_id = "crypto.rewrap", tag = "crypto", request_body = DecryptRequest,
    responses((status = 200, body = Package), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/rewrap")]
pub async fn rewrap(
    req: HttpRequest,
    caller: Caller,
    body: Body<DecryptRequest>,
) -> Result<web::Json<Package>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::CryptoEncrypt.as_str())
        .await?;
    let step = rewrap_one(&st, &caller, body?.into_inner()).await;
    finish(&st, step).await.map(web::Json)
}

/// A fresh 256-bit data key for encrypting large payloads locally: the key
/// in plaintext, and encrypted under the classification for storage.
#[utoipa::path(operation_id = "crypto.datakey", tag = "crypto", request_body = DataKeyRequest,
    responses((status = 200, body = DataKey), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/datakey")]
pub async fn datakey(
    req: HttpRequest,
    caller: Caller,
    body: Body<DataKeyRequest>,
) -> Result<web::Json<DataKey>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::CryptoEncrypt.as_str())
        .await?;
    let b = body?.into_inner();
    let event = caller
        .ctx
        .event("crypto.datakey", Outcome::Success)
        .target("key_ring", &b.classification);
    let step = match check_context(&b.context) {
        Err(e) => failed(event, e),
        Ok(()) => match st
            .keyring
            .datakey(&st.db, &st.audit, &b.classification, b.context.as_deref())
            .await
        {
            Ok(grant) => {
                let ev = event
                    .detail("key_id", &grant.package.key_id)
                    .detail("key_version", grant.package.key_version);
                let out = DataKey {
                    key: STANDARD.encode(grant.key.as_ref()),
                    algorithm: ALGORITHM,
                    package: grant.package,
                };
                done(out, ev)
            }
            Err(e) => failed(event, e),
        },
    };
    finish(&st, step).await.map(web::Json)
}

/// Parses every item, runs `op` on the valid ones, records all audit
/// events together and returns one result per item.
async fn batch<T, R, F, Fut>(
    st: &WebState,
    items: Vec<Box<serde_json::value::RawValue>>,
    op: F,
) -> Result<BatchResponse, ApiError>
where
    T: DeserializeOwned,
    R: Serialize,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Step<R>>,
{
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Error::field("items", format!("must hold 1 to {MAX_BATCH} items")).into());
    }
    let mut events = Vec::with_capacity(items.len());
    let mut results = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let step = match serde_json::from_str::<T>(item.get()) {
            Ok(b) => op(b).await,
            Err(e) => denied(ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_item",
                format!("items[{i}]: {e}"),
            )),
        };
        events.extend(step.event);
        results.push(match step.out {
            Ok(v) => serde_json::to_value(v).map_err(Error::internal)?,
            Err(e) => serde_json::json!({ "error": e.problem() }),
        });
    }
    st.audit.record_many(events).await?;
    Ok(BatchResponse { results })
}

/// Encrypt up to 1000 values; each item is `{"data", "classification",
/// "context"?}` and fails on its own.
#[utoipa::path(operation_id = "crypto.encrypt_batch", tag = "crypto", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/encrypt/batch")]
pub async fn encrypt_batch(
    req: HttpRequest,
    caller: Caller,
    body: Body<BatchRequest>,
) -> Result<web::Json<BatchResponse>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::CryptoEncrypt.as_str())
        .await?;
    let items = body?.into_inner().items;
    batch(&st, items, |b| encrypt_one(&st, &caller, b))
        .await
        .map(web::Json)
}

/// Just enough of a decrypt item to find its classification.
#[derive(Deserialize)]
struct ClassOnly {
    package: ClassOf,
}

#[derive(Deserialize)]
struct ClassOf {
    classification: String,
}

/// Decrypt up to 1000 packages; each item is `{"package", "context"?}` and
/// fails on its own (including a missing per-classification permission).
#[utoipa::path(operation_id = "crypto.decrypt_batch", tag = "crypto", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/decrypt/batch")]
pub async fn decrypt_batch(
    req: HttpRequest,
    caller: Caller,
    body: Body<BatchRequest>,
) -> Result<web::Json<BatchResponse>, ApiError> {
    let st = state::of(&req);
    let first = body.as_ref().ok().and_then(|b| {
        b.items
            .first()
            .and_then(|i| serde_json::from_str::<ClassOnly>(i.get()).ok())
            .map(|i| i.package.classification)
    });
    require_some_decrypt(&st, &caller, first.as_deref()).await?;
    let items = body?.into_inner().items;
    batch(&st, items, |b| decrypt_one(&st, &caller, b))
        .await
        .map(web::Json)
}

/// Re-encrypt up to 1000 packages under their classification's newest key
/// version, without returning data; each item is `{"package", "context"?}`
/// and fails on its own.
#[utoipa::path(operation_id = "crypto.rewrap_batch", tag = "crypto", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/rewrap/batch")]
pub async fn rewrap_batch(
    req: HttpRequest,
    caller: Caller,
    body: Body<BatchRequest>,
) -> Result<web::Json<BatchResponse>, ApiError> {
    let st = state::of(&req);
    caller
        .require(&st, Permission::CryptoEncrypt.as_str())
        .await?;
    let items = body?.into_inner().items;
    batch(&st, items, |b| rewrap_one(&st, &caller, b))
        .await
        .map(web::Json)
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::CryptoEncrypt, encrypt))
        .service(needs(Permission::CryptoDecrypt, decrypt))
        .service(needs(Permission::CryptoEncrypt, rewrap))
        .service(needs(Permission::CryptoEncrypt, datakey))
        .service(needs(Permission::CryptoEncrypt, encrypt_batch))
        .service(needs(Permission::CryptoDecrypt, decrypt_batch))
        .service(needs(Permission::CryptoEncrypt, rewrap_batch));
}
