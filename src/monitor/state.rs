//! An instance's health state machine: results move the state only after
//! the configured number of consecutive results (README, "Monitoring").
//!
//! - `failure_threshold` consecutive failures make it `unhealthy`;
//! - from `unknown` or `unhealthy`, `success_threshold` consecutive
//!   successes make it `healthy` (or `degraded` when the last was slow);
//! - while up, `failure_threshold` consecutive slow successes (slower than
//!   `degraded_latency_ms`) make it `degraded`, and `success_threshold`
//!   consecutive fast ones make it `healthy` again.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Unknown,
    Healthy,
    Degraded,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }

    pub fn parse(s: &str) -> Health {
        match s {
            "healthy" => Health::Healthy,
            "degraded" => Health::Degraded,
            "unhealthy" => Health::Unhealthy,
            _ => Health::Unknown,
        }
    }
}

/// One check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fail,
    /// Answered as expected; `slow` when over the degraded latency.
    Ok {
        slow: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Streaks {
    pub fail: i64,
    pub ok: i64,
    pub slow: i64,
    pub fast: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub failure: i64,
    pub success: i64,
}

/// The state after `verdict`, and the updated streaks.
pub fn advance(state: Health, s: Streaks, verdict: Verdict, t: Thresholds) -> (Health, Streaks) {
    match verdict {
        Verdict::Fail => {
            let s = Streaks {
                fail: s.fail + 1,
                ..Streaks::default()
            };
            let next = if s.fail >= t.failure {
                Health::Unhealthy
            } else {
                state
            };
            (next, s)
        }
        Verdict::Ok { slow } => {
            let s = Streaks {
                fail: 0,
                ok: s.ok + 1,
                slow: if slow { s.slow + 1 } else { 0 },
                fast: if slow { 0 } else { s.fast + 1 },
            };
            let next = match state {
                Health::Unknown | Health::Unhealthy if s.ok >= t.success => {
                    if slow {
                        Health::Degraded
                    } else {
                        Health::Healthy
                    }
                }
                Health::Healthy if s.slow >= t.failure => Health::Degraded,
                Health::Degraded if s.fast >= t.success => Health::Healthy,
                other => other,
            };
            (next, s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        failure: 3,
        success: 2,
    };

    fn run(start: Health, verdicts: &[Verdict]) -> Vec<Health> {
        let mut state = start;
        let mut s = Streaks::default();
        verdicts
            .iter()
            .map(|v| {
                (state, s) = advance(state, s, *v, T);
                state
            })
            .collect()
    }

    const OK: Verdict = Verdict::Ok { slow: false };
    const SLOW: Verdict = Verdict::Ok { slow: true };
    const FAIL: Verdict = Verdict::Fail;
    use Health::*;

    #[test]
    fn states_change_only_after_the_thresholds() {
        assert_eq!(run(Unknown, &[OK, OK]), [Unknown, Healthy]);
        assert_eq!(
            run(Unknown, &[FAIL, FAIL, FAIL]),
            [Unknown, Unknown, Unhealthy]
        );
        assert_eq!(
            run(Healthy, &[FAIL, FAIL, OK, FAIL, FAIL, FAIL]),
            [Healthy, Healthy, Healthy, Healthy, Healthy, Unhealthy]
        );
        assert_eq!(
            run(Unhealthy, &[OK, FAIL, OK, OK]),
            [Unhealthy, Unhealthy, Unhealthy, Healthy]
        );
        assert_eq!(
            run(Healthy, &[SLOW, SLOW, SLOW, OK, OK]),
            [Healthy, Healthy, Degraded, Degraded, Healthy]
        );
        assert_eq!(run(Unhealthy, &[SLOW, SLOW]), [Unhealthy, Degraded]);
        assert_eq!(
            run(Degraded, &[FAIL, FAIL, FAIL]),
            [Degraded, Degraded, Unhealthy]
        );
    }
}
