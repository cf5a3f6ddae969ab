//! Channels as stored: validated settings, the secret part encrypted with
//! the encryption service (classification `restricted`, context
//! `channel:<id>`, so a package cannot be moved to another channel), and
//! the "send test" action.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::retry::RetryPolicy;
use super::{deliver, ChannelType, Kind, Message, Outcome, Settings};
use crate::audit::{Audit, Context, Outcome as AuditOutcome};
use crate::db::channels::{self as repo, ChannelRow};
use crate::db::notifications::DeliveryStatus;
use crate::db::notifications::{self as outbox_repo, NotificationRow};
use crate::db::{self, Db};
use crate::encryption::keyring::KeyRing;
use crate::error::{Error, FieldErrors, Result};
use crate::names::{valid_alerting_name as valid_name, ALERTING_NAME_RULE as NAME_RULE};
use crate::net::{Outbound, OutboundRules};

pub const CLASSIFICATION: &str = "restricted";

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ops-webhook", "type": "webhook", "settings": {"url": "https://hooks.example.com/agentry", "secret": "a long random signing secret"}}))]
pub struct ChannelSpec {
    #[schema(value_type = crate::formats::AlertingName)]
    pub name: String,
    /// email, slack, pagerduty or webhook.
    #[serde(rename = "type")]
    pub kind: String,
    /// Per type (README, "Alerting"). On update, secret fields left out keep their
    /// stored value.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// A channel as shown: secrets are never returned, only which are set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub secrets_set: Vec<&'static str>,
    pub created_at: String,
    pub updated_at: String,
}

/// Decrypted settings and the `updated_at` of the row they came from.
type Cached = (i64, Arc<Settings>);

#[derive(Clone)]
pub struct ChannelStore {
    db: Db,
    audit: Audit,
    keyring: KeyRing,
    /// Decrypted settings by channel id, with the `updated_at` they are of.
    cache: Arc<Mutex<HashMap<String, Cached>>>,
    /// One client (and its connection pool) for every delivery, under the
    /// outbound rules.
    http: Outbound,
}

fn context(id: &str) -> String {
    format!("channel:{id}")
}

fn prefixed(errors: Vec<super::FieldError>) -> FieldErrors {
    errors
        .into_iter()
        .map(|e| (format!("settings.{}", e.field), e.message))
        .collect()
}

impl ChannelStore {
    pub fn new(db: Db, audit: Audit, keyring: KeyRing, rules: Arc<OutboundRules>) -> ChannelStore {
        ChannelStore {
            db,
            audit,
            keyring,
            cache: Arc::default(),
            http: super::deliver::client(rules),
        }
    }

    /// The HTTP client deliveries to these channels go through.
    pub fn http(&self) -> &Outbound {
        &self.http
    }

    async fn seal(&self, id: &str, settings: &Settings) -> Result<(String, String)> {
        let (public, secrets) = settings.split();
        let sealed = self
            .keyring
            .seal_json(
                &self.db,
                &self.audit,
                CLASSIFICATION,
                &secrets,
                &context(id),
            )
            .await?;
        Ok((public.to_string(), sealed))
    }

    async fn open(&self, row: &ChannelRow) -> Result<Settings> {
        let kind: ChannelType = row
            .kind
            .parse()
            .map_err(|_| Error::internal(format!("channel {} has unknown type", row.id)))?;
        let secrets: serde_json::Value = self
            .keyring
            .open_json(&self.db, &self.audit, &row.secrets, &context(&row.id))
            .await?;
        let public: serde_json::Value =
            serde_json::from_str(&row.settings).map_err(Error::internal)?;
        Settings::join(kind, &public, &secrets).map_err(Error::internal)
    }

