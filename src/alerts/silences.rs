//! Silences: label matchers over a time window. A silenced alert is still
//! evaluated and shown; it is only not notified.

use serde::{Deserialize, Serialize};

use super::expr::Matcher;
use super::labels::Labels;
use crate::audit::{Audit, Context, Outcome};
use crate::db::silences::{self as repo, MatcherRow, SilenceRow};
use crate::db::{self, Db};
use crate::error::{Error, FieldErrors, Result};
use crate::names::valid_label_name;
use crate::timefmt;

pub const MAX_MATCHERS: usize = 20;
/// The longest a silence may last.
pub const MAX_SPAN_MS: i64 = 366 * 24 * 3_600_000;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"matchers": [{"name": "agent", "op": "=", "value": "planner-1"}], "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z", "comment": "planned maintenance"}))]
pub struct SilenceSpec {
    #[schema(min_items = 1, max_items = 20)]
    pub matchers: Vec<MatcherRow>,
    /// RFC 3339; now when absent.
    #[serde(default)]
    #[schema(value_type = Option<crate::formats::Timestamp>)]
    pub starts_at: Option<String>,
    /// RFC 3339, after `starts_at`.
    #[schema(value_type = crate::formats::Timestamp)]
    pub ends_at: String,
    #[schema(min_length = 1, max_length = 1000)]
    pub comment: String,
}

/// A stored matcher as the expression language's matcher (same anchored,
/// size-limited regexes; a missing label counts as "", as in Alertmanager).
pub fn compile(m: &MatcherRow) -> std::result::Result<Matcher, String> {
    Matcher::new(m.name.clone(), m.op, m.value.clone()).map_err(|e| e.to_string())
}

/// An active silence, compiled once per evaluation cycle.
pub struct Active {
    pub id: String,
    pub matchers: Vec<Matcher>,
}

impl Active {
    pub fn of(rows: &[SilenceRow]) -> Vec<Active> {
        rows.iter()
            .filter_map(|s| {
                let matchers = s
                    .matchers
                    .iter()
                    .map(compile)
                    .collect::<Result<Vec<_>, _>>();
                matchers.ok().map(|matchers| Active {
                    id: s.id.clone(),
                    matchers,
                })
            })
            .collect()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

fn time(field: &str, v: &str, e: &mut FieldErrors) -> Option<i64> {
    let t = timefmt::parse_rfc3339(v);
    if t.is_none() {
        e.insert(field.into(), "not an RFC 3339 time".into());
    }
    t
}

/// Validates a silence; returns (starts_at, ends_at) in ms.
pub fn validate(s: &SilenceSpec, now: i64) -> std::result::Result<(i64, i64), FieldErrors> {
    let mut e = FieldErrors::new();
    if s.matchers.is_empty() {
        e.insert("matchers".into(), "at least one matcher".into());
    }
    if s.matchers.len() > MAX_MATCHERS {
        e.insert(
            "matchers".into(),
            format!("at most {MAX_MATCHERS} matchers"),
        );
    }
    let mut compiled = Vec::with_capacity(s.matchers.len());
    for (i, m) in s.matchers.iter().enumerate() {
        if !valid_label_name(&m.name) {
            e.insert(
                format!("matchers[{i}].name"),
                "not a valid label name".into(),
            );
        }
        if m.value.chars().count() > 256 {
            e.insert(
                format!("matchers[{i}].value"),
                "at most 256 characters".into(),
            );
        }
        match compile(m) {
            Ok(c) => compiled.push(Some(c)),
            Err(msg) => {
                e.insert(format!("matchers[{i}]"), msg);
                compiled.push(None);
            }
        }
    }
    let empty = Labels::new();
    if !compiled.is_empty()
        && compiled
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.matches(&empty)))
    {
        e.insert(
            "matchers".into(),
            "these matchers match every alert; name at least one label value".into(),
        );
    }
    let comment = s.comment.trim();
    // The limit applies to what was sent, as documented; surrounding
    // spaces are trimmed off what is stored.
    if comment.is_empty() || s.comment.chars().count() > 1000 {
        e.insert("comment".into(), "say why, in 1-1000 characters".into());
    }
    let starts = match &s.starts_at {
        Some(v) => time("starts_at", v, &mut e),
        None => Some(now),
    };
    let ends = time("ends_at", &s.ends_at, &mut e);
    if let (Some(a), Some(b)) = (starts, ends) {
        if b <= a {
            e.insert("ends_at".into(), "must be after starts_at".into());
        } else if b <= now {
            e.insert("ends_at".into(), "is already past".into());
        } else if b - a > MAX_SPAN_MS {
            e.insert("ends_at".into(), "a silence lasts at most 366 days".into());
        }
    }
    match (starts, ends) {
        (Some(a), Some(b)) if e.is_empty() => Ok((a, b)),
        _ => Err(e),
    }
}

