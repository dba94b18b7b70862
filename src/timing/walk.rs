//! The good-version walk: a healthy version whose tasks take anywhere from the fastest start to
//! the declared start times, walked through a whole deployment (green registered at RUNNING and
//! `unhealthy` until its JVM answers, the gates' requests, staggered task starts, one scale-out
//! during the deployment, a cold JVM's slow first minute of canary traffic, the keep-alive
//! noise of thousands of requests a second) and through every deployment-group alarm's
//! evaluation (M of N one-minute datapoints, missing data as the alarm treats it). Any scenario
//! that reaches ALARM is a good version rolled back: [`walk`] returns them all.
//!
//! Pessimistic where AWS documents nothing finer: a minute counts as `UnHealthyHostCount >= 1`
//! (even for the Minimum statistic) when any target is unhealthy at any moment of it, and a
//! minute's p99 as slow when any cold task serves in it.

use serde::Serialize;

use crate::timing::model::{AlarmKind, AlarmSpec, Missing, TimingModel};
use crate::timing::{HealthCheck, StartTimes};

/// The fastest start of each phase a healthy task may have (the walk's lower bound).
pub const FASTEST_PHASE_SECONDS: u32 = 10;
pub use crate::timing::COLD_JVM_SLOW_SECONDS;
/// Keep-alive races when the app's idle timeout is longer than the ALB's: assumed 1 in 10,000
/// requests answered 502. When it is not longer, the ALB's documented intermittent 502s:
/// assumed 1 in 200.
pub const NOISE_ERROR_RATE: f64 = 0.0001;
pub const KEEPALIVE_RACE_ERROR_RATE: f64 = 0.005;
/// The production request rates walked (requests a second): a quiet hour and the open.
pub const RATES: [f64; 2] = [20.0, 5000.0];
/// Synthetic orders per gate run (ValidationOrders' default) and gate runs on the test listener.
pub const GATE_ORDERS: f64 = 20.0;

/// One task's start: launch -> RUNNING and RUNNING -> healthy, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaskStart {
    pub launch_to_running: u32,
    pub running_to_healthy: u32,
}

/// One walked deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Seconds into its minute the deployment started.
    pub offset: u32,
    /// The green task set's tasks, launched at 0.
    pub wave: Vec<TaskStart>,
    /// A scale-out launching these tasks at this second, if any.
    pub scale_out: Option<(u32, Vec<TaskStart>)>,
    /// When the test gate starts (CodeDeploy may run it at once or after Install settles).
    pub gate_start: u32,
    /// Production requests a second.
    pub rate: f64,
}

/// A scenario that reaches ALARM, and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trip {
    pub alarm: String,
    pub minute: usize,
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Copy)]
struct Target {
    running: u32,
    healthy: u32,
}

fn targets(launch: u32, tasks: &[TaskStart], to_healthy: u32) -> Vec<Target> {
    tasks
        .iter()
        .map(|t| Target {
            running: launch + t.launch_to_running,
            healthy: launch + t.launch_to_running + t.running_to_healthy + to_healthy,
        })
        .collect()
}

/// What a walked timeline depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub start: StartTimes,
    pub health_check: HealthCheck,
    pub canary_percent: u32,
    pub canary_minutes: u32,
    /// The share of production requests a good version's keep-alive races turn into 502s.
    pub noise: f64,
}

impl Timeline {
    /// The timeline of the template's values.
    pub fn of(m: &TimingModel) -> Self {
        let noise = match m.app_idle_timeout_seconds {
            Some(app) if app > m.alb_idle_timeout_seconds => NOISE_ERROR_RATE,
            _ => KEEPALIVE_RACE_ERROR_RATE,
        };
        Timeline {
            start: m.start,
            health_check: m.health_check,
            canary_percent: m.canary_percent,
            canary_minutes: m.canary_minutes,
            noise,
        }
    }
}

