//! Named formats of request fields for the OpenAPI document.
//!
//! A field typed `String` in a request body says nothing to a client (or to
//! an OpenAPI-driven fuzzer) about what the domain will accept. Each type
//! here is a schema only — fields keep their Rust type and are still
//! validated by the domain — referenced with
//! `#[schema(value_type = crate::formats::X)]` / `#[param(value_type = ...)]`, so a
//! format is written once and appears once in `components.schemas`.
//!
//! The regular expressions restate the domain's validators; the tests below
//! check each one against its validator on every short string over an
//! alphabet of edge characters and at the length limits, so the two cannot
//! drift apart silently. Enumerations are built from the domain's own lists.

use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;

/// A string schema with a pattern and length bounds.
fn pattern(description: &str, pattern: &str, max_length: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .into()
}

/// A string schema that is one of `values`.
fn one_of(description: &str, values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// An RFC 3339 time.
fn timestamp() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339, e.g. 2026-01-31T12:00:00Z"))
        .into()
}

/// `schema`, or an empty string. The audit filters share their parsing with
/// the audit page's GET form, which submits an unused field empty; empty
/// means "no filter" there, and the document says so.
fn or_empty(description: &str, schema: RefOr<Schema>) -> RefOr<Schema> {
    let empty = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(0));
    AnyOfBuilder::new()
        .item(schema)
        .item(empty)
        .description(Some(description))
        .into()
}

/// Declares a schema-only type whose schema is `$schema`.
macro_rules! schema_format {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use schema_format;

/// Severities of alert rules (the alerting domain validates against it).
pub const SEVERITIES: &[&str] = &["critical", "major", "minor", "warning", "info"];

pub const USERNAME: &str = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$";
pub const LOWER_SNAKE: &str = r"^[a-z][a-z0-9_]{0,63}$";
pub const PERMISSION: &str = r"^[a-z][a-z0-9_]{0,63}(:[a-z][a-z0-9_]{0,63}){1,3}$";
pub const PERMISSION_PATTERN: &str =
    r"^(\*|[a-z][a-z0-9_]{0,63}:\*|[a-z][a-z0-9_]{0,63}(:[a-z][a-z0-9_]{0,63}){1,3})$";
pub const RESOURCE_GLOB: &str = r"^[A-Za-z0-9._:*?/-]{1,128}$";
pub const CLASSIFICATION: &str = r"^[a-z][a-z0-9_-]{0,31}$";
pub const ALERTING_NAME: &str = r"^[a-z][a-z0-9_-]{0,63}$";
pub const METRIC_NAME: &str = r"^[A-Za-z_:][A-Za-z0-9_:]{0,199}$";

schema_format!(
    /// A user or agent name.
    Username => pattern(
        "1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit",
        USERNAME,
        64,
    )
);

schema_format!(
    /// Agent types, role names, resource types.
    LowerSnake => pattern(
        "lower_snake: a lower-case letter, then lower-case letters, digits and '_'; at most 64",
        LOWER_SNAKE,
        crate::names::MAX_LOWER_SNAKE,
    )
);

schema_format!(
    /// A permission to check.
    Permission => pattern(
        "resource:action (up to four ':'-separated lower_snake parts), e.g. workflow:execute",
        PERMISSION,
        4 * crate::names::MAX_LOWER_SNAKE + 3,
    )
);

schema_format!(
    /// What a role grants.
    PermissionPattern => pattern(
        "a permission (resource:action), resource:* or *",
        PERMISSION_PATTERN,
        4 * crate::names::MAX_LOWER_SNAKE + 3,
    )
);

schema_format!(
    /// The resource ids a scoped assignment covers.
    ResourceGlob => pattern(
        "glob over resource ids: '*' any run, '?' one character; letters, digits and ._:*?/-",
        RESOURCE_GLOB,
        128,
    )
);

schema_format!(
    /// A key ring.
    Classification => pattern(
        "public, internal, confidential, restricted, or another ring: a lower-case letter, \
         then lower-case letters, digits, '_' or '-'; at most 32",
        CLASSIFICATION,
        32,
    )
);

schema_format!(
    /// Alert rules, channels and escalation policies.
    AlertingName => pattern(
        "1-64 lower-case letters, digits, '_' or '-', starting with a letter",
        ALERTING_NAME,
        64,
    )
);

schema_format!(
    /// A metric.
    MetricName => pattern(
        "Prometheus metric name",
        METRIC_NAME,
        crate::names::MAX_METRIC_NAME,
    )
);

schema_format!(
    /// An RFC 3339 time.
    Timestamp => timestamp()
);

/// A time as the filters take it: RFC 3339, a UTC date, or a span back
/// from now (`timefmt::parse_filter_time`).
fn filter_time() -> RefOr<Schema> {
    let date = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some(
            "a UTC date, e.g. 2026-01-31: its first moment as a start, the next midnight as an end",
        ));
    AnyOfBuilder::new()
        .item(timestamp())
        .item(date)
        .item(pattern(
            "a span back from now: minutes, hours or days, e.g. 90m, 24h, 7d",
            SPAN,
            5,
        ))
        .into()
}

