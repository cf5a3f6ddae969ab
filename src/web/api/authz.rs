//! `/api/v1/authz/*` and `/api/v1/principals/{type}/{id}/permissions`:
//! "may X do Y on Z?", answered from the compiled policy, explained, and
//! audited.

use actix_web::{get, post, web, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::approvals::cooperative::{Check, Gate};
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
    /// SHA-256 (lowercase hex) of the action's arguments in RFC 8785
    /// canonical JSON: when an approval rule holds the permission, the
    /// approval is bound to it (SPEC §18).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    #[serde(default)]
    pub arguments_digest: Option<String>,
    /// The action's arguments, shown to the approvers (stored encrypted);
    /// their digest is computed when `arguments_digest` is absent, and
    /// must equal it when both are sent.
    #[serde(default)]
    pub arguments: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    pub allowed: bool,
    pub reason: String,
    /// The role path that granted it: the assigned role first.
    pub granted_by: Vec<String>,
    /// Present (true) when the policy allows it but an approval rule holds
    /// it: a person must approve first (`allowed` is false until then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_required: Option<bool>,
    /// The approval request this check waits on (its state:
    /// `GET /api/v1/approvals/{id}`), or the approval it used up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

impl From<Decision> for CheckResponse {
    fn from(d: Decision) -> Self {
        CheckResponse {
            allowed: d.allowed,
            reason: d.reason,
            granted_by: d.granted_by,
            approval_required: None,
            approval_id: None,
        }
    }
}

impl CheckResponse {
    /// The answer under an approval rule's gate.
    fn gated(mut self, gate: &Gate) -> CheckResponse {
        match gate {
            Gate::Approved { approval_id } => {
                self.reason = format!(
                    "{}; approved (approval {approval_id}, now used)",
                    self.reason
                );
                self.approval_id = Some(approval_id.clone());
            }
            Gate::Required {
                approval_id,
                expires_at,
            } => {
                self.allowed = false;
                self.reason = format!(
                    "approval required: waiting for a person to approve request {approval_id} \
                     (until {})",
                    crate::timefmt::rfc3339(*expires_at)
                );
                self.approval_required = Some(true);
                self.approval_id = Some(approval_id.clone());
            }
            Gate::TooMany => {
                self.allowed = false;
                self.reason = format!(
                    "approval required, and {} of this principal's requests are already \
                     waiting: no new one is made until they are decided or expire",
                    crate::approvals::requests::MAX_PENDING
                );
                self.approval_required = Some(true);
            }
            Gate::DigestMissing { rule } => {
                self.allowed = false;
                self.reason = format!(
                    "approval required by the rule {rule}: send the action's arguments_digest \
                     (or arguments) to ask for it"
                );
                self.approval_required = Some(true);
            }
        }
        self
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
    if let Some(d) = &c.arguments_digest {
        let hex = d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            errors.insert(
                format!("{prefix}arguments_digest"),
                "64 lowercase hex digits: SHA-256 of the arguments in RFC 8785 canonical JSON"
                    .into(),
            );
        } else if c
            .arguments
            .as_ref()
            .is_some_and(|a| crate::mcp::message::arguments_digest(a) != *d)
        {
            errors.insert(
                format!("{prefix}arguments_digest"),
                "is not the digest of the arguments sent".into(),
            );
        }
    }
}

/// The digest a check names its arguments by, if any.
fn digest_of(c: &CheckRequest) -> Option<String> {
    c.arguments_digest.clone().or_else(|| {
        c.arguments
            .as_ref()
            .map(crate::mcp::message::arguments_digest)
    })
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
    for ((a, c), subject) in answers.into_iter().zip(checks).zip(&subjects) {
        let mut answer: CheckResponse = a.decision.into();
        let mut record = a.record;
        if answer.allowed {
            if let Some(gate) = gate(st, caller, c, subject).await? {
                answer = answer.gated(&gate);
                record = record.map(|r| {
                    r.detail(
                        "approval_required",
                        answer.approval_required.unwrap_or(false),
                    )
                    .detail("approval_id", &answer.approval_id)
                });
            }
        }
        records.extend(record);
        out.push(answer);
    }
    st.audit.record_many(records).await?;
    Ok(out)
}

/// The gate an approval rule puts on an allowed check (SPEC §18); the
/// request is the subject's.
async fn gate(
    st: &WebState,
    caller: &Caller,
    c: &CheckRequest,
    subject: &Subject,
) -> Result<Option<Gate>, ApiError> {
    let approvals = st.approvals();
    let principal = if *subject == rbac::subject_of(&caller.principal) {
        caller.principal.clone()
    } else {
        crate::identity::Principal {
            kind: subject.kind,
            id: subject.id.clone(),
            name: approvals
                .name_of(subject.kind.as_str(), &subject.id)
                .await?,
        }
    };
    let digest = digest_of(c);
    let asked = Check {
        principal: &principal,
        client_id: None,
        permission: &c.permission,
        resource: c
            .resource
            .as_ref()
            .map(|r| (r.kind.as_str(), r.id.as_str())),
        arguments: c.arguments.as_ref(),
        digest: digest.as_deref(),
    };
    Ok(approvals.gate(&caller.ctx, &asked).await?)
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
