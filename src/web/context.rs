//! The audit context of a request: who (when known), from where, and the
//! request id that ties the record to the access log.

use actix_web::{HttpMessage, HttpRequest};

use super::headers::RequestId;
use super::state;
use crate::audit::{ActorType, Context};
use crate::identity::{Principal, PrincipalKind};

pub fn audit_context(req: &HttpRequest, actor: Option<&Principal>) -> Context {
    let (actor_type, actor_id, actor_name) = match actor {
        Some(p) => (
            match p.kind {
                PrincipalKind::User => ActorType::User,
                PrincipalKind::Agent => ActorType::Agent,
            },
            Some(p.id.clone()),
            Some(p.name.clone()),
        ),
        None => (ActorType::Anonymous, None, None),
    };
    Context {
        actor_type,
        actor_id,
        actor_name,
        source_ip: Some(state::client_ip(req).to_string()),
        user_agent: state::user_agent(req),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}
