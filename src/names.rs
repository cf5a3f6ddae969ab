//! Name formats shared by several domains, defined once here (and
//! documented once in the OpenAPI document, `formats`): lower_snake (agent
//! types, role names, the parts of a permission, the resource types of
//! scoped assignments), the names of alerting objects (rules, channels,
//! policies; channels are notification's, rules alerting's) and label
//! names (metrics' and silences').

/// How much of a caller's string a message shows back.
pub const SHOWN_CHARS: usize = 64;

/// The first [`SHOWN_CHARS`] characters of `s`: what an error message or
/// an audit detail quotes of a value a caller sent, so a huge value cannot
/// make a huge message.
pub fn shown(s: &str) -> String {
    s.chars().take(SHOWN_CHARS).collect()
}

/// Longest lower_snake name.
pub const MAX_LOWER_SNAKE: usize = 64;

/// lower_snake: a lower-case ASCII letter, then lower-case letters, digits
/// and `_`; 1 to [`MAX_LOWER_SNAKE`] characters.
pub fn is_lower_snake(s: &str) -> bool {
    (1..=MAX_LOWER_SNAKE).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Names of alert rules, channels and escalation policies: lowercase
/// letters, digits, `_`, `-`, starting with a letter, at most 64
/// characters.
pub fn valid_alerting_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && n.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub const ALERTING_NAME_RULE: &str =
    "use 1-64 lowercase letters, digits, '_' or '-', starting with a letter";

/// Longest metric name.
pub const MAX_METRIC_NAME: usize = 200;

/// Longest label name.
pub const MAX_LABEL_NAME: usize = 64;

/// Prometheus label name, not reserved (`__` prefix).
pub fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    (1..=MAX_LABEL_NAME).contains(&n.len())
        && !n.starts_with("__")
        && c.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_snake() {
        for ok in ["a", "knowledge_base", "a1_", &"a".repeat(64)] {
            assert!(is_lower_snake(ok), "{ok}");
        }
        for bad in ["", "1a", "_a", "A", "a-b", "a b", "é", &"a".repeat(65)] {
            assert!(!is_lower_snake(bad), "{bad}");
        }
    }
}
