//! Streaming export as JSON Lines or CSV.
//!
//! A blocking task reads matching records in chunks and sends each chunk's
//! bytes through a small bounded channel; the HTTP layer streams what
//! arrives. Memory stays constant for any number of records, and the export
//! stops as soon as the client goes away (the channel closes).

use tokio::sync::mpsc;

use super::record::Record;
use super::store as repo;
use super::CHUNK;
use crate::db::{Db, LongRead};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Jsonl, Format::Csv];

    /// The format named as in `format=` (its file extension).
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/jsonl",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

const CSV_HEADER: [&str; 16] = [
    "seq",
    "time",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "reason",
    "source_ip",
    "user_agent",
    "request_id",
    "details",
    "prev_hash",
    "hash",
];

/// Spreadsheets execute cells starting with these; such values are prefixed
/// with `'` in CSV (JSON Lines is exported verbatim and is the format to
/// verify against).
fn defuse(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

fn csv_row(w: &mut csv::Writer<Vec<u8>>, r: &Record) -> csv::Result<()> {
    let opt = |v: &Option<String>| defuse(v.as_deref().unwrap_or("")).into_owned();
    w.write_record([
        r.seq.to_string(),
        r.time.clone(),
        r.actor_type.as_str().to_string(),
        opt(&r.actor_id),
        opt(&r.actor_name),
        defuse(&r.action).into_owned(),
        opt(&r.target_type),
        opt(&r.target_id),
        r.outcome.as_str().to_string(),
        opt(&r.reason),
        opt(&r.source_ip),
        opt(&r.user_agent),
        opt(&r.request_id),
        r.details_json.clone(),
        r.prev_hash.clone(),
        r.hash.clone(),
    ])
}

fn encode(format: Format, records: &[Record], header: bool) -> Result<Vec<u8>> {
    match format {
        Format::Jsonl => {
            let mut out = Vec::with_capacity(records.len() * 400);
            for r in records {
                serde_json::to_writer(&mut out, r).map_err(Error::internal)?;
                out.push(b'\n');
            }
            Ok(out)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::with_capacity(records.len() * 400));
            if header {
                w.write_record(CSV_HEADER).map_err(Error::internal)?;
            }
            for r in records {
                csv_row(&mut w, r).map_err(Error::internal)?;
            }
            w.into_inner().map_err(|e| Error::internal(e.to_string()))
        }
    }
}

/// Starts the export; the receiver yields the body in chunks, oldest record
/// first, up to the newest record at the time of the call. `held` (from
/// [`Db::long_read`]) is kept until the export ends.
pub fn start(
    db: &Db,
    held: LongRead,
    filter: repo::Filter,
    format: Format,
) -> mpsc::Receiver<Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    let pool = db.pool().clone();
    tokio::task::spawn_blocking(move || {
        let _held = held;
        let run = || -> Result<()> {
            let conn = pool.get()?;
            let up_to = repo::head(&conn)?.map(|(s, _)| s).unwrap_or(0);
            let mut after = 0;
            let mut first = true;
            loop {
                let mut rows =
                    repo::search(&conn, &filter, repo::Order::OldestAfter(after), CHUNK)?;
                rows.retain(|r| r.seq <= up_to);
                let Some(last) = rows.last() else { break };
                after = last.seq;
                let bytes = encode(format, &rows, first)?;
                first = false;
                if tx.blocking_send(Ok(bytes)).is_err() {
                    return Ok(()); // the client went away
                }
                if after >= up_to {
                    break;
                }
            }
            if first && format == Format::Csv {
                let _ = tx.blocking_send(encode(format, &[], true));
            }
            Ok(())
        };
        if let Err(e) = run() {
            tracing::error!(error = %e, "audit export failed part-way");
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}
