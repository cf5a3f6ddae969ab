//! `/api/v1/authz/*` and `/api/v1/principals/{type}/{id}/permissions`:
//! "may X do Y on Z?", answered from the compiled policy, explained, and
//! audited.

use actix_web::{get, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, FieldErrors};
use crate::identity::PrincipalKind;
use crate::rbac::decide::Question;
use crate::rbac::engine::{Decision, Subject};
use crate::rbac::Permission;
use crate::rbac::{self, patterns};
use crate::web::auth::Caller;
use crate::web::needs::needs;
use crate::web::problem::{ApiError, Body, Problem};
use crate::web::state::{self, WebState};

/// Needed to ask about another principal.
const CHECK_OTHERS: &str = Permission::AuthzCheck.as_str();
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRef {
    /// `user` or `agent`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::identity::PrincipalKind)]
    pub kind: String,
    #[schema(min_length = 1, max_length = 128)]
    pub id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 64)]
    pub kind: String,
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"permission": "workflow:execute", "resource": {"type": "workflow", "id": "nightly-build"}}))]
pub struct CheckRequest {
    /// Whom to ask about; the caller when absent (another principal needs
    /// `authz:check`).
    pub subject: Option<SubjectRef>,
    /// `resource:action`, e.g. `workflow:execute`.
    #[schema(value_type = crate::formats::Permission)]
    pub permission: String,
    /// The resource acted on, for scoped assignments.
    pub resource: Option<ResourceRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    pub allowed: bool,
    pub reason: String,
    /// The role path that granted it: the assigned role first.
    pub granted_by: Vec<String>,
}

impl From<Decision> for CheckResponse {
    fn from(d: Decision) -> Self {
        CheckResponse {
            allowed: d.allowed,
            reason: d.reason,
            granted_by: d.granted_by,
        }
    }
}

/// Validates one check; errors are keyed under `prefix`.
fn validate(c: &CheckRequest, prefix: &str, errors: &mut FieldErrors) {
    if !patterns::valid_permission(&c.permission) {
        errors.insert(
            format!("{prefix}permission"),
            "must be resource:action in lower_snake, e.g. workflow:execute".into(),
        );
    }
    if let Some(s) = &c.subject {
        if PrincipalKind::parse(&s.kind).is_none() {
            errors.insert(
                format!("{prefix}subject.type"),
                "must be user or agent".into(),
            );
        }
        if s.id.is_empty() || s.id.len() > 128 {
            errors.insert(
                format!("{prefix}subject.id"),
                "must be 1-128 characters".into(),
            );
        }
    }
    if let Some(r) = &c.resource {
        if r.kind.is_empty() || r.kind.len() > 64 || r.id.is_empty() || r.id.len() > 256 {
            errors.insert(
                format!("{prefix}resource"),
                "type must be 1-64 and id 1-256 characters".into(),
            );
        }
    }
}

/// Decides the checks (already validated) through the one decision path
/// and audits them per config.
async fn decide(
    st: &WebState,
    caller: &Caller,
    checks: &[CheckRequest],
) -> Result<Vec<CheckResponse>, ApiError> {
    let me = rbac::subject_of(&caller.principal);
    let subjects: Vec<Subject> = checks
        .iter()
        .map(|c| match &c.subject {
            None => me.clone(),
            Some(s) => Subject {
                kind: PrincipalKind::parse(&s.kind).unwrap_or(PrincipalKind::User),
                id: s.id.clone(),
            },
        })
        .collect();
    if subjects.iter().any(|s| *s != me) {
        caller.require(st, CHECK_OTHERS).await?;
    }
    let questions: Vec<Question> = checks
        .iter()
        .zip(&subjects)
        .map(|(c, subject)| Question {
            subject,
            permission: &c.permission,
            resource: c
                .resource
                .as_ref()
                .map(|r| (r.kind.as_str(), r.id.as_str())),
            scope: None,
        })
        .collect();
    let purpose = st.query_purpose();
    let answers = st
        .decider()
        .decide_all(&caller.ctx, purpose, &questions)
        .await?;
    let mut out = Vec::with_capacity(answers.len());
    let mut records = Vec::new();
    for a in answers {
        records.extend(a.record);
        out.push(a.decision.into());
    }
    st.audit.record_many(records).await?;
    Ok(out)
}