/// The longest run of consecutive minutes in which some green task serves production traffic
/// cold, over every walked scenario: the p99 alarms need one more ([`crate::timing::derive`]).
pub fn longest_cold_run(start: StartTimes, hc: HealthCheck) -> u32 {
    let t = Timeline {
        start,
        health_check: hc,
        canary_percent: 10,
        canary_minutes: 3,
        noise: 0.0,
    };
    scenarios(&t)
        .iter()
        .map(|s| {
            let (mut best, mut run) = (0u32, 0u32);
            for m in minutes(&t, s) {
                run = if m.slow && m.production > 0.0 {
                    run + 1
                } else {
                    0
                };
                best = best.max(run);
            }
            best
        })
        .max()
        .unwrap_or(0)
}

/// The phases a healthy task's start is walked through: fastest, half way, declared.
pub fn phase_grid(start: StartTimes) -> Vec<TaskStart> {
    let pick = |declared: u32| {
        let mut v = vec![
            FASTEST_PHASE_SECONDS,
            declared.midpoint(FASTEST_PHASE_SECONDS),
            declared,
        ];
        v.dedup();
        v
    };
    let mut out = Vec::new();
    for l in pick(start.launch_to_running) {
        for r in pick(start.running_to_healthy) {
            out.push(TaskStart {
                launch_to_running: l,
                running_to_healthy: r,
            });
        }
    }
    out
}

