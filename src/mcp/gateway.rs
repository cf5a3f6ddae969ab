//! The gateway's decisions on one message, with their side effects in the
//! domain: the route to a proxied server (its row, tool settings and
//! opened upstream headers), admission (header check, verdict, limits,
//! the decision record committed before anything is forwarded), list
//! filtering and the result record. The HTTP plumbing (authentication,
//! forwarding, streaming) is `web::gateway`'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::audit::{Audit, Context, Event};
use crate::db::mcp_servers::McpServerRow;
use crate::db::Db;
use crate::encryption::envelope::Package;
use crate::encryption::keyring::KeyRing;
use crate::error::{Error, Result};
use crate::identity::principals::PrincipalState;
use crate::net::Outbound;
use crate::rbac::engine::{Policy, Subject};
use crate::rbac::view::PolicyView;

use super::limits::{BucketKey, CallLimits, Limited};
use super::message::{codes, Kind, Message};
use super::policy::{self, Headers, Need, Tools};
use super::record::{self, Call, CallOutcome};
use super::servers::{resource_uri, McpServers};
use super::settings;
use super::verdict::{verdict, Caller, Verdict};

/// A proxied server as the gateway uses it.
pub struct Route {
    pub row: McpServerRow,
    pub tools: Tools,
    /// The resource URI: the `aud` tokens for it carry.
    pub uri: String,
    pub upstream_url: String,
    /// The static upstream credential headers, opened (marked sensitive).
    pub upstream_headers: Arc<HeaderMap>,
}

impl Route {
    /// The permissions tools are mapped to (server access may come from
    /// any of them).
    fn mapped(&self) -> Vec<String> {
        self.tools
            .values()
            .filter_map(|t| t.permission.clone())
            .collect()
    }
}

/// Who sends a message: the authenticated principal with its current
/// state, and the token's scope (`None` for an API key).
pub struct Who {
    pub subject: Subject,
    pub state: Arc<PrincipalState>,
    pub scope: Option<Vec<String>>,
}

impl Who {
    fn caller(&self) -> Caller<'_> {
        Caller {
            subject: &self.subject,
            state: Some(&self.state),
            scope: self.scope.as_deref(),
        }
    }

    fn bucket(&self, server: &str, tool: Option<&str>) -> BucketKey {
        BucketKey {
            principal: format!("{}:{}", self.subject.kind.as_str(), self.subject.id),
            server: server.to_string(),
            tool: tool.map(str::to_string),
        }
    }
}

/// Why a message is not forwarded (each is audited).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// `Mcp-Method` / `Mcp-Name` disagree with the body (HTTP 400).
    HeaderMismatch(String),
    /// The principal may not (a JSON-RPC error naming the reason).
    Denied(String),
    /// A calls-per-minute limit is reached.
    Limited(Limited),
}

impl Refusal {
    pub fn code(&self) -> i64 {
        match self {
            Refusal::HeaderMismatch(_) => codes::HEADER_MISMATCH,
            Refusal::Denied(_) => codes::FORBIDDEN,
            Refusal::Limited(_) => codes::RATE_LIMITED,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::HeaderMismatch(m) => m.clone(),
            Refusal::Denied(reason) => format!("forbidden: {reason}"),
            Refusal::Limited(l) => format!(
                "rate limited ({}); retry in {} s",
                l.limit, l.retry_after_seconds
            ),
        }
    }

    /// The JSON-RPC error's `data`.
    pub fn data(&self) -> Option<Value> {
        match self {
            Refusal::Limited(l) => Some(serde_json::json!({
                "retry_after_seconds": l.retry_after_seconds,
                "limit": l.limit,
            })),
            _ => None,
        }
    }
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Forward it; `decision_seq` is its decision record's, when the
    /// message is a call whose result is recorded.
    Forward {
        decision_seq: Option<i64>,
    },
    /// The token's scope lacks what the principal holds: HTTP 403
    /// `insufficient_scope` asking for `scope`.
    StepUp {
        scope: Vec<String>,
    },
    Refused(Refusal),
}

/// What a verdict that does not allow answers; `None` when it allows.
fn refusal_of(v: &Verdict) -> Option<Admission> {
    match v {
        Verdict::Allowed { .. } => None,
        Verdict::StepUp { scope, .. } => Some(Admission::StepUp {
            scope: scope.clone(),
        }),
        Verdict::Denied { reason } => Some(Admission::Refused(Refusal::Denied(reason.clone()))),
    }
}

/// Methods whose decision and result are recorded even when allowed.
pub fn is_call(method: Option<&str>) -> bool {
    matches!(
        method,
        Some("tools/call" | "resources/read" | "prompts/get")
    )
}