/// May a principal (the caller by default) do something, on a resource?
#[utoipa::path(
    operation_id = "authz.check",
    tag = "authz",
    request_body = CheckRequest,
    responses((status = 200, body = CheckResponse), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = []))
)]
#[post("/authz/check")]
pub async fn check(
    req: HttpRequest,
    caller: Caller,
    body: Body<CheckRequest>,
) -> Result<web::Json<CheckResponse>, ApiError> {
    let st = state::of(&req);
    let c = body?.into_inner();
    let mut errors = FieldErrors::new();
    validate(&c, "", &mut errors);
    if !errors.is_empty() {
        return Err(Error::fields(errors).into());
    }
    let mut results = decide(&st, &caller, std::slice::from_ref(&c)).await?;
    Ok(web::Json(results.remove(0)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1-1000 checks.
    #[schema(min_items = 1, max_items = 1000)]
    pub checks: Vec<CheckRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per check, in order.
    pub results: Vec<CheckResponse>,
}

/// Up to 1000 checks in one call; results in the same order.
#[utoipa::path(
    operation_id = "authz.check_batch",
    tag = "authz",
    request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = []))
)]
#[post("/authz/check-batch")]
pub async fn check_batch(
    req: HttpRequest,
    caller: Caller,
    body: Body<BatchRequest>,
) -> Result<web::Json<BatchResponse>, ApiError> {
    let st = state::of(&req);
    let b = body?.into_inner();
    if b.checks.is_empty() || b.checks.len() > MAX_BATCH {
        return Err(Error::field("checks", format!("must hold 1 to {MAX_BATCH} checks")).into());
    }
    let mut errors = FieldErrors::new();
    for (i, c) in b.checks.iter().enumerate() {
        validate(c, &format!("checks[{i}]."), &mut errors);
    }
    if !errors.is_empty() {
        return Err(Error::fields(errors).into());
    }
    let results = decide(&st, &caller, &b.checks).await?;
    Ok(web::Json(BatchResponse { results }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldPermission {
    /// A pattern: `resource:action`, `resource:*` or `*`.
    pub permission: String,
    /// The role path through which it is held.
    pub granted_by: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EffectivePermissions {
    pub subject: SubjectRef,
    /// Held without a resource scope.
    pub permissions: Vec<HeldPermission>,
}

/// Every permission a principal holds (unscoped), and through which roles.
#[utoipa::path(
    operation_id = "authz.permissions",
    tag = "authz",
    responses((status = 200, body = EffectivePermissions), (status = 403, body = Problem), (status = 404, body = Problem))
)]
#[get("/principals/{type}/{id}/permissions")]
pub async fn permissions(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<EffectivePermissions>, ApiError> {
    let st = state::of(&req);
    let (kind, id) = path.into_inner();
    let kind = PrincipalKind::parse(&kind)
        .ok_or_else(|| ApiError::not_found("principal type must be user or agent"))?;
    let me = rbac::subject_of(&caller.principal);
    if me.kind != kind || me.id != id {
        caller.require(&st, CHECK_OTHERS).await?;
    }
    if st
        .principals
        .get(&st.db, &st.audit, kind, &id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!("{kind} {id} not found")));
    }
    let policy = st.policy.get(&st.db, &st.audit).await?;
    let subject = Subject {
        kind,
        id: id.clone(),
    };
    let permissions = policy
        .effective_permissions(&subject)
        .into_iter()
        .map(|(permission, granted_by)| HeldPermission {
            permission,
            granted_by,
        })
        .collect();
    Ok(web::Json(EffectivePermissions {
        subject: SubjectRef {
            kind: kind.as_str().into(),
            id,
        },
        permissions,
    }))
}

/// Registers this module's routes (under `/api/v1`), literal paths before parameterised ones.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(check)
        .service(check_batch)
        .service(needs(Permission::AuthzCheck, permissions));
}
