//! The audit record and its canonical form.

use serde::Serialize;

crate::closed_set! {
    /// Who did it.
    pub enum ActorType {
        User = "user",
        Agent = "agent",
        /// The appliance itself (scheduled jobs) or an operator at the CLI.
        System = "system",
        /// An unauthenticated caller (failed logins, bad tokens).
        Anonymous = "anonymous",
    }
}

crate::closed_set! {
    /// How it ended.
    pub enum Outcome {
        Success = "success",
        /// The action was attempted and did not happen (bad input, bad
        /// password).
        Failure = "failure",
        /// Refused by policy (authorization).
        Denied = "denied",
        /// The appliance failed.
        Error = "error",
    }
}

/// The actor plus where the request came from; built by the web layer (or
/// the CLI) and handed to domain functions that audit.
#[derive(Debug, Clone)]
pub struct Context {
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Context {
    pub fn system(name: &str) -> Context {
        Context {
            actor_type: ActorType::System,
            actor_id: None,
            actor_name: Some(name.to_string()),
            source_ip: None,
            user_agent: None,
            request_id: None,
        }
    }

    /// Starts a record of `action` by this context's actor.
    pub fn event(&self, action: &str, outcome: Outcome) -> Event {
        Event {
            at: 0,
            actor_type: self.actor_type,
            actor_id: self.actor_id.clone(),
            actor_name: self.actor_name.clone(),
            action: action.to_string(),
            target_type: None,
            target_id: None,
            outcome,
            reason: None,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            details: serde_json::Value::Object(Default::default()),
        }
    }
}

/// A record before the writer gives it a sequence number and a hash.
#[derive(Debug, Clone)]
pub struct Event {
    /// Set by the writer when 0.
    pub at: i64,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object. Never put a secret here.
    pub details: serde_json::Value,
}

impl Event {
    pub fn target(mut self, kind: &str, id: impl Into<String>) -> Event {
        self.target_type = Some(kind.to_string());
        self.target_id = Some(id.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }

    /// The event as failed with `e` (outcome and a reason safe to store).
    pub fn failed(mut self, e: &crate::error::Error) -> Event {
        self.outcome = crate::audit::writer::outcome_for(e);
        self.reason = Some(crate::audit::writer::public_reason(e));
        self
    }

    pub fn detail(mut self, key: &str, value: impl Serialize) -> Event {
        if let serde_json::Value::Object(map) = &mut self.details {
            map.insert(
                key.to_string(),
                serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
            );
        }
        self
    }
}

/// A committed record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub seq: i64,
    /// Milliseconds since the epoch.
    #[serde(skip)]
    pub at: i64,
    /// RFC 3339 UTC.
    #[serde(rename = "time")]
    pub time: String,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// The stored details JSON text (hashed as stored).
    #[serde(skip)]
    pub details_json: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The bytes the chain MAC covers: every field in a fixed order, each as a
/// 4-byte big-endian length and its UTF-8 bytes (`0xFFFFFFFF` for absent),
/// so no two different records share a canonical form.
#[allow(clippy::too_many_arguments)]
pub fn canonical(
    seq: i64,
    at: i64,
    actor_type: &str,
    actor_id: Option<&str>,
    actor_name: Option<&str>,
    action: &str,
    target_type: Option<&str>,
    target_id: Option<&str>,
    outcome: &str,
    reason: Option<&str>,
    source_ip: Option<&str>,
    user_agent: Option<&str>,
    request_id: Option<&str>,
    details_json: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + details_json.len());
    let mut put = |v: Option<&str>| match v {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
    };
    put(Some("agentry-audit-v1"));
    put(Some(&seq.to_string()));
    put(Some(&at.to_string()));
    put(Some(actor_type));
    put(actor_id);
    put(actor_name);
    put(Some(action));
    put(target_type);
    put(target_id);
    put(Some(outcome));
    put(reason);
    put(source_ip);
    put(user_agent);
    put(request_id);
    put(Some(details_json));
    out
}

impl Record {
    pub fn canonical(&self) -> Vec<u8> {
        canonical(
            self.seq,
            self.at,
            self.actor_type.as_str(),
            self.actor_id.as_deref(),
            self.actor_name.as_deref(),
            &self.action,
            self.target_type.as_deref(),
            self.target_id.as_deref(),
            self.outcome.as_str(),
            self.reason.as_deref(),
            self.source_ip.as_deref(),
            self.user_agent.as_deref(),
            self.request_id.as_deref(),
            &self.details_json,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_separates_fields_unambiguously() {
        let a = canonical(
            1,
            2,
            "user",
            Some("ab"),
            Some("c"),
            "x",
            None,
            None,
            "success",
            None,
            None,
            None,
            None,
            "{}",
        );
        let b = canonical(
            1,
            2,
            "user",
            Some("a"),
            Some("bc"),
            "x",
            None,
            None,
            "success",
            None,
            None,
            None,
            None,
            "{}",
        );
        let c = canonical(
            1,
            2,
            "user",
            Some(""),
            None,
            "x",
            None,
            None,
            "success",
            None,
            None,
            None,
            None,
            "{}",
        );
        let d = canonical(
            1,
            2,
            "user",
            None,
            Some(""),
            "x",
            None,
            None,
            "success",
            None,
            None,
            None,
            None,
            "{}",
        );
        assert_ne!(a, b);
        assert_ne!(c, d);
    }
}
