//! How fast each deployment-group alarm reaches ALARM on a bad version, from the CloudWatch
//! evaluator ([`crate::alarms`]) on the bad version's metric streams (pure). Nothing here is
//! arithmetic about alarms: each number is the first ALARM tick of an evaluated run minus the
//! failure's onset.
//!
//! Runs per alarm and bad version: both walked rates (the quietest the docs declare and 50x),
//! the deployment created at every 5th second of its minute, and every publication order of
//! [`walk::publication_orders`] plus seeded per-minute delays over the assumed range.
//! `nominal` = the slowest run with every delay at 90 s; `worst` = the slowest run of all.

use serde::Serialize;

use crate::alarms::data::Delays;
use crate::alarms::evaluate::{Settings, State};
use crate::alarms::proof::{PerClass, Sampling, Task, Version};
use crate::alarms::AlarmDefinition;
use crate::timing::model::TimingModel;
use crate::timing::walk::{self, Scenario, Timeline};

/// What an alarm watches, recognised by the metrics it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Family {
    Errors,
    Latency,
    Unhealthy,
}

/// The family of an alarm, or `None` for one no bad version here exercises.
pub fn family(a: &AlarmDefinition) -> Option<Family> {
    let reads = |name: &str| a.metrics().any(|m| m.metric.name == name);
    if reads("HTTPCode_Target_5XX_Count") {
        Some(Family::Errors)
    } else if reads("TargetResponseTime") {
        Some(Family::Latency)
    } else if reads("UnHealthyHostCount") {
        Some(Family::Unhealthy)
    } else {
        None
    }
}

/// The bad versions each family must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Bad {
    /// 5 % of production answered 5xx from the canary on (the test-listener gates pass).
    ErrorsFromCanary,
    /// 5 % 5xx only after the full shift.
    ErrorsAfterShift,
    /// p99 4 s under production traffic, 40 ms on the test listener.
    SlowFromCanary,
    /// Targets that never pass a health check (the gates stop it first; the alarm backs up).
    NeverHealthy,
}

impl Bad {
    pub fn of(f: Family) -> &'static [Bad] {
        match f {
            Family::Errors => &[Bad::ErrorsFromCanary, Bad::ErrorsAfterShift],
            Family::Latency => &[Bad::SlowFromCanary],
            Family::Unhealthy => &[Bad::NeverHealthy],
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Bad::ErrorsFromCanary => "5 % 5xx from the canary on",
            Bad::ErrorsAfterShift => "5 % 5xx after the full shift",
            Bad::SlowFromCanary => "p99 4 s from the canary on",
            Bad::NeverHealthy => "targets never healthy",
        }
    }

    fn version(self) -> Version {
        let good = walk::GOOD_P99_SECONDS;
        let (errors, p99) = match self {
            Bad::ErrorsFromCanary => (
                PerClass {
                    test: 0.0,
                    canary: 0.05,
                    full: 0.05,
                },
                PerClass::all(good),
            ),
            Bad::ErrorsAfterShift => (
                PerClass {
                    test: 0.0,
                    canary: 0.0,
                    full: 0.05,
                },
                PerClass::all(good),
            ),
            Bad::SlowFromCanary => (
                PerClass::all(0.0),
                PerClass {
                    test: good,
                    canary: 4.0,
                    full: 4.0,
                },
            ),
            Bad::NeverHealthy => (PerClass::all(0.0), PerClass::all(good)),
        };
        walk::version(errors, p99)
    }
}

/// One alarm's detection of one bad version at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub alarm: String,
    pub bad: Bad,
    pub rate: f64,
    /// Onset -> ALARM, slowest run with every delay at 90 s; `None` if a run never fired.
    pub nominal_seconds: Option<i64>,
    /// Onset -> ALARM, slowest run of all; `None` if any run never fired.
    pub worst_seconds: Option<i64>,
    /// The publication order of the slowest run.
    pub worst_delays: String,
    pub runs: usize,
}

/// Per-minute seeded delays added to the named orders (`seeds` runs).
fn orders(seeds: u64) -> Vec<(String, Delays)> {
    let mut out: Vec<(String, Delays)> = walk::publication_orders()
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    for seed in 0..seeds {
        out.push((
            format!("seeded per-minute delays #{seed}"),
            Delays::seeded(seed, walk::DELAY_RANGE.0, walk::DELAY_RANGE.1),
        ));
    }
    out
}

/// Every alarm of the deployment group against its family's bad versions.
pub fn detections(m: &TimingModel, settings: &Settings, seeds: u64) -> Vec<Detection> {
    let t = Timeline::of(m);
    let orders = orders(seeds);
    let mut out = Vec::new();
    for a in &m.alarms {
        let Some(f) = family(a) else { continue };
        for &bad in Bad::of(f) {
            for rate in walk::RATES {
                out.push(detect(&t, a, bad, rate, &orders, settings));
            }
        }
    }
    out
}

fn detect(
    t: &Timeline,
    a: &AlarmDefinition,
    bad: Bad,
    rate: f64,
    orders: &[(String, Delays)],
    settings: &Settings,
) -> Detection {
    let keys = walk::keys_of(a);
    let mut d = Detection {
        alarm: a.logical_id.clone(),
        bad,
        rate,
        nominal_seconds: Some(i64::MIN),
        worst_seconds: Some(i64::MIN),
        worst_delays: String::new(),
        runs: 0,
    };
    for offset in (0..60).step_by(5) {
        let s = Scenario {
            offset,
            wave: walk::phase_grid(t.start),
            scale_out: None,
            gate_start: 0,
            rate,
        };
        let mut traffic = walk::green(t, &s, bad.version(), Sampling::EverySecond);
        if bad == Bad::NeverHealthy {
            for task in &mut traffic.tasks {
                task.healthy = None;
            }
            traffic.shares.clear();
            traffic.gate = None;
        }
        let onset = match bad {
            Bad::NeverHealthy => traffic.tasks.iter().map(|k: &Task| k.running).min(),
            _ => traffic.onset(walk::GOOD_P99_SECONDS),
        };
        let store = traffic.streams(&keys);
        let window = (0, traffic.end + i64::from(offset) + 900);
        for (name, delays) in orders {
            d.runs += 1;
            let fired = a
                .first_alarm(&store, delays, window, settings, State::Ok)
                .ok()
                .flatten();
            let took = match (fired, onset) {
                (Some(at), Some(on)) => Some(at - i64::from(offset) - on),
                _ => None,
            };
            if name == "all 90 s" {
                d.nominal_seconds = max(d.nominal_seconds, took);
            }
            let worse = match (took, d.worst_seconds) {
                (None, Some(_)) => true,
                (Some(x), Some(w)) => x > w,
                _ => false,
            };
            if worse {
                d.worst_delays = format!("{name}, created {offset} s into its minute");
            }
            d.worst_seconds = max(d.worst_seconds, took);
        }
    }
    d
}

/// The larger, where `None` (never fired) is the largest.
fn max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(a?.max(b?))
}

/// The detection table as Markdown (docs/deployments.md keeps a copy; a test checks it).
pub fn markdown(rows: &[Detection]) -> String {
    let s = |v: Option<i64>| v.map_or("never".to_string(), |v| format!("{v} s"));
    let mut out = String::from(
        "| alarm | bad version | production rate | onset -> ALARM, nominal (every delay 90 s) | worst case (delays 30-150 s) | worst run |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for d in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} req/s | {} | {} | {} |\n",
            d.alarm,
            d.bad.describe(),
            d.rate,
            s(d.nominal_seconds),
            s(d.worst_seconds),
            d.worst_delays
        ));
    }
    out
}