/// Routes by name (`None`: no such proxied server), and the audit
/// generation they were read at.
type RouteCache = (u64, HashMap<String, Option<Arc<Route>>>);

/// Exchanged upstream tokens kept at most.
const MAX_EXCHANGED: usize = 10_000;

/// Routes (and unknown names) kept between changes.
const MAX_CACHED_ROUTES: usize = 10_000;

/// Where recorded arguments are bound (they open for this purpose only).
const ARGUMENTS_CONTEXT: &str = "mcp:arguments";

/// The gateway's services. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    audit: Audit,
    keyring: KeyRing,
    servers: McpServers,
    policy: PolicyView,
    issuer: String,
    limits: CallLimits,
    stats: super::stats::CallStats,
    sessions: super::sessions::SessionOwners,
    /// Routes by name (or none), as of an audit generation.
    routes: Mutex<RouteCache>,
    /// Exchanged upstream tokens by (caller's `jti`, upstream resource),
    /// with when they stop being used (unix seconds).
    exchanged: Mutex<HashMap<(String, String), (String, i64)>>,
    /// Opened upstream headers by server id, with the row's `updated_at`.
    headers: Mutex<HashMap<String, (i64, Arc<HeaderMap>)>>,
    outbound: Outbound,
    /// Where the span of each proxied message goes.
    spans: Arc<dyn super::trace::SpanSink>,
}

