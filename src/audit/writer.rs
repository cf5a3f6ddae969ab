//! The single group-commit writer.
//!
//! Callers submit an [`Event`], optionally with the database change it
//! records, and await the commit. One thread with its own connection takes
//! whatever is queued (up to [`MAX_BATCH`]), and in one IMMEDIATE
//! transaction runs each change under a savepoint, appends each record to
//! the chain, and commits once. So:
//!
//! * a change and its record commit together or not at all (fail closed:
//!   if the record cannot be written, the change is rolled back and the
//!   caller gets an error);
//! * a change that fails is rolled back alone and its record says so
//!   (`failure`, `denied` or `error`), the rest of the batch goes on;
//! * callers are answered only after the commit, and WAL makes a commit
//!   survive `kill -9`.
//!
//! The head is re-read inside each transaction, so other processes (the
//! CLI) may append too; SQLite's write lock serialises them.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::chain::{ChainKey, GENESIS};
use super::record::{Event, Outcome, Record};
use super::store as repo;
use crate::db::{self, pool::Pragmas};
use crate::error::{Error, Result};

/// Records committed per transaction at most.
pub const MAX_BATCH: usize = 4096;

/// A database change made in the same transaction as its record.
pub type Change = Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>> + Send>;
type Output = Result<(i64, Option<Box<dyn Any + Send>>)>;

/// One record to append, with its optional change; `result` is filled in
/// by [`append_in`].
pub struct Item {
    event: Option<Event>,
    change: Option<Change>,
    result: Option<Output>,
}

impl Item {
    pub fn new(event: Event, change: Option<Change>) -> Item {
        Item {
            event: Some(event),
            change,
            result: None,
        }
    }

    /// The record's seq, or the change's error.
    pub fn into_result(self) -> Output {
        self.result
            .unwrap_or_else(|| Err(Error::internal("audit item was not written")))
    }
}

pub(crate) fn outcome_for(e: &Error) -> Outcome {
    match e {
        Error::Forbidden(_) | Error::Unauthenticated => Outcome::Denied,
        Error::Internal(_) | Error::Unavailable(_) => Outcome::Error,
        _ => Outcome::Failure,
    }
}

pub(crate) fn public_reason(e: &Error) -> String {
    match e {
        Error::Internal(_) => "internal error".into(),
        other => other.to_string(),
    }
}

/// Appends `items` inside the caller's transaction `tx` (which must hold
/// the write lock). Each item's change runs under a savepoint first.
pub fn append_in(tx: &Connection, key: &ChainKey, items: &mut [Item]) -> rusqlite::Result<()> {
    let (mut seq, mut prev) = repo::head(tx)?.unwrap_or((0, GENESIS.to_string()));
    let now = db::now_ms();
    for item in items.iter_mut() {
        let Some(mut ev) = item.event.take() else {
            continue;
        };
        let out = match item.change.take() {
            None => Ok(None),
            Some(change) => {
                // Prepared once per connection: the writer runs these for
                // every audited change.
                tx.prepare_cached("SAVEPOINT audited_change")?.execute([])?;
                let ran = catch_unwind(AssertUnwindSafe(|| change(tx)))
                    .unwrap_or_else(|_| Err(Error::internal("the audited change panicked")));
                match ran {
                    Ok(v) => {
                        tx.prepare_cached("RELEASE audited_change")?.execute([])?;
                        Ok(Some(v))
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO audited_change; RELEASE audited_change")?;
                        ev.outcome = outcome_for(&e);
                        ev.reason = Some(public_reason(&e));
                        Err(e)
                    }
                }
            }
        };
        seq += 1;
        let record = seal(ev, seq, now, &prev, key);
        repo::insert(tx, &record)?;
        prev = record.hash;
        item.result = Some(out.map(|v| (seq, v)));
    }
    Ok(())
}