pub async fn create(
    audit: &Audit,
    ctx: &Context,
    author: &str,
    s: SilenceSpec,
) -> Result<SilenceRow> {
    let id = db::new_id();
    let event = ctx
        .event("silence.create", Outcome::Success)
        .target("silence", &id)
        .detail("matchers", &s.matchers)
        .detail("ends_at", &s.ends_at);
    let now = db::now_ms();
    let (starts_at, ends_at) = match validate(&s, now) {
        Ok(w) => w,
        Err(errors) => return Err(audit.fail(event, Error::fields(errors)).await),
    };
    let row = SilenceRow {
        id,
        matchers: s.matchers,
        starts_at,
        ends_at,
        created_by: author.to_string(),
        comment: s.comment.trim().to_string(),
        created_at: now,
        expired_at: None,
    };
    audit
        .apply(event, move |c| {
            repo::insert(c, &row)?;
            Ok(row)
        })
        .await
}

/// Ends a silence now; it stays in the history.
pub async fn expire(audit: &Audit, ctx: &Context, id: &str) -> Result<()> {
    let event = ctx
        .event("silence.expire", Outcome::Success)
        .target("silence", id);
    let id = id.to_string();
    audit
        .apply(event, move |c| {
            if repo::by_id(c, &id)?.is_none() {
                return Err(Error::NotFound(format!("silence {id}")));
            }
            if !repo::expire(c, &id, db::now_ms())? {
                return Err(Error::Conflict("this silence has already ended".into()));
            }
            Ok(())
        })
        .await
}

pub async fn list(
    db: &Db,
    current: bool,
    before: Option<String>,
    limit: u32,
) -> Result<Vec<SilenceRow>> {
    db.read(move |c| repo::list(c, db::now_ms(), current, before.as_deref(), limit))
        .await
}

pub async fn get(db: &Db, id: &str) -> Result<SilenceRow> {
    let i = id.to_string();
    db.read(move |c| repo::by_id(c, &i))
        .await?
        .ok_or_else(|| Error::NotFound(format!("silence {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn with_comment(comment: &str) -> SilenceSpec {
        SilenceSpec {
            matchers: vec![MatcherRow {
                name: "agent".into(),
                op: crate::label_match::MatchOp::Eq,
                value: "planner-1".into(),
            }],
            starts_at: None,
            ends_at: crate::timefmt::rfc3339(NOW + 3_600_000),
            comment: comment.into(),
        }
    }

    #[test]
    fn the_comment_limit_counts_what_was_sent() {
        assert!(validate(&with_comment(&"a".repeat(1000)), NOW).is_ok());
        assert!(validate(&with_comment(" maintenance "), NOW).is_ok());
        for bad in ["", "   ", &format!("{} ", "a".repeat(1000))] {
            let e = validate(&with_comment(bad), NOW).unwrap_err();
            assert!(e.contains_key("comment"), "{bad:?}: {e:?}");
        }
    }
}
