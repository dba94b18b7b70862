//! Alarm evaluation on each tick, as the CloudWatch user guide documents it ("Using Amazon
//! CloudWatch alarms": "Evaluating an alarm", "Configuring how CloudWatch alarms treat missing
//! data", "How alarm state is evaluated when data is missing", "Avoiding premature transitions
//! to alarm state") (pure).
//!
//! On each tick CloudWatch "attempts to retrieve a higher number of data points than specified
//! by Evaluation Periods" (the evaluation range), then:
//! 1. no real point in the range: `missing` -> INSUFFICIENT_DATA, `ignore` -> the state is kept,
//!    `breaching` -> ALARM, `notBreaching` -> OK;
//! 2. at least N (Evaluation Periods) real points: the N most recent real points decide ("the
//!    value you set for how to treat missing data is not needed and is ignored");
//! 3. fewer than N: `breaching`/`notBreaching` fill the missing points "only as few times as
//!    possible": every real point plus N - real filled ones; `missing`/`ignore` use only the
//!    real points: M breaching -> ALARM; else the premature-alarm rule (the oldest real point is
//!    breaching, at least M periods old, and every newer real point breaching -> ALARM for
//!    `missing`; the worked example's IGNORE column keeps the state); else any non-breaching
//!    real point -> OK; else INSUFFICIENT_DATA (`missing`) or the state kept (`ignore`).
//!
//! At least M (Datapoints to Alarm) breaching -> ALARM, else OK. The two worked tables of the
//! guide pass exactly (tests below).
//!
//! ASSUMPTIONS (AWS documents neither): the evaluation range is N + 2 periods for every N (the
//! guide's example retrieves 5 for N = 3; "the exact number ... depends on the length of the
//! alarm period"), configurable in [`Settings`] so a proof can be run with a longer one; the
//! range's newest period is the last one that ended at or before the tick, and a standard
//! alarm is evaluated once a minute (a high-resolution one every period) at `tick_offset`
//! seconds past the minute.

use serde::Serialize;

use super::{AlarmDefinition, Comparison, TreatMissing};

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Ok,
    Alarm,
    InsufficientData,
}

/// How the ticks and the evaluation range are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Periods retrieved beyond N (the guide's example: 2).
    pub range_extra_periods: u32,
    /// Seconds past each minute at which standard alarms are evaluated.
    pub tick_offset: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            range_extra_periods: 2,
            tick_offset: 0,
        }
    }
}

impl Settings {
    /// Seconds between two evaluations of an alarm of this period.
    pub fn tick_seconds(period: u32) -> u32 {
        period.min(60)
    }

    /// The evaluation range at `tick`: period starts, oldest first.
    pub fn range(&self, def: &AlarmDefinition, tick: i64) -> Vec<i64> {
        let p = i64::from(def.period.max(1));
        let newest_end = tick.div_euclid(p) * p;
        let n = i64::from(def.evaluation_periods + self.range_extra_periods);
        (1..=n).rev().map(|k| newest_end - k * p).collect()
    }
}

impl Comparison {
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
}