/// Every scenario the walk covers.
pub fn scenarios(t: &Timeline) -> Vec<Scenario> {
    let grid = phase_grid(t.start);
    let Some(&slowest) = grid.last() else {
        return Vec::new();
    };
    let hc = t.health_check.to_healthy();
    let all_healthy = slowest.launch_to_running + slowest.running_to_healthy + hc;
    let horizon = all_healthy + t.canary_minutes * 60 + 240;
    let mut out = Vec::new();
    for offset in (0..60).step_by(10).chain([59]) {
        for wave in [grid.clone(), vec![slowest]] {
            for gate_start in [0, all_healthy] {
                for rate in RATES {
                    let base = Scenario {
                        offset,
                        wave: wave.clone(),
                        scale_out: None,
                        gate_start,
                        rate,
                    };
                    out.push(base.clone());
                    for at in (0..=horizon).step_by(15) {
                        for tasks in [grid.clone(), vec![slowest]] {
                            out.push(Scenario {
                                scale_out: Some((at, tasks)),
                                ..base.clone()
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// Overlap in seconds of [a, b) with [c, d).
fn overlap(a: u32, b: u32, c: u32, d: u32) -> u32 {
    b.min(d).saturating_sub(a.max(c))
}

/// One minute's datapoints on the green target group.
#[derive(Debug, Clone, Copy, Default)]
struct Minute {
    any_target: bool,
    unhealthy: bool,
    requests: f64,
    production: f64,
    errors: f64,
    slow: bool,
}

/// When the gate sends its orders: the first second from its start at which a target is
/// healthy and none is still `initial` (registered, first checks pending).
fn gate_ready(all: &[Target], start: u32, to_unhealthy: u32) -> u32 {
    let latest = all.iter().map(|t| t.healthy).max().unwrap_or(start);
    (start..=latest.max(start))
        .find(|&s| {
            all.iter().any(|t| t.healthy <= s)
                && all
                    .iter()
                    .all(|t| s < t.running || s >= (t.running + to_unhealthy).min(t.healthy))
        })
        .unwrap_or(latest)
}

fn minutes(m: &Timeline, s: &Scenario) -> Vec<Minute> {
    let hc = m.health_check;
    let mut all = targets(0, &s.wave, hc.to_healthy());
    let ready = gate_ready(&all, s.gate_start, hc.to_unhealthy());
    // AfterAllowTestTraffic, then BeforeAllowTraffic: two gate runs of GATE_ORDERS orders.
    let canary = ready + 5;
    let full = canary + m.canary_minutes * 60;
    if let Some((at, tasks)) = &s.scale_out {
        all.extend(targets(*at, tasks, hc.to_healthy()));
    }
    let end = full + 600;
    let first_start = all.iter().map(|t| t.running).min().unwrap_or(0);
    // Cold windows: every target from its first production request.
    let cold: Vec<(u32, u32)> = all
        .iter()
        .map(|t| {
            let first = t.healthy.max(canary);
            (first, first + COLD_JVM_SLOW_SECONDS)
        })
        .collect();
    let noise = m.noise;
    let mut out = Vec::new();
    // Minute k covers [60k - offset, 60k + 60 - offset) in deployment time.
    let mut k = 0u32;
    loop {
        let lo = (60 * k).saturating_sub(s.offset);
        let hi = 60 * k + 60 - s.offset;
        if lo > end {
            break;
        }
        let mut minute = Minute {
            any_target: hi > first_start,
            ..Minute::default()
        };
        minute.unhealthy = all
            .iter()
            .any(|t| overlap(t.running, t.healthy, lo, hi) > 0);
        let canary_s = overlap(canary, full, lo, hi) as f64;
        let full_s = overlap(full, end, lo, hi) as f64;
        let gate = if (lo..hi).contains(&ready) {
            2.0 * GATE_ORDERS
        } else {
            0.0
        };
        let production = s.rate * (canary_s * f64::from(m.canary_percent) / 100.0 + full_s);
        minute.requests = gate + production;
        minute.production = production;
        minute.errors = production * noise;
        minute.slow =
            cold.iter().any(|(a, b)| overlap(*a, *b, lo, hi) > 0) || (lo..hi).contains(&ready); // the gate's own orders hit a cold JVM
        out.push(minute);
        k += 1;
    }
    out
}

/// One alarm's datapoint for one minute: Some(breaching) or None (no data).
fn datapoint(a: &AlarmSpec, minute: &Minute) -> Option<bool> {
    match &a.kind {
        AlarmKind::Errors {
            min_requests,
            rate_percent,
            count,
        } => {
            // FILL(.., 0): the expression always has a value.
            let (req, err) = (minute.requests, minute.errors);
            Some((req >= *min_requests && err * 100.0 >= req * rate_percent) || err >= *count)
        }
        AlarmKind::Unhealthy { .. } => minute.any_target.then_some(minute.unhealthy),
        AlarmKind::P99 {
            min_requests,
            threshold_seconds: _,
        } => {
            if minute.requests <= 0.0 {
                None
            } else {
                Some(minute.slow && minute.requests >= *min_requests)
            }
        }
        AlarmKind::Other(_) => Some(true),
    }
}

/// The first minute at which the alarm is in ALARM, if any (M of N, missing data as declared).
fn first_alarm(a: &AlarmSpec, points: &[Option<bool>]) -> Option<usize> {
    let n = a.evaluation_periods.max(1) as usize;
    let need = a.datapoints_to_alarm.max(1) as usize;
    (0..points.len()).find(|&end| {
        let window = &points[end.saturating_sub(n - 1)..=end];
        let breaching = window
            .iter()
            .filter(|p| match p {
                Some(b) => *b,
                None => a.missing == Missing::Breaching,
            })
            .count();
        breaching >= need
    })
}

/// Walks every scenario through every deployment-group alarm; the trips (empty = a good
/// version never rolls back).
pub fn walk(m: &TimingModel) -> Vec<Trip> {
    let mut trips = Vec::new();
    let t = Timeline::of(m);
    for s in scenarios(&t) {
        let mins = minutes(&t, &s);
        for a in &m.alarms {
            let points: Vec<Option<bool>> = mins.iter().map(|x| datapoint(a, x)).collect();
            if let Some(minute) = first_alarm(a, &points) {
                trips.push(Trip {
                    alarm: a.id.clone(),
                    minute,
                    scenario: s.clone(),
                });
            }
        }
    }
    trips
}
