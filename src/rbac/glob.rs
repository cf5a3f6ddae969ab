//! Glob patterns for scoped assignments: `*` matches any run of characters
//! (including none), `?` exactly one; everything else matches itself.

pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `pattern` matches at least one text that starts with `prefix`
/// (a scope covering *some* resource under it): the prefix is read against
/// the pattern until the pattern runs out of fixed characters; a `*` can
/// take the rest of the prefix, and whatever the pattern asks for after
/// the prefix can be chosen.
pub fn glob_may_match_under(pattern: &str, prefix: &str) -> bool {
    let mut p = pattern.chars();
    for c in prefix.chars() {
        match p.next() {
            Some('*') => return true,
            Some('?') => {}
            Some(x) if x == c => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{glob_match, glob_may_match_under};

    #[test]
    fn globs_under_a_prefix() {
        for (pattern, under) in [
            ("kb/*", true),
            ("kb/search", true),
            ("k?/search", true),
            ("*", true),
            ("k*", true),
            ("kb/", true),
            ("kb", false),
            ("other/*", false),
            ("kbx/*", false),
        ] {
            assert_eq!(glob_may_match_under(pattern, "kb/"), under, "{pattern}");
        }
        // Each answer agrees with a witness: the prefix plus a suffix the
        // pattern accepts.
        assert!(glob_match("k?/search", "kb/search"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("billing-*", "billing-42"));
        assert!(glob_match("billing-*", "billing-"));
        assert!(!glob_match("billing-*", "payroll-1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("b?ll*-4?", "bill-x-42"));
        assert!(!glob_match("b?ll", "bll"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}