    /// Decrypted settings of channel `id` (cached until it changes).
    pub async fn settings(&self, id: &str) -> Result<Option<Arc<Settings>>> {
        let i = id.to_string();
        let Some(row) = self.db.read(move |c| repo::by_id(c, &i)).await? else {
            return Ok(None);
        };
        if let Some((at, s)) = self.cache.lock().expect("cache").get(id) {
            if *at == row.updated_at {
                return Ok(Some(s.clone()));
            }
        }
        let s = Arc::new(self.open(&row).await?);
        self.cache
            .lock()
            .expect("cache")
            .insert(id.to_string(), (row.updated_at, s.clone()));
        Ok(Some(s))
    }

    fn view(row: &ChannelRow, settings: &Settings) -> ChannelView {
        ChannelView {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            settings: serde_json::from_str(&row.settings).unwrap_or_default(),
            secrets_set: settings.secrets_set(),
            created_at: crate::timefmt::rfc3339(row.created_at),
            updated_at: crate::timefmt::rfc3339(row.updated_at),
        }
    }

    fn check(
        &self,
        spec: &ChannelSpec,
        existing: Option<&Settings>,
    ) -> std::result::Result<Settings, FieldErrors> {
        let mut e = FieldErrors::new();
        if !valid_name(&spec.name) {
            e.insert("name".into(), NAME_RULE.into());
        }
        let kind: Option<ChannelType> = spec.kind.parse().ok();
        let settings = match (kind, existing) {
            (None, _) => {
                e.insert("type".into(), format!("must be {}", ChannelType::choices()));
                None
            }
            (Some(k), Some(old)) if old.kind() == k => Settings::parse_update(old, &spec.settings)
                .map_err(|errs| e.extend(prefixed(errs)))
                .ok(),
            (Some(k), _) => Settings::parse(k, &spec.settings)
                .map_err(|errs| e.extend(prefixed(errs)))
                .ok(),
        };
        if let Some(Err((field, message))) = settings
            .as_ref()
            .map(|s| s.check_destination(self.http.rules()))
        {
            e.insert(format!("settings.{field}"), message);
        }
        match settings {
            Some(s) if e.is_empty() => Ok(s),
            _ => Err(e),
        }
    }

    pub async fn create(&self, ctx: &Context, spec: ChannelSpec) -> Result<ChannelView> {
        let id = db::new_id();
        let event = ctx
            .event("channel.create", AuditOutcome::Success)
            .target("channel", &id)
            .detail("name", &spec.name)
            .detail("type", &spec.kind);
        let settings = match self.check(&spec, None) {
            Ok(s) => s,
            Err(errors) => return Err(self.audit.fail(event, Error::fields(errors)).await),
        };
        let (public, secrets) = self.seal(&id, &settings).await?;
        let now = db::now_ms();
        let row = ChannelRow {
            id,
            name: spec.name,
            kind: settings.kind().as_str().into(),
            settings: public,
            secrets,
            created_at: now,
            updated_at: now,
        };
        let view = Self::view(&row, &settings);
        self.audit
            .apply(event, move |c| {
                if repo::by_name(c, &row.name)?.is_some() {
                    return Err(name_taken());
                }
                repo::insert(c, &row)
            })
            .await?;
        Ok(view)
    }

    pub async fn update(&self, ctx: &Context, id: &str, spec: ChannelSpec) -> Result<ChannelView> {
        let event = ctx
            .event("channel.update", AuditOutcome::Success)
            .target("channel", id)
            .detail("name", &spec.name);
        let old = self.row(id).await?;
        let existing = self.open(&old).await?;
        let settings = match self.check(&spec, Some(&existing)) {
            Ok(s) => s,
            Err(errors) => return Err(self.audit.fail(event, Error::fields(errors)).await),
        };
        let (public, secrets) = self.seal(id, &settings).await?;
        let row = ChannelRow {
            name: spec.name,
            kind: settings.kind().as_str().into(),
            settings: public,
            secrets,
            updated_at: db::now_ms().max(old.updated_at + 1),
            ..old
        };
        let view = Self::view(&row, &settings);
        self.audit
            .apply(event, move |c| {
                if repo::by_name(c, &row.name)?.is_some_and(|o| o.id != row.id) {
                    return Err(name_taken());
                }
                if !repo::update(c, &row)? {
                    return Err(Error::NotFound(format!("channel {}", row.id)));
                }
                Ok(())
            })
            .await?;
        Ok(view)
    }

