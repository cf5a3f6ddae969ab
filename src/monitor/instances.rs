//! Agent instances: what to check and how, validated and audited.

use crate::audit::{Audit, Context, Outcome};
use crate::db::{self, agents, instances as repo, Db};
use crate::error::{Error, FieldErrors, Result};
use crate::net::OutboundRules;

use super::status_spec::StatusSpec;

pub use repo::{CheckRow, InstanceRow};

crate::closed_set! {
    /// How an instance is watched.
    pub enum InstanceKind {
        /// Polled by the appliance over HTTP.
        Http = "http",
        /// The agent calls in.
        Heartbeat = "heartbeat",
        /// An MCP endpoint (Streamable HTTP), probed with `initialize` and
        /// `ping`.
        Mcp = "mcp",
    }
}

impl InstanceKind {
    /// Whether the appliance polls such an instance (it has a URL, status
    /// codes and response times), rather than waiting for the agent to
    /// call in.
    pub fn polled(self) -> bool {
        match self {
            InstanceKind::Http | InstanceKind::Mcp => true,
            InstanceKind::Heartbeat => false,
        }
    }
}

impl InstanceRow {
    /// The row's kind; `None` for a kind this build does not know (a row
    /// written by a newer one), which is then not checked.
    pub fn kind(&self) -> Option<InstanceKind> {
        InstanceKind::parse(&self.kind)
    }

    /// See [`InstanceKind::polled`].
    pub fn polled(&self) -> bool {
        self.kind().is_some_and(InstanceKind::polled)
    }

    /// The owning agent's id, or "" for a proxied MCP server's probe.
    pub fn agent_key(&self) -> &str {
        self.agent_id.as_deref().unwrap_or_default()
    }

    /// The type the instance is reported under: its agent's, or
    /// [`MCP_SERVER_TYPE`] for a proxied MCP server's probe.
    pub fn agent_type_in<'a, M: MapLike>(&'a self, agent_types: &'a M) -> &'a str {
        match &self.agent_id {
            Some(a) => agent_types.type_of(a).unwrap_or(""),
            None => MCP_SERVER_TYPE,
        }
    }
}

/// The type a proxied MCP server's probe is reported under.
pub const MCP_SERVER_TYPE: &str = "mcp_server";

/// An agent-id → type map (the pages and figures use both kinds of map).
pub trait MapLike {
    fn type_of(&self, agent_id: &str) -> Option<&str>;
}

impl MapLike for std::collections::HashMap<String, String> {
    fn type_of(&self, agent_id: &str) -> Option<&str> {
        self.get(agent_id).map(String::as_str)
    }
}

impl MapLike for std::collections::BTreeMap<String, String> {
    fn type_of(&self, agent_id: &str) -> Option<&str> {
        self.get(agent_id).map(String::as_str)
    }
}

pub const MAX_BODY_CONTAINS: usize = 1024;
/// The timeout of a check when none is given (ms).
pub const DEFAULT_TIMEOUT_MS: i64 = 5000;

/// What a caller gives for a new instance (defaults filled in).
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub agent_id: String,
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub interval_seconds: i64,
    pub timeout_ms: i64,
    pub expected_status: String,
    pub body_contains: Option<String>,
    pub failure_threshold: i64,
    pub success_threshold: i64,
    pub degraded_latency_ms: Option<i64>,
    pub enabled: bool,
}

/// A partial change (PATCH); `Some(None)` clears an optional field.
#[derive(Debug, Default)]
pub struct InstanceChanges {
    pub name: Option<String>,
    pub url: Option<Option<String>>,
    pub interval_seconds: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub expected_status: Option<String>,
    pub body_contains: Option<Option<String>>,
    pub failure_threshold: Option<i64>,
    pub success_threshold: Option<i64>,
    pub degraded_latency_ms: Option<Option<i64>>,
    pub enabled: Option<bool>,
}