impl Gateway {
    // The gateway's collaborators, each one the App's single instance.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        audit: Audit,
        keyring: KeyRing,
        servers: McpServers,
        policy: PolicyView,
        issuer: String,
        outbound: Outbound,
        spans: Arc<dyn super::trace::SpanSink>,
    ) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                db,
                audit,
                keyring,
                servers,
                policy,
                issuer,
                limits: CallLimits::default(),
                stats: super::stats::CallStats::default(),
                sessions: super::sessions::SessionOwners::default(),
                routes: Mutex::new((u64::MAX, HashMap::new())),
                exchanged: Mutex::default(),
                headers: Mutex::default(),
                outbound,
                spans,
            }),
        }
    }

    /// The client that reaches upstreams (under the outbound rules, no
    /// redirects followed: a redirect is the upstream's answer).
    pub fn outbound(&self) -> &Outbound {
        &self.inner.outbound
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// Who each upstream session belongs to.
    pub fn sessions(&self) -> &super::sessions::SessionOwners {
        &self.inner.sessions
    }

    /// The figures `/metrics` shows.
    pub fn stats(&self) -> &super::stats::CallStats {
        &self.inner.stats
    }

    /// Records a refused message's decision `ev` (committed before the
    /// answer, as for an allowed call), counts it when it is a tool call,
    /// and answers `admission`.
    async fn refuse(
        &self,
        ev: Event,
        route: &Route,
        msg: &Message,
        admission: Admission,
    ) -> Result<Admission> {
        self.inner.audit.record(ev).await?;
        if msg.method() == Some("tools/call") {
            let tool = msg.name().unwrap_or_default();
            self.inner.stats.refused(&route.row.name, tool);
        }
        Ok(admission)
    }

    /// The enabled proxied server called `name`. Routes are kept until
    /// the next audited change (any change to a server is one), so a
    /// message costs no database read for them.
    pub async fn route(&self, name: &str) -> Result<Option<Arc<Route>>> {
        let generation = self.inner.audit.generation();
        {
            let cached = self.inner.routes.lock().expect("routes");
            if cached.0 == generation {
                if let Some(r) = cached.1.get(name) {
                    return Ok(r.clone());
                }
            }
        }
        let route = match self.inner.servers.proxied(name).await? {
            Some(row) if row.name == name => Some(Arc::new(self.route_of(row).await?)),
            _ => None,
        };
        let mut cached = self.inner.routes.lock().expect("routes");
        if cached.0 != generation {
            *cached = (generation, HashMap::new());
        }
        // Unknown names are remembered too (a client retrying a wrong name
        // costs nothing), within a bound.
        if cached.1.len() < MAX_CACHED_ROUTES {
            cached.1.insert(name.to_string(), route.clone());
        }
        Ok(route)
    }

    /// The enabled server (proxied or not) whose resource URI is `uri`:
    /// what a proxy in front of it asks about (forward auth).
    pub async fn route_by_uri(&self, uri: &str) -> Result<Option<Route>> {
        match self.inner.servers.by_resource(uri).await? {
            Some(row) => Ok(Some(self.route_of(row).await?)),
            None => Ok(None),
        }
    }

    async fn route_of(&self, row: McpServerRow) -> Result<Route> {
        let tools: Tools = serde_json::from_str(&row.tools).map_err(Error::internal)?;
        let upstream_headers = self.upstream_headers(&row).await?;
        Ok(Route {
            uri: resource_uri(&self.inner.issuer, &row),
            upstream_url: row.upstream_url.clone().unwrap_or_default(),
            tools,
            upstream_headers,
            row,
        })
    }

    /// A token exchanged earlier for the caller's `jti` and the upstream
    /// `target`, while it is still good to send.
    pub fn exchanged_token(&self, jti: &str, target: &str) -> Option<String> {
        let now = crate::db::now_ms() / 1000;
        let cache = self.inner.exchanged.lock().expect("exchanged");
        cache
            .get(&(jti.to_string(), target.to_string()))
            .filter(|(_, until)| *until > now)
            .map(|(t, _)| t.clone())
    }

    /// Keeps a token exchanged for `jti` and `target`, valid `expires_in`
    /// seconds; it is not reused in its last 30 (the upstream must not get
    /// a token that expires on the way).
    pub fn remember_exchanged(&self, jti: &str, target: &str, token: &str, expires_in: i64) {
        let now = crate::db::now_ms() / 1000;
        let mut cache = self.inner.exchanged.lock().expect("exchanged");
        if cache.len() >= MAX_EXCHANGED {
            cache.retain(|_, (_, until)| *until > now);
        }
        if cache.len() < MAX_EXCHANGED {
            cache.insert(
                (jti.to_string(), target.to_string()),
                (token.to_string(), now + expires_in - 30),
            );
        }
    }

    /// The opened upstream headers of server `id` (for its health probe).
    pub async fn upstream_headers_of(&self, id: &str) -> Result<Arc<HeaderMap>> {
        let row = self.inner.servers.row(id).await?;
        self.upstream_headers(&row).await
    }

    async fn upstream_headers(&self, row: &McpServerRow) -> Result<Arc<HeaderMap>> {
        let Some(sealed) = &row.upstream_headers else {
            return Ok(Arc::default());
        };
        if let Some((at, h)) = self.inner.headers.lock().expect("headers").get(&row.id) {
            if *at == row.updated_at {
                return Ok(h.clone());
            }
        }
        let opened: std::collections::BTreeMap<String, String> =
            self.inner.servers.open_headers(&row.id, sealed).await?;
        let mut map = HeaderMap::new();
        for (name, value) in opened {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(Error::internal)?;
            let mut value = HeaderValue::from_str(&value).map_err(Error::internal)?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let map = Arc::new(map);
        self.inner
            .headers
            .lock()
            .expect("headers")
            .insert(row.id.clone(), (row.updated_at, map.clone()));
        Ok(map)
    }

    /// The current policy (rebuilt after any change).
    pub async fn policy(&self) -> Result<Arc<Policy>> {
        self.inner
            .policy
            .get(&self.inner.db, &self.inner.audit)
            .await
    }

    /// Decides on `msg` from `who` to `route`, records what SPEC §14 says
    /// is recorded, and takes the call from its limits. An allowed call's
    /// decision record is committed before this returns (fail closed: no
    /// record, no forwarding).
    pub async fn admit(
        &self,
        ctx: &Context,
        who: &Who,
        route: &Route,
        call: &Call,
        headers: Headers<'_>,
    ) -> Result<Admission> {
        let msg = &call.message;
        if let Err(m) = policy::check_headers(headers, msg) {
            let refusal = Refusal::HeaderMismatch(m.0);
            let ev = record::decision(
                ctx,
                call,
                &Verdict::Denied {
                    reason: refusal.message(),
                },
            );
            return self
                .refuse(ev, route, msg, Admission::Refused(refusal))
                .await;
        }
        let server = route.row.name.as_str();
        let policy = self.policy().await?;
        let need = policy::need(server, msg, policy::mapping(&route.tools));
        let mapped = route.mapped();
        let v = verdict(&policy, &who.caller(), server, &need, &mapped);
        let refused = refusal_of(&v);
        if let Some(refused) = refused {
            let ev = record::decision(ctx, call, &v);
            return self.refuse(ev, route, msg, refused).await;
        }
        if !is_call(msg.method()) {
            return Ok(Admission::Forward { decision_seq: None });
        }
        let tool = match (&msg.kind, msg.method()) {
            (Kind::Request { .. }, Some("tools/call")) => msg.name(),
            _ => None,
        };
        if let Err(limited) = self.take(who, route, tool) {
            let refusal = Refusal::Limited(limited);
            let ev = record::decision(
                ctx,
                call,
                &Verdict::Denied {
                    reason: refusal.message(),
                },
            )
            .detail("limited", true);
            return self
                .refuse(ev, route, msg, Admission::Refused(refusal))
                .await;
        }
        let mut ev = record::decision(ctx, call, &v);
        if let Some(settings) = tool.and_then(|t| route.tools.get(t)) {
            if settings.record_arguments {
                ev = ev.detail("arguments", self.seal_arguments(settings, msg).await?);
            }
        }
        let seq = self.inner.audit.record(ev).await?;
        if let Some(t) = tool {
            self.inner.stats.called(server, t);
        }
        Ok(Admission::Forward {
            decision_seq: Some(seq),
        })
    }

    /// Decides on a GET (event stream) or DELETE (session end): access to
    /// the server, as for `initialize`. Refusals are recorded.
    pub async fn admit_transport(
        &self,
        ctx: &Context,
        who: &Who,
        route: &Route,
        http_method: &str,
        session_id: Option<&str>,
    ) -> Result<Admission> {
        let server = route.row.name.as_str();
        let policy = self.policy().await?;
        let mapped = route.mapped();
        let v = verdict(&policy, &who.caller(), server, &Need::ServerAccess, &mapped);
        let Some(admission) = refusal_of(&v) else {
            return Ok(Admission::Forward { decision_seq: None });
        };
        let ev = record::transport_refusal(ctx, server, http_method, session_id, &v);
        self.inner.audit.record(ev).await?;
        Ok(admission)
    }

    fn take(&self, who: &Who, route: &Route, tool: Option<&str>) -> Result<(), Limited> {
        let server = route.row.name.as_str();
        let mut limits = Vec::with_capacity(2);
        if let Some(n) = route.row.calls_per_minute {
            limits.push((who.bucket(server, None), n));
        }
        if let Some(t) = tool {
            if let Some(n) = route.tools.get(t).and_then(|s| s.calls_per_minute) {
                limits.push((who.bucket(server, Some(t)), n));
            }
        }
        self.inner.limits.take(&limits, Instant::now())
    }

    async fn seal_arguments(
        &self,
        settings: &policy::ToolSettings,
        msg: &Message,
    ) -> Result<Package> {
        let classification = settings
            .classification
            .as_deref()
            .unwrap_or(settings::DEFAULT_ARGUMENTS_CLASSIFICATION);
        let raw = serde_json::value::to_raw_value(&msg.arguments()).map_err(Error::internal)?;
        self.inner
            .keyring
            .encrypt(
                &self.inner.db,
                &self.inner.audit,
                classification,
                &raw,
                Some(ARGUMENTS_CONTEXT),
            )
            .await
    }

    /// Filters a `*/list` answer to what `who` may use; returns how many
    /// entries were removed.
    pub fn filter(
        &self,
        policy: &Policy,
        who: &Who,
        route: &Route,
        list_method: &str,
        answer: &mut Value,
    ) -> usize {
        let server = route.row.name.as_str();
        let caller = who.caller();
        policy::filter_list(
            server,
            list_method,
            answer,
            policy::mapping(&route.tools),
            // An entry the principal may use once the token has the scope
            // stays listed: that is how a client learns to step up.
            |need| {
                !matches!(
                    verdict(policy, &caller, server, need, &[]),
                    Verdict::Denied { .. }
                )
            },
        )
    }

    /// Records how a forwarded call ended (in the background: the answer
    /// is not held for it; a failed record is logged).
    /// Ends the span of `call`'s message, if it has one, and hands it to
    /// the telemetry store; `error` says why the message failed.
    pub fn end_span(&self, call: &Call, error: Option<&str>) {
        if let Some(span) = &call.span {
            let row = span.end(
                &record::span_name(&call.message),
                record::span_attributes(call),
                error,
            );
            self.emit_span(row);
        }
    }

    /// Hands a finished span to the telemetry store.
    pub fn emit_span(&self, span: crate::db::spans::SpanRow) {
        self.inner.spans.emit(span);
    }

    pub fn finish(
        &self,
        ctx: &Context,
        call: &Call,
        decision_seq: i64,
        outcome: CallOutcome,
        detail: Option<&str>,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        let latency_ms = elapsed.as_millis() as u64;
        if call.message.method() == Some("tools/call") {
            let tool = call.message.name().unwrap_or_default();
            self.inner
                .stats
                .ended(&call.server, tool, outcome, elapsed.as_secs_f64());
        }
        self.end_span(
            call,
            (outcome != CallOutcome::Ok).then(|| detail.unwrap_or(outcome.as_str())),
        );
        let ev: Event = record::result(ctx, call, decision_seq, outcome, detail, latency_ms);
        let audit = self.inner.audit.clone();
        tokio::spawn(async move {
            if let Err(e) = audit.record(ev).await {
                tracing::error!(error = %e, "could not record an MCP call's result");
            }
        });
    }
}
