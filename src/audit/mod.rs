//! The audit trail (README, "Audit log"): append-only, keyed hash chain, group-committed
//! by one writer, searchable, exportable, verifiable, pruned by retention
//! behind a MAC'd checkpoint.

pub mod activity;
pub mod chain;
pub mod export;
pub mod record;
pub mod store;
pub mod writer;

pub use chain::{ChainKey, Head, VerifyReport};
pub use record::{ActorType, Context, Event, Outcome, Record};
pub use writer::Audit;

use rusqlite::Connection;

use crate::db::Db;
use crate::error::Result;
use store as repo;

/// Records read per query while verifying or exporting.
pub const CHUNK: u32 = 1000;

/// Walks the whole retained chain from one read snapshot, in chunks, so
/// memory stays constant however long the log is.
pub fn verify_sync(conn: &Connection, key: &ChainKey, saved: Option<Head>) -> Result<VerifyReport> {
    let tx = conn.unchecked_transaction()?;
    let checkpoint = repo::checkpoint(&tx)?;
    let up_to = repo::head(&tx)?.map(|(seq, _)| seq).unwrap_or(0);
    let mut verifier = chain::Verifier::new(key.clone(), checkpoint.as_ref(), saved);
    let mut after = checkpoint.as_ref().map(|c| c.seq).unwrap_or(0);
    'chunks: loop {
        let rows = repo::chunk_after(&tx, after, up_to, CHUNK)?;
        let Some(last) = rows.last() else { break };
        after = last.record.seq;
        for raw in &rows {
            if !verifier.push(raw) {
                break 'chunks;
            }
        }
    }
    Ok(verifier.finish())
}

pub async fn verify(db: &Db, key: &ChainKey, saved: Option<Head>) -> Result<VerifyReport> {
    let key = key.clone();
    db.read(move |c| verify_sync(c, &key, saved)).await
}

/// The newest record's position (or the checkpoint's when everything was
/// pruned); `None` for an empty log.
pub async fn head(db: &Db) -> Result<Option<Head>> {
    db.read(|c| Ok(repo::head(c)?.map(|(seq, hash)| Head { seq, hash })))
        .await
}

/// A page of records, newest first, with `seq < before`.
pub async fn search(
    db: &Db,
    filter: repo::Filter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Record>> {
    db.read(move |c| repo::search(c, &filter, repo::Order::NewestBefore(before), limit))
        .await
}

pub async fn get(db: &Db, seq: i64) -> Result<Record> {
    db.read(move |c| {
        repo::by_seq(c, seq)?
            .ok_or_else(|| crate::error::Error::NotFound(format!("audit record {seq}")))
    })
    .await
}
