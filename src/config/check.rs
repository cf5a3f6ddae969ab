//! One way to check a configuration value: against its range, with the
//! message written from the range, under the key's full name.

use std::fmt::Display;
use std::ops::RangeInclusive;

use super::ConfigError;
use crate::net::rules::parse_network;

pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// `value` within `range`: "must be between 1 and 1440" otherwise.
pub(super) fn within<T: PartialOrd + Display>(
    key: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// `value` at most `max`, where 0 has a meaning of its own (`zero`: "keep
/// forever", "off"): "must be between 0 (keep forever) and 36500" otherwise.
pub(super) fn zero_or_up_to<T: PartialOrd + Display>(
    key: &'static str,
    value: T,
    max: T,
    zero: &str,
) -> Result<(), ConfigError> {
    if value <= max {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be between 0 ({zero}) and {max}"),
        ))
    }
}

/// A list of networks (CIDR) or addresses, at most `max` of them; an entry
/// that does not parse is named by its position.
pub(super) fn networks(
    key: &'static str,
    entries: &[String],
    max: usize,
) -> Result<(), ConfigError> {
    if entries.len() > max {
        return Err(invalid(key, format!("at most {max} entries")));
    }
    for (i, entry) in entries.iter().enumerate() {
        parse_network(entry).map_err(|m| invalid(key, format!("entry {}: {m}", i + 1)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_range() {
        assert!(within("a.b", 5u32, 1..=10).is_ok());
        let e = within("a.b", 0u64, 1..=1440).unwrap_err().to_string();
        assert_eq!(
            e,
            "configuration error: key `a.b`: must be between 1 and 1440"
        );
        assert!(zero_or_up_to("x", 0u32, 10, "off").is_ok());
        let e = zero_or_up_to("x", 11u32, 10, "off")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("must be between 0 (off) and 10"), "{e}");
        let e = networks("n", &["10.0.0.0/8".into(), "x".into()], 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 2"), "{e}");
        assert!(networks("n", &vec!["10.0.0.1".into(); 3], 2).is_err());
    }
}