/// Checks a spec; `rules` are the outbound rules its URL must obey (an
/// address they refuse is refused here, naming the rule, as well as at
/// every connection).
fn validate(s: &InstanceSpec, rules: &OutboundRules) -> FieldErrors {
    let mut e = FieldErrors::new();
    let name_ok = (1..=64).contains(&s.name.chars().count())
        && !s.name.chars().any(char::is_control)
        && s.name.trim() == s.name;
    if !name_ok {
        e.insert(
            "name".into(),
            "must be 1-64 characters, without control characters or surrounding spaces".into(),
        );
    }
    let kind = InstanceKind::parse(&s.kind);
    match (kind, &s.url) {
        (Some(InstanceKind::Http | InstanceKind::Mcp), Some(u)) => {
            let checked = crate::net::validate_url(u)
                .and_then(|parsed| rules.check_url(&parsed).map_err(|r| r.to_string()));
            if let Err(m) = checked {
                e.insert("url".into(), m);
            }
        }
        (Some(k @ (InstanceKind::Http | InstanceKind::Mcp)), None) => {
            e.insert("url".into(), format!("is required for an {k} instance"));
        }
        (Some(InstanceKind::Heartbeat), Some(_)) => {
            e.insert(
                "url".into(),
                "must be absent for a heartbeat instance".into(),
            );
        }
        (Some(InstanceKind::Heartbeat), None) => {}
        (None, _) => {
            e.insert(
                "kind".into(),
                format!("must be one of {}", InstanceKind::names()),
            );
        }
    }
    if !(5..=86_400).contains(&s.interval_seconds) {
        e.insert(
            "interval_seconds".into(),
            "must be between 5 and 86400".into(),
        );
    }
    // A heartbeat waits for the agent, not for a request: its timeout
    // bounds nothing, so the default (5000 ms) may meet the minimum
    // interval (5 s).
    if !(100..=60_000).contains(&s.timeout_ms) {
        e.insert("timeout_ms".into(), "must be between 100 and 60000".into());
    } else if kind == Some(InstanceKind::Http)
        && s.timeout_ms >= s.interval_seconds.saturating_mul(1000)
    {
        e.insert(
            "timeout_ms".into(),
            "must be shorter than the interval".into(),
        );
    }
    if let Err(m) = StatusSpec::parse(&s.expected_status) {
        e.insert("expected_status".into(), m);
    }
    if let Some(b) = &s.body_contains {
        if b.is_empty() || b.chars().count() > MAX_BODY_CONTAINS {
            e.insert(
                "body_contains".into(),
                format!("must be 1-{MAX_BODY_CONTAINS} characters, or absent"),
            );
        }
    }
    for (field, v) in [
        ("failure_threshold", s.failure_threshold),
        ("success_threshold", s.success_threshold),
    ] {
        if !(1..=100).contains(&v) {
            e.insert(field.into(), "must be between 1 and 100".into());
        }
    }
    if let Some(d) = s.degraded_latency_ms {
        if d < 1 || d > s.timeout_ms {
            e.insert(
                "degraded_latency_ms".into(),
                "must be between 1 and timeout_ms, or absent".into(),
            );
        }
    }
    e
}

fn conflict(e: rusqlite::Error) -> Error {
    if db::is_unique_violation(&e) {
        Error::Conflict("this agent already has an instance with that name".into())
    } else {
        e.into()
    }
}

pub async fn create(
    audit: &Audit,
    ctx: &Context,
    rules: &OutboundRules,
    s: InstanceSpec,
) -> Result<InstanceRow> {
    let id = db::new_id();
    let event = ctx
        .event("instance.create", Outcome::Success)
        .target("instance", &id)
        .detail("agent_id", &s.agent_id)
        .detail("name", &s.name)
        .detail("kind", &s.kind);
    let errors = validate(&s, rules);
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    let now = db::now_ms();
    let row = InstanceRow {
        agent_id: Some(s.agent_id),
        name: s.name,
        kind: s.kind,
        url: s.url,
        interval_seconds: s.interval_seconds,
        timeout_ms: s.timeout_ms,
        expected_status: s.expected_status,
        body_contains: s.body_contains,
        failure_threshold: s.failure_threshold,
        success_threshold: s.success_threshold,
        degraded_latency_ms: s.degraded_latency_ms,
        enabled: s.enabled,
        ..InstanceRow::unchecked(id, now)
    };
    audit
        .apply(event, move |c| {
            if agents::by_id(c, row.agent_id.as_deref().unwrap_or_default())?.is_none() {
                return Err(Error::field("agent_id", "no agent with this id"));
            }
            repo::insert(c, &row).map_err(conflict)?;
            Ok(row)
        })
        .await
}

