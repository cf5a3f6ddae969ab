//! The `metric_series` and `metric_samples` tables.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// The id of a series, created when new.
pub fn series_id(
    conn: &Connection,
    name: &str,
    reporter: &str,
    labels: &str,
    now: i64,
) -> Result<i64> {
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM metric_series WHERE name = ?1 AND reporter = ?2 AND labels = ?3",
        )?
        .query_row(params![name, reporter, labels], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO metric_series (name, reporter, labels, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![name, reporter, labels, now])?;
    Ok(conn.last_insert_rowid())
}

/// Rows per INSERT statement: one statement step per 100 samples instead
/// of per sample more than doubles ingest throughput.
const CHUNK: usize = 100;

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO metric_samples (series_id, at, value) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?)");
    }
    sql.push_str(" ON CONFLICT (series_id, at) DO UPDATE SET value = excluded.value");
    sql
}

/// Inserts (series, at, value) rows; a sample already stored for that
/// series and time is replaced.
pub fn insert_samples(conn: &Connection, rows: &[(i64, i64, f64)]) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut stmt = conn.prepare_cached(&insert_sql(chunk.len()))?;
        let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 3);
        for (s, at, v) in chunk {
            params.push(s);
            params.push(at);
            params.push(v);
        }
        stmt.execute(params.as_slice())?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SeriesRow {
    pub id: i64,
    pub name: String,
    pub reporter: String,
    pub labels: String,
}

pub fn series_named(
    conn: &Connection,
    name: &str,
    reporter: Option<&str>,
) -> Result<Vec<SeriesRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, reporter, labels FROM metric_series
         WHERE name = ?1 AND (?2 IS NULL OR reporter = ?2) ORDER BY id",
    )?;
    let rows = stmt.query_map(params![name, reporter], |r| {
        Ok(SeriesRow {
            id: r.get(0)?,
            name: r.get(1)?,
            reporter: r.get(2)?,
            labels: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Samples of a series in [from, to), oldest first, at most `limit`.
/// A series' samples in [from, to) folded into buckets of `bucket_ms`:
/// (bucket start, largest value in it), oldest first; empty buckets absent.
pub fn bucketed_max(
    conn: &Connection,
    series: i64,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> Result<Vec<(i64, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ?2 + ((at - ?2) / ?4) * ?4 AS b, MAX(value) FROM metric_samples
         WHERE series_id = ?1 AND at >= ?2 AND at < ?3 GROUP BY b ORDER BY b",
    )?;
    let rows = stmt.query_map(params![series, from, to, bucket_ms.max(1)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn samples(
    conn: &Connection,
    series: i64,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<(i64, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, value FROM metric_samples WHERE series_id = ?1 AND at >= ?2 AND at < ?3
         ORDER BY at LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![series, from, to, limit], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops samples older than `before`, series by series (each delete walks
/// the primary key), then series left without samples.
pub fn prune(conn: &Connection, before: i64) -> Result<usize> {
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM metric_series")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut removed = 0;
    let mut del =
        conn.prepare_cached("DELETE FROM metric_samples WHERE series_id = ?1 AND at < ?2")?;
    for id in ids {
        removed += del.execute(params![id, before])?;
    }
    conn.execute(
        "DELETE FROM metric_series WHERE NOT EXISTS (SELECT 1 FROM metric_samples WHERE series_id = metric_series.id)",
        [],
    )?;
    Ok(removed)
}

/// CROSS JOIN keeps the series as the outer loop, so each series
/// costs two primary-key lookups. Left to itself the planner chose to
/// walk every sample ever kept and run the subquery for each (16 ms
/// per dashboard view after a minute of load, growing with it).
const WORKFLOW_LATEST: &str =
    "SELECT json_extract(s.labels, '$.workflow') AS wf, s.name, m.value, m.at
         FROM metric_series s
         CROSS JOIN metric_samples m
           ON m.series_id = s.id
          AND m.at = (SELECT MAX(at) FROM metric_samples WHERE series_id = s.id AND at >= ?1)
         WHERE wf IS NOT NULL";

/// For series labelled `workflow` with samples since `since`: (workflow,
/// metric name, latest value, latest time).
pub fn workflow_latest(conn: &Connection, since: i64) -> Result<Vec<(String, String, f64, i64)>> {
    let mut stmt = conn.prepare_cached(WORKFLOW_LATEST)?;
    let rows = stmt.query_map([since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_latest_reads_the_newest_sample_of_each_workflow_series() {
        let conn = crate::db::migrate::in_memory();
        conn.execute_batch(
            r#"INSERT INTO metric_series (id, name, labels, reporter, created_at) VALUES
                 (1, 'error_rate', '{"workflow":"triage"}', 'r', 0),
                 (2, 'error_rate', '{"worker":"0"}', 'r', 0),
                 (3, 'latency', '{"workflow":"triage"}', 'r', 0);
               INSERT INTO metric_samples (series_id, at, value) VALUES
                 (1, 100, 0.5), (1, 200, 0.25), (2, 300, 0.9), (3, 50, 7.0);"#,
        )
        .unwrap();
        let mut rows = workflow_latest(&conn, 60).unwrap();
        rows.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            rows,
            vec![("triage".to_string(), "error_rate".to_string(), 0.25, 200)],
            "the series without a workflow label and the sample before `since` are left out"
        );
    }

    #[test]
    fn workflow_latest_never_walks_all_samples() {
        let conn = crate::db::migrate::in_memory();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {WORKFLOW_LATEST}"))
            .unwrap()
            .query_map([0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN m")),
            "{plan:#?}"
        );
    }
}
