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

/// True when any of `patterns` grants `permission`.
pub fn any_grants<'a>(patterns: impl IntoIterator<Item = &'a String>, permission: &str) -> bool {
    patterns.into_iter().any(|p| grants(p, permission))
}

#[cfg(test)]
mod tests {
    use super::grants;

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
