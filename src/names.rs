//! The lower_snake name format shared by several domains: agent types,
//! role names, the parts of a permission and the resource types of scoped
//! assignments all follow it, so it is defined once here (and documented
//! once in the OpenAPI document, `web::formats`).

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
