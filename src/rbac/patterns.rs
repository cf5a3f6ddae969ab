//! Permission patterns: `resource:action`, `resource:*`, or `*`.

/// True when `pattern` grants `permission`.
///
/// `resource:*` grants every action of the resource, including multi-part
/// ones (`crypto:*` grants `crypto:decrypt:restricted`); an exact pattern
/// grants only itself.
pub fn grants(pattern: &str, permission: &str) -> bool {
    if pattern == "*" || pattern == permission {
        return true;
    }
    match pattern.strip_suffix(":*") {
        Some(resource) => permission
            .strip_prefix(resource)
            .is_some_and(|rest| rest.starts_with(':')),
        None => false,
    }
}

/// A permission to check: `resource:action` (more `:`-separated parts
/// allowed, as in `crypto:decrypt:restricted`), each part lower_snake.
pub fn valid_permission(p: &str) -> bool {
    let parts: Vec<&str> = p.split(':').collect();
    (2..=4).contains(&parts.len()) && parts.iter().all(|s| crate::names::is_lower_snake(s))
}

/// A grantable pattern: a permission, `resource:*`, or `*`.
pub fn valid_pattern(p: &str) -> bool {
    p == "*"
        || valid_permission(p)
        || p.strip_suffix(":*")
            .is_some_and(|r| valid_permission(&format!("{r}:x")) && !r.contains(':'))
}

/// True when any of `patterns` grants `permission`.
pub fn any_grants<'a>(patterns: impl IntoIterator<Item = &'a String>, permission: &str) -> bool {
    patterns.into_iter().any(|p| grants(p, permission))
}

/// What both sets of patterns grant, as patterns: each pattern of one set
/// that the other set grants (so `*` against `knowledge:read
/// knowledge:write` gives those two, and `knowledge:*` against
/// `knowledge:read` gives `knowledge:read`), without repeats, `held`'s
/// first.
pub fn intersect(held: &[String], allowed: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let candidates = held
        .iter()
        .filter(|h| any_grants(allowed, h))
        .chain(allowed.iter().filter(|a| any_grants(held, a)));
    for p in candidates {
        if !out.iter().any(|o| grants(o, p)) {
            out.retain(|o| !grants(p, o));
            out.push(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grants;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn intersection_of_pattern_sets() {
        let i = |a: &[&str], b: &[&str]| super::intersect(&strings(a), &strings(b));
        assert_eq!(
            i(&["*"], &["kb:read", "kb:write"]),
            strings(&["kb:read", "kb:write"])
        );
        assert_eq!(i(&["kb:*"], &["kb:read", "db:read"]), strings(&["kb:read"]));
        assert_eq!(i(&["kb:read"], &["kb:*"]), strings(&["kb:read"]));
        assert_eq!(
            i(&["kb:*", "db:read"], &["*"]),
            strings(&["kb:*", "db:read"])
        );
        assert_eq!(i(&["kb:read", "kb:*"], &["kb:*"]), strings(&["kb:*"]));
        assert!(i(&["kb:read"], &["db:read"]).is_empty());
        assert!(i(&[], &["*"]).is_empty());
    }

    #[test]
    fn validation() {
        use super::{valid_pattern, valid_permission};
        for ok in [
            "workflow:execute",
            "crypto:decrypt:restricted",
            "workflow:update_status",
        ] {
            assert!(valid_permission(ok), "{ok}");
            assert!(valid_pattern(ok), "{ok}");
        }
        for ok in ["*", "workflow:*"] {
            assert!(valid_pattern(ok), "{ok}");
            assert!(!valid_permission(ok), "{ok}");
        }
        for bad in [
            "",
            "workflow",
            "Workflow:run",
            "workflow:",
            ":run",
            "a:b:c:d:e",
            "work flow:run",
            "*:*",
            "a:*:b",
            "a:b:*",
        ] {
            assert!(!valid_permission(bad), "{bad}");
            assert!(!valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn matching() {
        assert!(grants("*", "user:manage"));
        assert!(grants("user:manage", "user:manage"));
        assert!(grants("user:*", "user:manage"));
        assert!(grants("crypto:*", "crypto:decrypt:restricted"));
        assert!(!grants("user:*", "users:manage"));
        assert!(!grants("user:view", "user:manage"));
        assert!(!grants("user", "user:manage"));
    }
}
