//! Validation of the gateway's settings of an MCP server (SPEC §14):
//! the per-principal limit, the per-tool settings and the static headers
//! sent upstream. Pure: field errors out, nothing stored here.

use std::collections::BTreeMap;

use crate::encryption::keyring::valid_classification;
use crate::error::FieldErrors;
use crate::rbac::patterns;

use super::policy::Tools;

/// Tools with settings, at most.
pub const MAX_TOOLS: usize = 1000;
/// A tool name's length, at most (MCP names are short identifiers).
pub const MAX_TOOL_NAME: usize = 128;
/// Limits are per minute, between 1 and this.
pub const MAX_PER_MINUTE: u32 = 1_000_000;
/// Upstream headers, at most, and their sizes.
pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_NAME: usize = 64;
pub const MAX_HEADER_VALUE: usize = 4096;
/// The classification upstream headers are sealed under.
pub const HEADERS_CLASSIFICATION: &str = "restricted";
/// The classification recorded arguments are sealed under when a tool's
/// settings name none.
pub const DEFAULT_ARGUMENTS_CLASSIFICATION: &str = "confidential";

/// Headers the gateway itself owns: the transport's framing, hop-by-hop
/// headers and MCP's own; a static header may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "mcp-session-id",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "traceparent",
    "tracestate",
];

/// A per-minute limit, when given.
pub fn check_limit(field: &str, limit: Option<u32>, errors: &mut FieldErrors) {
    if limit.is_some_and(|n| !(1..=MAX_PER_MINUTE).contains(&n)) {
        errors.insert(
            field.into(),
            format!("must be between 1 and {MAX_PER_MINUTE} (leave it out for no limit)"),
        );
    }
}

/// Per-tool settings.
pub fn check_tools(tools: &Tools, errors: &mut FieldErrors) {
    if tools.len() > MAX_TOOLS {
        errors.insert("tools".into(), format!("at most {MAX_TOOLS} tools"));
        return;
    }
    for (name, t) in tools {
        let shown = crate::names::shown(name);
        if name.is_empty()
            || name.chars().count() > MAX_TOOL_NAME
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            errors.insert(
                format!("tools[{shown:?}]"),
                format!("a tool name is 1-{MAX_TOOL_NAME} characters without spaces or control characters"),
            );
            continue;
        }
        if let Some(p) = &t.permission {
            if !patterns::valid_permission(p) {
                errors.insert(
                    format!("tools[{shown:?}].permission"),
                    format!(
                        "{:?} is not a permission (resource:action)",
                        crate::names::shown(p)
                    ),
                );
            }
        }
        if let Some(c) = &t.classification {
            if !valid_classification(c) {
                errors.insert(
                    format!("tools[{shown:?}].classification"),
                    format!("{:?} is not a classification name", crate::names::shown(c)),
                );
            }
        }
        check_limit(
            &format!("tools[{shown:?}].calls_per_minute"),
            t.calls_per_minute,
            errors,
        );
    }
}

/// The classifications the settings seal recorded arguments under (each
/// must have a key ring).
pub fn argument_classifications(tools: &Tools) -> Vec<String> {
    let mut out: Vec<String> = tools
        .values()
        .filter(|t| t.record_arguments)
        .map(|t| {
            t.classification
                .clone()
                .unwrap_or_else(|| DEFAULT_ARGUMENTS_CLASSIFICATION.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Static headers for the upstream. Names are HTTP tokens, compared
/// without regard to case; values are visible ASCII (a credential), never
/// a line break.
pub fn check_headers(headers: &BTreeMap<String, String>, errors: &mut FieldErrors) {
    if headers.len() > MAX_HEADERS {
        errors.insert(
            "upstream_headers".into(),
            format!("at most {MAX_HEADERS} headers"),
        );
        return;
    }
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in headers {
        let field = format!("upstream_headers[{:?}]", crate::names::shown(name));
        let lower = name.to_ascii_lowercase();
        if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.bytes().all(is_tchar) {
            errors.insert(
                field,
                format!("a header name is 1-{MAX_HEADER_NAME} letters, digits or !#$%&'*+-.^_`|~"),
            );
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            errors.insert(field, format!("{name} is set by the gateway itself"));
        } else if seen.contains(&lower) {
            errors.insert(field, "given twice (header names ignore case)".into());
        } else if value.is_empty()
            || value.len() > MAX_HEADER_VALUE
            || value.trim() != value
            || !value
                .bytes()
                .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
        {
            errors.insert(
                field,
                format!("a value is 1-{MAX_HEADER_VALUE} visible ASCII characters, without surrounding spaces"),
            );
        }
        seen.push(lower);
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::policy::ToolSettings;

    fn tools(entries: &[(&str, ToolSettings)]) -> Tools {
        entries
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect()
    }

    #[test]
    fn tool_settings() {
        let good = tools(&[
            (
                "read_knowledge",
                ToolSettings {
                    permission: Some("knowledge:read".into()),
                    record_arguments: true,
                    classification: Some("confidential".into()),
                    calls_per_minute: Some(10),
                },
            ),
            ("search", ToolSettings::default()),
        ]);
        let mut e = FieldErrors::new();
        check_tools(&good, &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(argument_classifications(&good), ["confidential"]);

        let bad = tools(&[
            ("", ToolSettings::default()),
            ("two words", ToolSettings::default()),
            (
                "a",
                ToolSettings {
                    permission: Some("knowledge:*".into()),
                    ..Default::default()
                },
            ),
            (
                "b",
                ToolSettings {
                    classification: Some("Not A Name".into()),
                    ..Default::default()
                },
            ),
            (
                "c",
                ToolSettings {
                    calls_per_minute: Some(0),
                    ..Default::default()
                },
            ),
        ]);
        let mut e = FieldErrors::new();
        check_tools(&bad, &mut e);
        let mut fields: Vec<&String> = e.keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "tools[\"\"]",
                "tools[\"a\"].permission",
                "tools[\"b\"].classification",
                "tools[\"c\"].calls_per_minute",
                "tools[\"two words\"]"
            ]
        );
    }

    #[test]
    fn upstream_headers() {
        let ok: BTreeMap<String, String> = [
            ("Authorization".to_string(), "Bearer abc.def".to_string()),
            ("X-Api-Key".to_string(), "k-123".to_string()),
        ]
        .into();
        let mut e = FieldErrors::new();
        check_headers(&ok, &mut e);
        assert!(e.is_empty(), "{e:?}");

        for (name, value) in [
            ("Bad Name", "v"),
            ("Host", "evil.example.com"),
            ("mcp-session-id", "x"),
            ("X-Split", "a\r\nInjected: yes"),
            ("X-Empty", ""),
            ("X-Padded", " v"),
            ("X-Unicode", "wert\u{e9}"),
        ] {
            let h: BTreeMap<String, String> = [(name.to_string(), value.to_string())].into();
            let mut e = FieldErrors::new();
            check_headers(&h, &mut e);
            assert_eq!(e.len(), 1, "{name}: {value:?}");
        }
        let twice: BTreeMap<String, String> = [
            ("X-Key".to_string(), "a".to_string()),
            ("x-key".to_string(), "b".to_string()),
        ]
        .into();
        let mut e = FieldErrors::new();
        check_headers(&twice, &mut e);
        assert_eq!(e.len(), 1);
    }
}