    pub async fn delete(&self, ctx: &Context, id: &str) -> Result<()> {
        let event = ctx
            .event("channel.delete", AuditOutcome::Success)
            .target("channel", id);
        let i = id.to_string();
        self.audit
            .apply(event, move |c| {
                if !repo::delete(c, &i)? {
                    return Err(Error::NotFound(format!("channel {i}")));
                }
                Ok(())
            })
            .await?;
        self.cache.lock().expect("cache").remove(id);
        Ok(())
    }

    async fn row(&self, id: &str) -> Result<ChannelRow> {
        let i = id.to_string();
        self.db
            .read(move |c| repo::by_id(c, &i))
            .await?
            .ok_or_else(|| Error::NotFound(format!("channel {id}")))
    }

    pub async fn get(&self, id: &str) -> Result<ChannelView> {
        let row = self.row(id).await?;
        let s = self.open(&row).await?;
        Ok(Self::view(&row, &s))
    }

    pub async fn list(&self, after: Option<String>, limit: u32) -> Result<Vec<ChannelView>> {
        let rows = self
            .db
            .read(move |c| repo::list(c, after.as_deref(), limit))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let s = self.open(&r).await?;
            out.push(Self::view(&r, &s));
        }
        Ok(out)
    }

    /// "Send test": one attempt now, logged like any notification. A
    /// retryable failure stays queued for the worker.
    pub async fn test(
        &self,
        ctx: &Context,
        id: &str,
        external_url: &str,
        policy: RetryPolicy,
    ) -> Result<NotificationRow> {
        let row = self.row(id).await?;
        let settings = self.open(&row).await?;
        let nid = db::new_id();
        let msg = Message::test(&nid, &row.name, external_url);
        let now = db::now_ms();
        let mut n = NotificationRow {
            id: nid,
            alert_id: None,
            approval_id: None,
            channel_id: Some(row.id.clone()),
            channel: row.name.clone(),
            kind: Kind::Test.as_str().into(),
            message: serde_json::to_string(&msg).map_err(Error::internal)?,
            status: DeliveryStatus::Pending,
            attempts: 0,
            // Not due for the worker until this attempt is recorded.
            next_attempt_at: now + policy.timeout.as_millis() as i64 + 1000,
            last_error: None,
            created_at: now,
            delivered_at: None,
        };
        let event = ctx
            .event("channel.test", AuditOutcome::Success)
            .target("channel", id)
            .detail("notification_id", &n.id);
        let insert = n.clone();
        self.audit
            .apply(event, move |c| outbox_repo::insert(c, &insert))
            .await?;
        let outcome = deliver(&self.http, &settings, &row.name, &msg, policy.timeout).await;
        let done = db::now_ms();
        let (status, next, err) = match &outcome {
            Outcome::Delivered => (DeliveryStatus::Delivered, done, None),
            Outcome::Fail(e) => (DeliveryStatus::Failed, done, Some(e.clone())),
            Outcome::Retry(e) => (
                DeliveryStatus::Pending,
                done + policy.backoff_ms(1),
                Some(e.clone()),
            ),
        };
        let nid = n.id.clone();
        let e2 = err.clone();
        self.db
            .write(move |c| outbox_repo::record_attempt(c, &nid, status, next, e2.as_deref(), done))
            .await?;
        n.status = status;
        n.attempts = 1;
        n.next_attempt_at = next;
        n.last_error = err;
        n.delivered_at = (status == DeliveryStatus::Delivered).then_some(done);
        Ok(n)
    }
}

fn name_taken() -> Error {
    Error::Conflict("a channel with this name exists".into())
}
