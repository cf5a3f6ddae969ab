//! `/api/v1/agents/{id}/jwks`: the public keys an agent signs its client
//! assertions with (`private_key_jwt`). Set by `agent:manage`; read by it
//! or the agent itself.

use actix_web::{get, put, web, HttpRequest};

use crate::rbac::Permission;
use crate::tokens::client_keys::{self, JwkSet};
use crate::web::auth::{AgentManage, Caller, Guarded, Required};
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state;

/// The agent's registered public keys (an empty set when none).
#[utoipa::path(operation_id = "agents.get_jwks", tag = "identity",
    responses((status = 200, body = JwkSet), (status = 404, body = Problem)))]
#[get("/agents/{id}/jwks")]
pub async fn get_jwks(
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<JwkSet>, ApiError> {
    let st = state::of(&req);
    if caller.principal.id != *id {
        caller.require(&st, AgentManage::NAME).await?;
    }
    crate::identity::agents::get(&st.db, &id).await?;
    Ok(web::Json(client_keys::get(&st.db, &id).await?))
}

/// Replace the agent's public keys (Ed25519, P-256 or RSA; public parts
/// only). Assertions signed with a key no longer in the set are refused.
#[utoipa::path(operation_id = "agents.set_jwks", tag = "identity", request_body = JwkSet,
    responses((status = 200, body = JwkSet), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[put("/agents/{id}/jwks")]
pub async fn set_jwks(
    req: HttpRequest,
    caller: Guarded<AgentManage>,
    id: web::Path<String>,
    body: Body<JwkSet>,
) -> Result<web::Json<JwkSet>, ApiError> {
    let st = state::of(&req);
    let set = client_keys::set(&st.audit, &caller.ctx, &id, body?.into_inner()).await?;
    Ok(web::Json(set))
}

/// Registers this module's routes (under `/api/v1`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(needs(Permission::AgentManage, get_jwks))
        .service(needs(Permission::AgentManage, set_jwks));
}