/// Gives an event its place in the chain.
fn seal(ev: Event, seq: i64, now: i64, prev: &str, key: &ChainKey) -> Record {
    let at = if ev.at > 0 { ev.at } else { now };
    let details_json = match &ev.details {
        serde_json::Value::Object(_) => ev.details.to_string(),
        _ => "{}".to_string(),
    };
    let mut r = Record {
        seq,
        at,
        time: String::new(),
        actor_type: ev.actor_type,
        actor_id: ev.actor_id,
        actor_name: ev.actor_name,
        action: ev.action,
        target_type: ev.target_type,
        target_id: ev.target_id,
        outcome: ev.outcome,
        reason: ev.reason,
        source_ip: ev.source_ip,
        user_agent: ev.user_agent,
        request_id: ev.request_id,
        details: serde_json::Value::Null,
        details_json,
        prev_hash: prev.to_string(),
        hash: String::new(),
    };
    r.hash = key.record_hash(&r.canonical(), &r.prev_hash);
    r
}

/// One record in its own transaction (CLI, start-up).
pub fn append_one(conn: &mut Connection, key: &ChainKey, event: Event) -> Result<i64> {
    let mut items = [Item::new(event, None)];
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    append_in(&tx, key, &mut items)?;
    tx.commit()?;
    let [item] = items;
    item.into_result().map(|(seq, _)| seq)
}

enum Msg {
    Job {
        item: Box<Item>,
        reply: oneshot::Sender<Output>,
    },
    Prune {
        before: i64,
        reply: oneshot::Sender<Result<usize>>,
    },
    Stop(oneshot::Sender<()>),
}

/// Whether the last write worked; read by `/readyz`.
#[derive(Default)]
struct Status {
    failure: Mutex<Option<String>>,
    /// Records submitted and not yet taken by the writer.
    queued: std::sync::atomic::AtomicUsize,
}

/// Handle to the writer. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    tx: mpsc::UnboundedSender<Msg>,
    status: Arc<Status>,
    key: ChainKey,
    /// Bumped after every committed change; caches of database state
    /// compare it to know they are stale.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

fn stopped() -> Error {
    Error::Unavailable("the audit writer is not running; the action was not performed".into())
}

impl Audit {
    /// Opens the writer's own connection and starts its thread.
    pub fn start(path: &Path, pragmas: Pragmas, key: ChainKey) -> Result<Audit> {
        let conn = db::pool::open_single(path, pragmas)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Status::default());
        let audit = Audit {
            tx,
            status: status.clone(),
            key: key.clone(),
            generation: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        };
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(conn, key, rx, status))
            .map_err(Error::internal)?;
        Ok(audit)
    }

    pub fn key(&self) -> &ChainKey {
        &self.key
    }

    /// The current change generation (see [`Audit::changed`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks cached database state stale. `apply` calls it after every
    /// committed change; code that changes state another way calls it too.
    pub fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Appends a record and waits for its commit; returns its seq.
    pub async fn record(&self, event: Event) -> Result<i64> {
        self.submit(Item::new(event, None))
            .await
            .map(|(seq, _)| seq)
    }

    /// Appends many records and waits until all are committed; they are
    /// queued together, so they share group commits.
    pub async fn record_many(&self, events: Vec<Event>) -> Result<()> {
        let mut waits = Vec::with_capacity(events.len());
        for event in events {
            let (reply, rx) = oneshot::channel();
            self.send_job(Item::new(event, None), reply)?;
            waits.push(rx);
        }
        for rx in waits {
            rx.await.map_err(|_| stopped())??;
        }
        Ok(())
    }

    /// Runs `change` and appends its record in one transaction; waits for
    /// the commit. When `change` fails, nothing it did is kept, the record
    /// says it failed, and its error is returned.
    pub async fn apply<T, F>(&self, event: Event, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let out = self.commit(event, change).await;
        self.changed();
        out
    }

    /// [`Self::apply`] for a change to state that no cache holds (OAuth
    /// codes, refresh tokens, grants): the change generation stays, so the
    /// caches of policy, principals and revocations are not rebuilt after
    /// every sign-in and refresh. A change that touches anything a cache
    /// reads must use `apply`.
    pub async fn apply_uncached<T, F>(&self, event: Event, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.commit(event, change).await
    }

    async fn commit<T, F>(&self, event: Event, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let change: Change =
            Box::new(move |c| change(c).map(|v| Box::new(v) as Box<dyn Any + Send>));
        let (_, out) = self.submit(Item::new(event, Some(change))).await?;
        out.and_then(|b| b.downcast::<T>().ok())
            .map(|b| *b)
            .ok_or_else(|| Error::internal("audited change returned no value"))
    }

    /// Records that `event` failed with `e` and hands `e` back, for
    /// failures found before any change was attempted (validation). If the
    /// record cannot be written, that error is returned instead.
    pub async fn fail(&self, event: Event, e: Error) -> Error {
        match self.record(event.failed(&e)).await {
            Ok(_) => e,
            Err(audit_error) => audit_error,
        }
    }

    async fn submit(&self, item: Item) -> Output {
        let (reply, rx) = oneshot::channel();
        self.send_job(item, reply)?;
        rx.await.map_err(|_| stopped())?
    }

    fn send_job(&self, item: Item, reply: oneshot::Sender<Output>) -> Result<()> {
        use std::sync::atomic::Ordering;
        // Counted before sending, so the writer never takes one uncounted.
        self.status.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.send(Msg::Job {
            item: Box::new(item),
            reply,
        });
        if sent.is_err() {
            self.status.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(stopped());
        }
        Ok(())
    }

    /// Records waiting for the writer (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.status
            .queued
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Deletes records older than `before` (ms), moving the checkpoint.
    pub async fn prune(&self, before: i64) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Prune { before, reply })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Writes everything queued so far, then stops the writer.
    pub async fn shutdown(&self) {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Msg::Stop(ack)).is_ok() {
            let _ = rx.await;
        }
    }

    /// `Ok` while records are being written; the last failure otherwise.
    pub fn health(&self) -> std::result::Result<(), String> {
        if self.tx.is_closed() {
            return Err("the audit writer has stopped".into());
        }
        match self.status.failure.lock().map(|f| f.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(format!("audit writes are failing: {e}")),
            Err(_) => Err("audit writer status is unavailable".into()),
        }
    }
}