pub async fn get(db: &Db, id: &str) -> Result<InstanceRow> {
    let id = id.to_string();
    db.read(move |c| repo::by_id(c, &id))
        .await?
        .ok_or_else(|| Error::NotFound("instance".into()))
}

pub async fn list(
    db: &Db,
    agent_id: Option<String>,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<InstanceRow>> {
    db.read(move |c| repo::list(c, agent_id.as_deref(), after.as_deref(), limit))
        .await
}

pub async fn update(
    db: &Db,
    audit: &Audit,
    ctx: &Context,
    rules: &OutboundRules,
    id: &str,
    ch: InstanceChanges,
) -> Result<InstanceRow> {
    let mut row = get(db, id).await?;
    let event = ctx
        .event("instance.update", Outcome::Success)
        .target("instance", id);
    row.name = ch.name.unwrap_or(row.name);
    row.url = ch.url.unwrap_or(row.url);
    row.interval_seconds = ch.interval_seconds.unwrap_or(row.interval_seconds);
    row.timeout_ms = ch.timeout_ms.unwrap_or(row.timeout_ms);
    row.expected_status = ch.expected_status.unwrap_or(row.expected_status);
    row.body_contains = ch.body_contains.unwrap_or(row.body_contains);
    row.failure_threshold = ch.failure_threshold.unwrap_or(row.failure_threshold);
    row.success_threshold = ch.success_threshold.unwrap_or(row.success_threshold);
    row.degraded_latency_ms = ch.degraded_latency_ms.unwrap_or(row.degraded_latency_ms);
    row.enabled = ch.enabled.unwrap_or(row.enabled);
    row.updated_at = db::now_ms();
    let spec = InstanceSpec {
        agent_id: row.agent_id.clone().unwrap_or_default(),
        name: row.name.clone(),
        kind: row.kind.clone(),
        url: row.url.clone(),
        interval_seconds: row.interval_seconds,
        timeout_ms: row.timeout_ms,
        expected_status: row.expected_status.clone(),
        body_contains: row.body_contains.clone(),
        failure_threshold: row.failure_threshold,
        success_threshold: row.success_threshold,
        degraded_latency_ms: row.degraded_latency_ms,
        enabled: row.enabled,
    };
    let errors = validate(&spec, rules);
    if !errors.is_empty() {
        return Err(audit.fail(event, Error::fields(errors)).await);
    }
    audit
        .apply(event, move |c| {
            if !repo::update_definition(c, &row).map_err(conflict)? {
                return Err(Error::NotFound("instance".into()));
            }
            Ok(row)
        })
        .await
}

pub async fn delete(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("instance.delete", Outcome::Success)
        .target("instance", id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            if repo::delete(c, &id)? {
                Ok(())
            } else {
                Err(Error::NotFound("instance".into()))
            }
        })
        .await
}

/// Records a heartbeat of a heartbeat instance (not audited: routine, and
/// the check results keep the history).
pub async fn heartbeat(db: &Db, id: &str) -> Result<()> {
    let id = id.to_string();
    let now = db::now_ms();
    if db.write(move |c| repo::heartbeat(c, &id, now)).await? {
        Ok(())
    } else {
        Err(Error::NotFound("heartbeat instance".into()))
    }
}

pub async fn checks(db: &Db, id: &str, before: Option<i64>, limit: u32) -> Result<Vec<CheckRow>> {
    let id = id.to_string();
    db.read(move |c| repo::checks(c, &id, before, limit)).await
}

/// Rollups of an instance's checks (`bucket_ms`: a minute or an hour) since
/// `since`, oldest first.
/// An instance's hourly history since `since`, newest first, from every
/// tier the store keeps it in (see [`super::rollup::hourly`]).
pub async fn history(
    db: &Db,
    id: &str,
    since: i64,
) -> Result<Vec<crate::db::check_rollups::RollupRow>> {
    super::rollup::hourly(db, id, since).await
}
