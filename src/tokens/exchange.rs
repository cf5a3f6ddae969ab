//! Token exchange (RFC 8693) for delegation: an MCP server holding a token
//! addressed to itself exchanges it for a token to a downstream registered
//! resource, acting for the same subject.
//!
//! The new token keeps `sub`; its scope is at most the subject token's, what
//! the subject still holds, and what the downstream server supports; its
//! `act` names the exchanger (nesting earlier hops); it lives no longer
//! than the subject token. The exchanger needs `token:exchange` on
//! `mcp_server/<downstream name>`. So a chain of exchanges only narrows.

use serde_json::json;

use super::oauth::{Issuer, OAuthError, TokenResponse};
use crate::audit::{Context, Outcome};
use crate::identity::Principal;
use crate::rbac::decide::{Decider, Purpose, Question};
use crate::rbac::{self, patterns, Permission};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The form fields of an exchange.
#[derive(Debug, Default)]
pub struct ExchangeRequest<'a> {
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// The `act` of a token issued to `exchanger` for a subject token whose
/// own `act` is `previous`.
pub fn act_of(exchanger: &str, previous: Option<&serde_json::Value>) -> serde_json::Value {
    match previous {
        Some(p) => json!({"sub": exchanger, "act": p}),
        None => json!({"sub": exchanger}),
    }
}

impl Issuer<'_> {
    /// Exchanges a subject token for `exchanger` (an authenticated agent).
    pub async fn exchange(
        &self,
        ctx: &Context,
        exchanger: &Principal,
        r: ExchangeRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let bad = |m: &str| OAuthError::InvalidRequest(m.into());
        let subject_token = r
            .subject_token
            .ok_or_else(|| bad("subject_token is required"))?;
        if r.subject_token_type != Some(ACCESS_TOKEN_TYPE) {
            return Err(bad(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        if r.requested_token_type
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
        {
            return Err(bad("only access tokens are issued"));
        }
        let resource = r.resource.ok_or_else(|| {
            OAuthError::InvalidTarget("resource (the downstream server) is required".into())
        })?;
        let denied = |reason: &str| {
            ctx.event("oauth.exchange", Outcome::Denied)
                .reason(reason.to_string())
                .target("agent", &exchanger.id)
        };
        // The subject token must be valid and addressed to a server this
        // agent is.
        let Some(subject) = self.introspect(subject_token).await? else {
            self.audit.record(denied("subject_token_invalid")).await?;
            return Err(OAuthError::InvalidGrant(
                "the subject token is not active".into(),
            ));
        };
        let own = self.servers.by_resource(&subject.aud).await?;
        if own.is_none_or(|s| s.agent_id.as_deref() != Some(exchanger.id.as_str())) {
            self.audit
                .record(denied("subject_token_not_addressed_to_exchanger"))
                .await?;
            return Err(OAuthError::InvalidGrant(
                "the subject token is not addressed to an MCP server this client is".into(),
            ));
        }
        let Some(downstream) = self.servers.by_resource(resource).await? else {
            return Err(OAuthError::InvalidTarget(
                "resource must be an enabled registered MCP server".into(),
            ));
        };
        // May the exchanger delegate to this server?
        let decider = Decider {
            db: self.db,
            audit: self.audit,
            policy: self.policy,
            principals: self.principals,
        };
        let who = rbac::subject_of(exchanger);
        let q = Question {
            subject: &who,
            permission: Permission::TokenExchange.as_str(),
            resource: Some(("mcp_server", downstream.name.as_str())),
            scope: None,
        };
        let decision = decider.decide_recorded(ctx, Purpose::Guard, q).await?;
        if !decision.allowed {
            return Err(OAuthError::InvalidGrant(format!(
                "this client may not exchange tokens for {} (token:exchange on mcp_server/{})",
                downstream.name, downstream.name
            )));
        }
        // Scope: asked (default: the subject token's) ⊆ the subject token's;
        // then what the subject holds now and the server supports.
        let had = subject.scopes();
        let asked: Vec<String> = match r.scope.map(str::trim).filter(|s| !s.is_empty()) {
            None => had.clone(),
            Some(s) => s
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        };
        if let Some(wider) = asked.iter().find(|t| !patterns::any_grants(&had, t)) {
            self.audit
                .record(denied("exchange_would_widen_scope"))
                .await?;
            return Err(OAuthError::InvalidScope(format!(
                "{:?} is not in the subject token's scope; an exchange can only narrow it",
                crate::names::shown(wider)
            )));
        }
        let subject_principal = Principal {
            kind: subject.sub_type,
            id: subject.sub.clone(),
            name: subject.sub.clone(),
        };
        let held =
            rbac::token_patterns_of(self.policy, self.db, self.audit, &subject_principal).await?;
        let held = if downstream.scopes_supported.is_empty() {
            held
        } else {
            patterns::intersect(&held, &downstream.scopes_supported)
        };
        let granted: Vec<String> = asked
            .into_iter()
            .filter(|t| patterns::any_grants(&held, t))
            .collect();
        if granted.is_empty() {
            self.audit.record(denied("exchange_scope_empty")).await?;
            return Err(OAuthError::InvalidScope(
                "nothing of the subject token's scope may go to this server".into(),
            ));
        }
        let mut claims = self.claims(
            &subject.sub,
            subject.sub_type,
            &exchanger.id,
            resource,
            &granted.join(" "),
        );
        // No longer than the token it came from; acting for its subject.
        claims.exp = claims.exp.min(subject.exp);
        claims.act = Some(act_of(&exchanger.id, subject.act.as_ref()));
        let token = self.mint_claims(&claims)?;
        let ev = ctx
            .event("oauth.exchange", Outcome::Success)
            .target("agent", &exchanger.id)
            .detail("subject", &claims.sub)
            .detail("subject_jti", &subject.jti)
            .detail("jti", &claims.jti)
            .detail("aud", &claims.aud)
            .detail("scope", &claims.scope);
        self.audit.record(ev).await?;
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer",
            expires_in: claims.exp - claims.iat,
            scope: claims.scope,
            refresh_token: None,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_chains_nest_each_hop() {
        let one = act_of("server-a", None);
        assert_eq!(one, json!({"sub": "server-a"}));
        let two = act_of("server-b", Some(&one));
        assert_eq!(two, json!({"sub": "server-b", "act": {"sub": "server-a"}}));
    }
}