/// The state decided from one evaluation range: `points` oldest first, each `Some(breaching)`
/// or `None` (missing). `current` is the state before this tick.
pub fn decide(
    points: &[Option<bool>],
    n: usize,
    m: usize,
    missing: TreatMissing,
    current: State,
) -> State {
    let real: Vec<bool> = points.iter().flatten().copied().collect();
    let verdict = |breaching: usize| {
        if breaching >= m {
            State::Alarm
        } else {
            State::Ok
        }
    };
    if real.is_empty() {
        return match missing {
            TreatMissing::Missing => State::InsufficientData,
            TreatMissing::Ignore => current,
            TreatMissing::Breaching => State::Alarm,
            TreatMissing::NotBreaching => State::Ok,
        };
    }
    if real.len() >= n {
        return verdict(real[real.len() - n..].iter().filter(|b| **b).count());
    }
    let breaching = real.iter().filter(|b| **b).count();
    match missing {
        TreatMissing::Breaching => verdict(breaching + (n - real.len())),
        TreatMissing::NotBreaching => verdict(breaching),
        TreatMissing::Missing | TreatMissing::Ignore => {
            if breaching >= m {
                return State::Alarm;
            }
            if breaching == real.len() {
                // Premature-alarm rule: the oldest real point's age, in periods (newest = 1).
                let oldest = points.iter().position(Option::is_some).unwrap_or(0);
                if points.len() - oldest >= m {
                    return if missing == TreatMissing::Missing {
                        State::Alarm
                    } else {
                        current
                    };
                }
                return if missing == TreatMissing::Missing {
                    State::InsufficientData
                } else {
                    current
                };
            }
            State::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `0` non-breaching, `X` breaching, `-` missing; oldest first, as the guide writes them.
    fn points(s: &str) -> Vec<Option<bool>> {
        s.split_whitespace()
            .map(|p| match p {
                "0" => Some(false),
                "X" => Some(true),
                _ => None,
            })
            .collect()
    }

    /// One row of a worked table: MISSING, IGNORE, BREACHING, NOT BREACHING; `keep` for
    /// "Retain current state" (checked from both OK and ALARM).
    fn row(n: usize, m: usize, data: &str, expected: [&str; 4]) {
        let modes = [
            TreatMissing::Missing,
            TreatMissing::Ignore,
            TreatMissing::Breaching,
            TreatMissing::NotBreaching,
        ];
        for (mode, want) in modes.iter().zip(expected) {
            for current in [State::Ok, State::Alarm] {
                let got = decide(&points(data), n, m, *mode, current);
                let want = match want {
                    "OK" => State::Ok,
                    "ALARM" => State::Alarm,
                    "INSUFFICIENT" => State::InsufficientData,
                    _ => current,
                };
                assert_eq!(got, want, "{m} of {n}, {data}, {mode:?}, from {current:?}");
            }
        }
    }

    /// The first worked table: Datapoints to Alarm and Evaluation Periods both 3, the 5 most
    /// recent data points retrieved.
    #[test]
    fn the_guides_first_table_three_of_three() {
        row(3, 3, "0 - X - X", ["OK", "OK", "OK", "OK"]);
        row(3, 3, "0 - - - -", ["OK", "OK", "OK", "OK"]);
        row(3, 3, "- - - - -", ["INSUFFICIENT", "keep", "ALARM", "OK"]);
        row(3, 3, "0 X X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]);
        row(3, 3, "- - - - X", ["INSUFFICIENT", "keep", "ALARM", "OK"]);
        row(3, 3, "X - - - -", ["ALARM", "keep", "ALARM", "OK"]);
    }

    /// The second worked table: 2 out of 3.
    #[test]
    fn the_guides_second_table_two_of_three() {
        row(3, 2, "0 - X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]);
        row(3, 2, "0 0 X 0 X", ["ALARM", "ALARM", "ALARM", "ALARM"]);
        row(3, 2, "0 - X - -", ["OK", "OK", "ALARM", "OK"]);
        row(3, 2, "- - - - 0", ["OK", "OK", "ALARM", "OK"]);
        row(3, 2, "- - - - X", ["INSUFFICIENT", "keep", "ALARM", "OK"]);
    }

    #[test]
    fn the_n_most_recent_real_points_decide_when_there_are_enough() {
        // A late newest period is skipped over, not read as good.
        assert_eq!(
            decide(
                &points("0 X X - -"),
                2,
                2,
                TreatMissing::NotBreaching,
                State::Ok
            ),
            State::Alarm
        );
        assert_eq!(
            decide(
                &points("X 0 X 0 -"),
                3,
                2,
                TreatMissing::Breaching,
                State::Ok
            ),
            State::Ok
        );
    }
}
