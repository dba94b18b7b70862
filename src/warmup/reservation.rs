//! The ALB's capacity-unit (LCU) reservation, owned by the warm-up: an ALB scales itself, but
//! not in seconds, so a 09:30 step can meet load-balancer errors while the tasks are ready.
//! Pure decisions here; `crate::warmup::aws` reads the reservation and writes it.
//!
//! Rules (Elastic Load Balancing docs, "Request Load balancer Capacity Unit reservation";
//! ../shared/aws-facts.md, "ALB capacity reservation"): requests are filled first come first
//! served, usually within minutes but up to a few hours; no new request until the previous one
//! is provisioned or failed; increases any time, decreases only twice a day (AWS reports what is
//! left as `DecreaseRequestsRemaining`, a rolling count); capacity is spread evenly over the AZs
//! and billed until reset. So the warm-up:
//! - requests the day's size from `lead` before the day's first raise (long enough for a slow
//!   fulfilment) until its last window ends, increasing only, never decreasing intraday;
//! - resets once after the day's last spike, only while at least one decrease stays for the
//!   operator;
//! - never sends a request while one is pending, and retries a failed one (reported);
//! - owns only what it requested, and knows it by AWS's own stamp: after each request it reads
//!   the reservation back and records AWS's `LastModifiedTime` and whether a zone was still
//!   pending (or rebalancing). Ours: the same units with the recorded stamp, or a later stamp
//!   that AWS's own fulfilment explains (a zone was pending or rebalancing then or is now:
//!   fulfilment can take hours, and the stamp then moves with no request of ours). The
//!   operator's: a reservation with no record, or other units than recorded: left alone,
//!   reported, never reset. Anything else (the recorded units, a later stamp, nothing pending
//!   or rebalancing to explain it) cannot be classified: it pages (the run fails) and is neither
//!   reset nor increased, rather than being kept and billed unseen.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::warmup::Window;

/// How the reservation is sized and when it is held.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReservationSettings {
    pub enabled: bool,
    /// Requested this long before the day's first raise (fulfilment may take hours).
    pub lead_minutes: i64,
    /// The least reserved, with or without history (0: history only).
    pub floor_units: u32,
    /// Headroom over the history peak (the warm-up's safety factor).
    pub safety_factor: f64,
    /// Decreases left for the operator: the reset happens only while more than this remain.
    pub keep_decreases: i32,
}

impl Default for ReservationSettings {
    fn default() -> Self {
        ReservationSettings {
            enabled: false,
            lead_minutes: 120,
            floor_units: 0,
            safety_factor: 1.2,
            keep_decreases: 1,
        }
    }
}

/// A zone's state as `DescribeCapacityReservation` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneState {
    Pending,
    Provisioned,
    Failed,
    Rebalancing,
    Other(String),
}

/// The reservation as AWS reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// `MinimumLoadBalancerCapacity.CapacityUnits`; `None` = nothing reserved.
    pub units: Option<u32>,
    /// (AZ, state, reason).
    pub zones: Vec<(String, ZoneState, Option<String>)>,
    pub last_modified: Option<DateTime<Utc>>,
    pub decreases_remaining: Option<i32>,
}

/// What the warm-up requested last (its own SSM parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// 0 = a reset.
    pub units: u32,
    pub at: DateTime<Utc>,
    /// AWS's `LastModifiedTime` read back after the request (or after a later change AWS's
    /// fulfilment explained); absent in a record written before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_modified: Option<DateTime<Utc>>,
    /// A zone was pending or rebalancing when the stamp was read.
    #[serde(default)]
    pub transitioning: bool,
}

impl Record {
    /// A request just sent, before AWS's stamp is read back.
    pub fn requested(units: u32, at: DateTime<Utc>) -> Self {
        Record {
            units,
            at,
            aws_modified: None,
            transitioning: false,
        }
    }

    /// The record with AWS's stamp and zone states as read now.
    pub fn stamped(self, observed: &Observed) -> Self {
        Record {
            aws_modified: observed.last_modified,
            transitioning: transitioning(observed),
            ..self
        }
    }
}

/// Whether a zone is pending or rebalancing (AWS's own work in progress).
pub fn transitioning(observed: &Observed) -> bool {
    observed
        .zones
        .iter()
        .any(|(_, st, _)| matches!(st, ZoneState::Pending | ZoneState::Rebalancing))
}

/// Whose the observed reservation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum Ownership {
    /// Nothing reserved.
    Nothing,
    Ours,
    Operator {
        why: String,
    },
    Unclassified {
        why: String,
    },
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    Request {
        units: u32,
        why: String,
    },
    Reset {
        why: String,
    },
    Hold {
        why: String,
    },
    /// Not the warm-up's: left alone and reported.
    Operator {
        why: String,
    },
    /// The warm-up cannot tell whose it is: left alone, and the run fails (pages).
    Unclassified {
        why: String,
    },
}

/// For a record without AWS's stamp (written before the read-back was kept): how long after the
/// request AWS may stamp `LastModifiedTime` and the reservation still be ours (clock skew and
/// the call itself; an assumption, AWS documents no bound).
pub const OWNERSHIP_SLACK_SECONDS: i64 = 300;

