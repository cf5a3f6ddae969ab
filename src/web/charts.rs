//! Charts drawn on the server as SVG, readable without JavaScript: the
//! pages put the markup in as it is (every text in it is escaped here).
//!
//! - [`check_bar`]: one mark per history bucket, coloured by how its checks
//!   went, each with its time and counts as a tooltip.

use crate::db::check_rollups::RollupRow;

/// Escapes text for SVG (XML) content and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a bucket's checks went: every one passed, some failed, all failed,
/// or none ran.
fn class_of(b: &RollupRow) -> &'static str {
    match (b.checks, b.failures) {
        (0, _) => "none",
        (_, 0) => "ok",
        (c, f) if f >= c => "fail",
        _ => "partial",
    }
}

/// A check bar of `buckets` (oldest first), `width` × `height` px; marks
/// are spaced evenly with a 1 px gap. `label` names the chart for screen
/// readers; `time` formats a bucket's start for its tooltip.
pub fn check_bar(
    buckets: &[RollupRow],
    width: u32,
    height: u32,
    label: &str,
    time: impl Fn(i64) -> String,
) -> String {
    let n = buckets.len().max(1) as f64;
    let step = f64::from(width) / n;
    let w = (step - 1.0).max(1.0);
    let mut out = format!(
        r#"<svg class="check-bar" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{}">"#,
        esc(label)
    );
    for (i, b) in buckets.iter().enumerate() {
        let title = match b.checks {
            0 => format!("{}: no checks", time(b.start)),
            c => format!("{}: {} of {c} checks failed", time(b.start), b.failures),
        };
        out.push_str(&format!(
            r#"<rect class="{}" x="{:.1}" y="0" width="{w:.1}" height="{height}"><title>{}</title></rect>"#,
            class_of(b),
            i as f64 * step,
            esc(&title)
        ));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(start: i64, checks: i64, failures: i64) -> RollupRow {
        RollupRow {
            instance_id: "i".into(),
            bucket_ms: 60_000,
            start,
            checks,
            failures,
            p50_ms: None,
            p95_ms: None,
        }
    }

    #[test]
    fn a_check_bar_marks_each_bucket_by_how_it_went() {
        let svg = check_bar(
            &[b(0, 2, 0), b(1, 2, 1), b(2, 2, 2), b(3, 0, 0)],
            100,
            20,
            "checks <1h>",
            |t| format!("t{t}"),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        for class in ["ok", "partial", "fail", "none"] {
            assert_eq!(
                svg.matches(&format!(r#"class="{class}""#)).count(),
                1,
                "{class}"
            );
        }
        assert!(svg.contains("<title>t1: 1 of 2 checks failed</title>"));
        assert!(svg.contains("<title>t3: no checks</title>"));
        // Evenly spaced: four marks of 24 px in 100.
        assert!(svg.contains(r#"x="75.0" y="0" width="24.0""#), "{svg}");
        // Text is escaped.
        assert!(svg.contains(r#"aria-label="checks &lt;1h&gt;""#));
    }
}