fn run(
    mut conn: Connection,
    key: ChainKey,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    status: Arc<Status>,
) {
    let mut batch: Vec<(Item, oneshot::Sender<Output>)> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Job { item, reply } => {
                    status
                        .queued
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    batch.push((*item, reply));
                }
                Msg::Prune { before, reply } => {
                    flush(&mut conn, &key, &mut batch, &status);
                    let _ = reply.send(prune(&mut conn, &key, before).map_err(Error::from));
                }
                Msg::Stop(ack) => {
                    flush(&mut conn, &key, &mut batch, &status);
                    rx.close();
                    let _ = ack.send(());
                    return;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        flush(&mut conn, &key, &mut batch, &status);
    }
}

fn flush(
    conn: &mut Connection,
    key: &ChainKey,
    batch: &mut Vec<(Item, oneshot::Sender<Output>)>,
    status: &Status,
) {
    if batch.is_empty() {
        return;
    }
    let (mut items, replies): (Vec<Item>, Vec<_>) = batch.drain(..).unzip();
    let written = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            append_in(&tx, key, &mut items)?;
            tx.commit()
        });
    match written {
        Ok(()) => {
            if let Ok(mut f) = status.failure.lock() {
                *f = None;
            }
            for (item, reply) in items.into_iter().zip(replies) {
                let _ = reply.send(item.into_result());
            }
        }
        Err(e) => {
            tracing::error!(error = %e, records = replies.len(), "audit batch could not be written; the audited actions fail");
            if let Ok(mut f) = status.failure.lock() {
                *f = Some(e.to_string());
            }
            // Say why in the caller's terms (a full disk, a lock held
            // elsewhere); the full cause is in the log line above.
            use rusqlite::ffi::ErrorCode;
            let why = match &e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => {
                    "disk is full"
                }
                rusqlite::Error::SqliteFailure(f, _)
                    if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
                {
                    "database is busy"
                }
                _ => "storage error",
            };
            for reply in replies {
                let _ = reply.send(Err(Error::Unavailable(format!(
                    "the audit log cannot be written ({why}); the action was not performed"
                ))));
            }
        }
    }
}

fn prune(conn: &mut Connection, key: &ChainKey, before: i64) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some((seq, hash)) = repo::newest_before(&tx, before)? else {
        return Ok(0);
    };
    let mac = key.checkpoint_mac(seq, &hash);
    let n = repo::prune_through(&tx, seq, &hash, &mac, db::now_ms())?;
    tx.commit()?;
    Ok(n)
}