/// The size: the highest per-minute `PeakLCUs` over the same windows of recent sessions x the
/// safety factor, at least the floor; with neither history nor floor, nothing.
pub fn size(peaks: &[f64], s: &ReservationSettings) -> (u32, String) {
    let peak = peaks
        .iter()
        .copied()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .reduce(f64::max);
    match peak {
        Some(p) => {
            let v = (p * s.safety_factor).ceil().min(f64::from(u32::MAX)) as u32;
            if v >= s.floor_units {
                (
                    v,
                    format!(
                        "PeakLCUs {p:.1} over {} recent sessions' windows x {} = {v}",
                        peaks.len(),
                        s.safety_factor
                    ),
                )
            } else {
                (
                    s.floor_units,
                    format!(
                        "PeakLCUs {p:.1} x {} = {v}, below the floor {}: {}",
                        s.safety_factor, s.floor_units, s.floor_units
                    ),
                )
            }
        }
        None => (
            s.floor_units,
            format!("no PeakLCUs history: the floor {}", s.floor_units),
        ),
    }
}

/// When the day needs the reservation: from `lead` before its first raise to the end of its
/// last window (`windows` are one day's, any order).
pub fn needed_between(
    windows: &[Window],
    s: &ReservationSettings,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first = windows.iter().map(|w| w.raise_at).min()?;
    let last = windows.iter().map(|w| w.restore_at).max()?;
    Some((first - Duration::minutes(s.lead_minutes), last))
}

/// Whose the observed reservation is, from the record of the warm-up's last request.
pub fn ownership(observed: &Observed, record: Option<&Record>) -> Ownership {
    let Some(units) = observed.units else {
        return Ownership::Nothing;
    };
    let Some(r) = record else {
        return Ownership::Operator {
            why: format!("a reservation of {units} units the warm-up has no record of requesting"),
        };
    };
    if r.units != units {
        return Ownership::Operator {
            why: format!("{units} units reserved, the warm-up requested {}", r.units),
        };
    }
    let stamp = |t: DateTime<Utc>| t.to_rfc3339();
    match (r.aws_modified, observed.last_modified) {
        (_, None) => Ownership::Ours,
        (Some(ours), Some(now)) if now == ours => Ownership::Ours,
        (Some(ours), Some(now)) if now > ours && (r.transitioning || transitioning(observed)) => {
            Ownership::Ours
        }
        (Some(ours), Some(now)) => Ownership::Unclassified {
            why: format!(
                "{units} units as requested, but modified {} after the warm-up's stamp {} with no pending or rebalancing zone to explain it",
                stamp(now),
                stamp(ours)
            ),
        },
        // A record from before the read-back was kept: the request's time and a slack.
        (None, Some(now)) if now <= r.at + Duration::seconds(OWNERSHIP_SLACK_SECONDS) => {
            Ownership::Ours
        }
        (None, Some(now)) => Ownership::Unclassified {
            why: format!(
                "{units} units as requested, modified {} after the request ({}) and no AWS stamp recorded",
                stamp(now),
                stamp(r.at)
            ),
        },
    }
}

/// The decision at `now`. `target`: the units the day needs now (`None` outside the needed
/// span); `day_over`: the day's last window has ended.
pub fn decide(
    observed: &Observed,
    record: Option<&Record>,
    target: Option<u32>,
    day_over: bool,
    s: &ReservationSettings,
) -> Decision {
    match ownership(observed, record) {
        Ownership::Operator { why } => {
            return Decision::Operator {
                why: format!("{why}: the operator's, left alone"),
            }
        }
        Ownership::Unclassified { why } => {
            return Decision::Unclassified {
                why: format!("{why}: neither reset nor increased; an operator must decide"),
            }
        }
        Ownership::Nothing | Ownership::Ours => {}
    }
    if let Some((az, _, _)) = observed
        .zones
        .iter()
        .find(|(_, st, _)| *st == ZoneState::Pending)
    {
        return Decision::Hold {
            why: format!("the previous request is still pending in {az}: no new request until it is provisioned or failed"),
        };
    }
    let current = observed.units.unwrap_or(0);
    let failed: Vec<String> = observed
        .zones
        .iter()
        .filter(|(_, st, _)| *st == ZoneState::Failed)
        .map(|(az, _, why)| format!("{az} ({})", why.as_deref().unwrap_or("no reason given")))
        .collect();
    match target.filter(|t| *t > 0) {
        None if !day_over => Decision::Hold {
            why: if current > 0 {
                format!("{current} units reserved; no decrease before the day's last spike")
            } else {
                "nothing needed yet".into()
            },
        },
        Some(t) if !failed.is_empty() => Decision::Request {
            units: t.max(current),
            why: format!(
                "the previous request failed in {}: requesting {} again",
                failed.join(", "),
                t.max(current)
            ),
        },
        Some(t) if current < t => Decision::Request {
            units: t,
            why: format!("the day needs {t} units, {current} reserved: increasing"),
        },
        Some(t) => Decision::Hold {
            why: format!("{current} units reserved, the day needs {t}: no intraday decrease"),
        },
        _ if current == 0 => Decision::Hold {
            why: "nothing reserved, nothing needed".into(),
        },
        _ => {
            let left = observed.decreases_remaining.unwrap_or(0);
            if left > s.keep_decreases {
                Decision::Reset {
                    why: format!(
                        "the day's last spike is over: releasing {current} units ({left} decreases left today)"
                    ),
                }
            } else {
                Decision::Hold {
                    why: format!(
                        "the day's last spike is over, but only {left} decrease(s) left today: kept for the operator, {current} units stay reserved (and billed) until the next run can reset"
                    ),
                }
            }
        }
    }
}

/// The `ReservationReady` metric: 1 when ready for the next spike or outside the needed span,
/// 0 inside it when the reserved units are below the target or not provisioned in every zone.
pub fn ready(observed: &Observed, target: Option<u32>) -> bool {
    match target {
        None | Some(0) => true,
        Some(t) => {
            observed.units.unwrap_or(0) >= t
                && !observed.zones.is_empty()
                && observed
                    .zones
                    .iter()
                    .all(|(_, st, _)| *st == ZoneState::Provisioned)
        }
    }
}