/// `24h`: 1 to 9999 minutes, hours or days back from now.
pub const SPAN: &str = "^[1-9][0-9]{0,3}[mhd]$";

schema_format!(
    /// A time bound of the audit filters.
    TimeBound => or_empty("RFC 3339, a UTC date or a span back from now (24h); empty: no bound", filter_time())
);

schema_format!(
    /// The outcome filter of the audit trail.
    OutcomeFilter => or_empty(
        "only records with this outcome; empty: any",
        one_of(
            "outcome",
            &crate::audit::record::Outcome::ALL
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>(),
        ),
    )
);

schema_format!(
    /// Status filter of the trace list.
    SpanStatusFilter => or_empty("ok, error or unset; empty: any", one_of("status", &["ok", "error", "unset"]))
);

schema_format!(
    /// Minimum severity of the log search.
    LogSeverityFilter => or_empty(
        "the least severity shown; empty: any",
        one_of(
            "severity",
            &crate::db::logs::SEVERITIES.map(|(name, _)| name),
        ),
    )
);

schema_format!(
    /// A trace id.
    TraceId => or_empty("32 hex digits; empty: any", pattern("32 hex digits", "^[0-9a-fA-F]{32}$", 32))
);

schema_format!(
    /// Severity of an alert rule.
    Severity => one_of("severity", SEVERITIES)
);

schema_format!(
    /// Format of an audit export.
    ExportFormat => one_of(
        "jsonl (default) or csv",
        &crate::audit::export::Format::ALL.map(|f| f.extension()),
    )
);

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    /// Every string of length 0-2 over characters that sit on the edges of
    /// the formats, plus each long string of one valid character around
    /// `max`.
    fn probes(max: usize) -> Vec<String> {
        let alphabet: Vec<char> = "aZ0_-.:@*?/ é\u{0}".chars().collect();
        let mut out = vec![String::new()];
        for a in &alphabet {
            out.push(a.to_string());
            for b in &alphabet {
                out.push(format!("{a}{b}"));
                out.push(format!("a{a}{b}"));
                out.push(format!("a:{a}{b}"));
                out.push(format!("a:b:{a}{b}"));
            }
        }
        for n in [max - 1, max, max + 1] {
            out.push("a".repeat(n));
            out.push(format!("a:{}", "b".repeat(n)));
        }
        out
    }

    type Validator = fn(&str) -> bool;

    /// Each documented pattern, the longest string its validator takes, and
    /// the validator.
    const FORMATS: &[(&str, &str, usize, Validator)] = &[
        ("username", USERNAME, 64, |s| {
            crate::identity::validate_username(s).is_ok()
        }),
        ("lower_snake", LOWER_SNAKE, 64, crate::names::is_lower_snake),
        (
            "permission",
            PERMISSION,
            64,
            crate::rbac::patterns::valid_permission,
        ),
        (
            "permission pattern",
            PERMISSION_PATTERN,
            64,
            crate::rbac::patterns::valid_pattern,
        ),
        (
            "resource glob",
            RESOURCE_GLOB,
            128,
            crate::rbac::assignments::valid_glob,
        ),
        (
            "classification",
            CLASSIFICATION,
            32,
            crate::encryption::keyring::valid_classification,
        ),
        (
            "alerting name",
            ALERTING_NAME,
            64,
            crate::alerts::rules::valid_name,
        ),
        (
            "metric name",
            METRIC_NAME,
            crate::names::MAX_METRIC_NAME,
            crate::monitor::metrics::valid_name,
        ),
        ("span", SPAN, 5, crate::timefmt::is_span),
    ];

    #[test]
    fn patterns_agree_with_the_domain_validators() {
        for (name, pattern, max, validator) in FORMATS {
            let re = Regex::new(pattern).unwrap();
            for p in probes(*max) {
                assert_eq!(
                    re.is_match(&p),
                    validator(&p),
                    "{name}: pattern and validator disagree on {p:?}"
                );
            }
        }
    }
}
