//! OTLP resources stored once (`telemetry_resources`, migration 0027) and
//! referenced by spans and log records.

use rusqlite::{params, Connection};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Result;

/// Resource ids for the rows of one write. The rows of an export share
/// their resource, so the last one is remembered: most rows cost a
/// comparison, not a lookup.
#[derive(Default)]
pub struct Resources {
    last: Option<(Value, i64)>,
}

impl Resources {
    /// The id of `resource`, stored now if new; seen at `now`.
    pub fn of(&mut self, conn: &Connection, resource: &Value, now: i64) -> Result<i64> {
        if let Some((v, id)) = &self.last {
            if v == resource {
                return Ok(*id);
            }
        }
        let json = resource.to_string();
        let digest = Sha256::digest(json.as_bytes());
        let id = conn
            .prepare_cached(
                "INSERT INTO telemetry_resources (digest, attributes, last_seen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (digest) DO UPDATE SET last_seen = excluded.last_seen
                 RETURNING id",
            )?
            .query_row(params![digest.as_slice(), json, now], |r| r.get(0))?;
        self.last = Some((resource.clone(), id));
        Ok(id)
    }
}

/// Drops resources no row received at or after `before` (ms) refers to.
pub fn prune(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM telemetry_resources WHERE last_seen < ?1",
        params![before],
    )?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::db::spans::{self, SpanRow};

    fn span(id: &str, resource: serde_json::Value) -> SpanRow {
        SpanRow {
            trace_id: "5b8efff798038103d269b633813fc60c".into(),
            span_id: id.into(),
            parent_span_id: None,
            service: "planner".into(),
            name: "run".into(),
            kind: 2,
            start_ns: 1,
            end_ns: 2,
            status: 0,
            status_message: String::new(),
            attributes: json!({}),
            events: json!([]),
            resource,
            scope: String::new(),
            dropped_attributes: 0,
            entry: true,
        }
    }

    #[test]
    fn a_resource_is_stored_once_read_with_its_rows_and_pruned_with_them() {
        let conn = crate::db::migrate::in_memory();
        let big =
            json!({"service.name": "planner", "host.name": "h1", "telemetry.sdk.language": "rust"});
        let other = json!({"service.name": "planner", "host.name": "h2"});
        spans::insert(
            &conn,
            &[
                span("0000000000000001", big.clone()),
                span("0000000000000002", big.clone()),
            ],
            "a",
            1_000,
        )
        .unwrap();
        spans::insert(
            &conn,
            &[
                span("0000000000000003", big.clone()),
                span("0000000000000004", other.clone()),
            ],
            "a",
            120_000,
        )
        .unwrap();
        let count = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM telemetry_resources", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&conn), 2);
        let back = spans::trace(&conn, "5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back[0].resource, big);
        assert_eq!(back[3].resource, other);
        // Kept while a row received after the cutoff refers to it.
        super::prune(&conn, 60_000).unwrap();
        assert_eq!(count(&conn), 2);
        super::prune(&conn, 180_000).unwrap();
        assert_eq!(count(&conn), 0);
    }
}
