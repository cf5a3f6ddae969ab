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

#[cfg(test)]
mod tests {
    use super::grants;

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
