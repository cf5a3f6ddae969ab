//! An alert's identity and text: its label set, fingerprint, annotation
//! templates, and label matchers (silences).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub type Labels = BTreeMap<String, String>;

pub use crate::formats::SEVERITIES;

/// The labels of an alert: the series' labels, then the rule's own labels,
/// then `alertname` and `severity` (which always win).
pub fn alert_labels(rule: &str, severity: &str, series: &Labels, rule_labels: &Labels) -> Labels {
    let mut out = series.clone();
    for (k, v) in rule_labels {
        out.insert(k.clone(), v.clone());
    }
    out.insert("alertname".into(), rule.into());
    out.insert("severity".into(), severity.into());
    out
}

/// A stable id of (rule, label set): the same series of the same rule
/// always gets the same fingerprint, which is also PagerDuty's `dedup_key`.
pub fn fingerprint(labels: &Labels) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `{{ $labels.name }}` and `{{ $value }}` placeholders. Unknown
/// labels become empty (as in Prometheus); anything else between braces is
/// left as written.
pub fn render(template: &str, labels: &Labels, value: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = after[..end].trim();
        if inner == "$value" {
            out.push_str(value);
        } else if let Some(name) = inner.strip_prefix("$labels.") {
            out.push_str(labels.get(name.trim()).map(String::as_str).unwrap_or(""));
        } else {
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn render_all(templates: &Labels, labels: &Labels, value: &str) -> Labels {
    templates
        .iter()
        .map(|(k, t)| (k.clone(), render(t, labels, value)))
        .collect()
}

/// True when a non-critical alert is muted by a firing critical one: they
/// share the `agent` and `instance` labels the muted alert has (at least
/// one of them).
pub fn inhibits(critical: &Labels, other: &Labels) -> bool {
    let keys = ["agent", "instance"];
    let present: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| other.contains_key(*k))
        .collect();
    !present.is_empty() && present.iter().all(|k| critical.get(*k) == other.get(*k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_placeholders() {
        let l = labels(&[("agent", "planner"), ("instance", "eu-1")]);
        assert_eq!(
            render(
                "{{ $labels.agent }}/{{$labels.instance}} at {{ $value }}",
                &l,
                "0.07"
            ),
            "planner/eu-1 at 0.07"
        );
        assert_eq!(
            render("{{ $labels.nope }}|{{ other }}|{{", &l, "1"),
            "|{{ other }}|{{"
        );
    }

    #[test]
    fn fingerprint_depends_on_every_label() {
        let a = labels(&[("alertname", "x"), ("agent", "a")]);
        let b = labels(&[("alertname", "x"), ("agent", "b")]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_eq!(fingerprint(&a).len(), 32);
        // Separators keep ("ab","c") apart from ("a","bc").
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")])),
            fingerprint(&labels(&[("a", "bc")]))
        );
    }

    #[test]
    fn inhibition_needs_a_shared_agent_or_instance() {
        let crit = labels(&[("agent", "a"), ("instance", "i")]);
        assert!(inhibits(&crit, &labels(&[("agent", "a")])));
        assert!(inhibits(
            &crit,
            &labels(&[("agent", "a"), ("instance", "i")])
        ));
        assert!(!inhibits(&crit, &labels(&[("agent", "b")])));
        assert!(!inhibits(
            &crit,
            &labels(&[("agent", "a"), ("instance", "j")])
        ));
        assert!(!inhibits(&crit, &labels(&[("workflow", "w")])));
    }
}
