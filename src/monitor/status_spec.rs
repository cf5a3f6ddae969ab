//! `expected_status`: which HTTP statuses count as up, written as codes
//! and ranges (`200-399`, `200,204`, `200-299,301`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSpec(Vec<(u16, u16)>);

impl StatusSpec {
    pub fn parse(text: &str) -> Result<StatusSpec, String> {
        let err = || {
            "must be status codes or ranges between 100 and 599, comma-separated (e.g. 200-399 or 200,204)"
                .to_string()
        };
        if text.is_empty() || text.len() > 200 {
            return Err(err());
        }
        let mut out = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let lo: u16 = lo.parse().map_err(|_| err())?;
            let hi: u16 = hi.parse().map_err(|_| err())?;
            if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
                return Err(err());
            }
            out.push((lo, hi));
        }
        Ok(StatusSpec(out))
    }

    pub fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_ranges() {
        let s = StatusSpec::parse("200-299, 301").unwrap();
        assert!(s.accepts(204) && s.accepts(301) && !s.accepts(302) && !s.accepts(500));
        for bad in ["", "abc", "200-", "99", "600", "300-200", "200;204"] {
            assert!(StatusSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
