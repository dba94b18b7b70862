//! The "warm pool": N standby OrderBroker tasks kept running at any load, so a volatility spike
//! is served within seconds by capacity that is already there.
//!
//! Fargate has no warm pool and target tracking reacts in minutes; the only capacity that serves a
//! surprise spike within 30 s is capacity already running. The scaling policy tracks
//!
//! ```text
//! (average CPU x RunningTaskCount + N x TargetValue) / DesiredTaskCount
//! ```
//!
//! which settles at `desired = demand + N` in one step for any N (see [`tracked_metric`]); N is
//! the `StandbyTasks` metric this module sizes:
//!
//! ```text
//! N = ceil(safety x (steepest load rise within R) / per-task capacity),  clamped to [min, max]
//! R = task start (measured: launch -> RUNNING) + RUNNING -> healthy (declared: the JVM's start)
//!     + health check (threshold x interval) + reaction
//! ```
//!
//! i.e. enough spare tasks to absorb the steepest rise seen in recent sessions for the whole time
//! it takes replacements to arrive.

pub mod aws;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The tracked metric the template's metric-math expression computes, for one datapoint.
/// `desired == 0` is guarded: the value then asks for N tasks (`N x target` >= target).
pub fn tracked_metric(avg_cpu: f64, running: f64, desired: f64, n: f64, target: f64) -> f64 {
    if desired > 0.0 {
        (avg_cpu * running + n * target) / desired
    } else {
        n * target
    }
}

/// One task's start, from ECS `DescribeTasks`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskStart {
    pub created_at: DateTime<Utc>,
    pub pull_started_at: Option<DateTime<Utc>>,
    pub pull_stopped_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
}

/// The longest a phase of a task's start may take and still be a measurement (Fargate gives up
/// on a task long before): an hour.
pub const MAX_START_PHASE_SECONDS: i64 = 3600;

impl TaskStart {
    /// The timestamps in order (created, pull started, pull stopped, started) and every phase
    /// at most [`MAX_START_PHASE_SECONDS`]; what is wrong, by name, otherwise.
    pub fn validate(&self) -> Result<(), String> {
        let steps = [
            ("created_at", Some(self.created_at)),
            ("pull_started_at", self.pull_started_at),
            ("pull_stopped_at", self.pull_stopped_at),
            ("started_at", self.started_at),
        ];
        let mut last = ("created_at", self.created_at);
        for (name, t) in steps.into_iter().skip(1) {
            let Some(t) = t else { continue };
            let secs = (t - last.1).num_seconds();
            if secs < 0 {
                return Err(format!("{name} {t} is before {} {}", last.0, last.1));
            }
            if secs > MAX_START_PHASE_SECONDS {
                return Err(format!(
                    "{name} {t} is {secs} s after {} (more than {MAX_START_PHASE_SECONDS} s is not a task start)",
                    last.0
                ));
            }
            last = (name, t);
        }
        Ok(())
    }

    /// Launch -> RUNNING, in seconds, if the task got there.
    pub fn launch_to_running(&self) -> Option<f64> {
        let s = self.started_at?;
        let secs = (s - self.created_at).num_milliseconds() as f64 / 1000.0;
        (secs >= 0.0).then_some(secs)
    }
}

/// A point of load: total CPU in "task percent" (average CPU x running tasks), per minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// Bounds and tunables an operator sets without a code change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    pub min: u32,
    pub max: u32,
    pub safety_factor: f64,
    /// Task start assumed when nothing was measured (Fargate: 30-90 s is common).
    pub default_start_seconds: f64,
    /// Target tracking's reaction: metric period plus its alarm's datapoints.
    pub reaction_seconds: f64,
    /// Percentile of measured starts used (90: plan for the slow ones).
    pub start_percentile: f64,
    /// N moves only by at least this many tasks...
    pub min_step: u32,
    /// ... and not more often than this (minutes). Increases are never delayed.
    pub min_interval_minutes: i64,
    pub paused: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            min: 1,
            max: 10,
            safety_factor: 1.25,
            default_start_seconds: 90.0,
            reaction_seconds: 180.0,
            start_percentile: 90.0,
            min_step: 1,
            min_interval_minutes: 15,
            paused: false,
        }
    }
}

/// The largest N and min/max the settings may name: the template's MaxTasks bound.
pub const MAX_STANDBY: u32 = 500;

/// `value` must be finite and within `range`; the message names `name`.
fn within(name: &str, value: f64, range: std::ops::RangeInclusive<f64>) -> Result<(), String> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} {value} is not within {}-{}",
            range.start(),
            range.end()
        ))
    }
}

impl PoolSettings {
    /// Every field within its range (the CLI's `--settings` and `--input`, and the function's
    /// SSM parameter, all go through this): a value outside one is refused, never clamped.
    pub fn validate(&self) -> Result<(), String> {
        if self.min > self.max {
            return Err(format!("min {} is above max {}", self.min, self.max));
        }
        if self.max > MAX_STANDBY {
            return Err(format!("max {} is above {MAX_STANDBY}", self.max));
        }
        within("safety_factor", self.safety_factor, 1.0..=5.0)?;
        within(
            "default_start_seconds",
            self.default_start_seconds,
            1.0..=900.0,
        )?;
        within("reaction_seconds", self.reaction_seconds, 0.0..=3600.0)?;
        within("start_percentile", self.start_percentile, 1.0..=100.0)?;
        if self.min_step > MAX_STANDBY {
            return Err(format!("min_step {} is above {MAX_STANDBY}", self.min_step));
        }
        if !(0..=1440).contains(&self.min_interval_minutes) {
            return Err(format!(
                "min_interval_minutes {} is not within 0-1440",
                self.min_interval_minutes
            ));
        }
        Ok(())
    }
}

/// Everything the model is made from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInputs {
    pub task_starts: Vec<TaskStart>,
    pub healthy_threshold: u32,
    pub health_interval_seconds: u32,
    /// RUNNING -> the health path answers 200: the declared `TaskRunningToHealthySeconds`
    /// (ECS records no "app ready" time to measure it from).
    #[serde(default)]
    pub running_to_healthy_seconds: f64,
    /// Load over recent sessions (both target groups' traffic lands on the same tasks).
    pub load: Vec<LoadPoint>,
    /// What one task carries at the scaling target (TargetValue, in task percent).
    pub per_task_capacity: f64,
    pub settings: PoolSettings,
}

impl ModelInputs {
    /// The settings and every number the model reads, each within its range (a file given to
    /// `warm-pool recommend --input` is refused on the first one out of range, by name).
    pub fn validate(&self) -> Result<(), String> {
        self.settings
            .validate()
            .map_err(|e| format!("settings: {e}"))?;
        // ALB HealthyThresholdCount is 2-10 and the interval 5-300 s (ELB API reference).
        if !(2..=10).contains(&self.healthy_threshold) {
            return Err(format!(
                "healthy_threshold {} is not within 2-10",
                self.healthy_threshold
            ));
        }
        if !(5..=300).contains(&self.health_interval_seconds) {
            return Err(format!(
                "health_interval_seconds {} is not within 5-300",
                self.health_interval_seconds
            ));
        }
        within(
            "running_to_healthy_seconds",
            self.running_to_healthy_seconds,
            0.0..=900.0,
        )?;
        within("per_task_capacity", self.per_task_capacity, 1.0..=100.0)?;
        for (k, t) in self.task_starts.iter().enumerate() {
            t.validate().map_err(|e| format!("task_starts[{k}]: {e}"))?;
        }
        for p in &self.load {
            within("a load value", p.value, 0.0..=1e9)?;
        }
        Ok(())
    }
}

/// N, with its inputs and reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub n: u32,
    pub raw: f64,
    pub start_seconds: f64,
    pub start_measured_from: usize,
    pub health_seconds: f64,
    pub reaction_seconds: f64,
    pub replacement_seconds: f64,
    /// Steepest rise of load within the replacement time (task percent) and when it ended.
    pub steepest_rise: f64,
    pub steepest_rise_at: Option<DateTime<Utc>>,
    pub reasoning: Vec<String>,
}

/// Nearest-rank percentile of unsorted values.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// The largest increase of load between two points at most `window` apart.
pub fn steepest_rise(load: &[LoadPoint], window: Duration) -> Option<(f64, DateTime<Utc>)> {
    let mut pts: Vec<LoadPoint> = load
        .iter()
        .copied()
        .filter(|p| p.value.is_finite())
        .collect();
    pts.sort_by_key(|p| p.at);
    let mut best: Option<(f64, DateTime<Utc>)> = None;
    for (j, end) in pts.iter().enumerate() {
        for start in pts[..j].iter().rev() {
            if end.at - start.at > window {
                break;
            }
            let rise = end.value - start.value;
            if rise > best.map_or(0.0, |b| b.0) {
                best = Some((rise, end.at));
            }
        }
    }
    best
}

/// Runs the model.
pub fn recommend(i: &ModelInputs) -> Recommendation {
    let s = &i.settings;
    let mut why = Vec::new();
    let starts: Vec<f64> = i
        .task_starts
        .iter()
        .filter_map(TaskStart::launch_to_running)
        .collect();
    let start_seconds = match percentile(&starts, s.start_percentile) {
        Some(p) => {
            why.push(format!(
                "task start p{} = {p:.0} s over {} recent tasks (launch -> RUNNING)",
                s.start_percentile,
                starts.len()
            ));
            p
        }
        None => {
            why.push(format!(
                "no measured task start: assuming {:.0} s",
                s.default_start_seconds
            ));
            s.default_start_seconds
        }
    };
    let health_seconds = f64::from(i.healthy_threshold) * f64::from(i.health_interval_seconds);
    let jvm = i.running_to_healthy_seconds.max(0.0);
    let replacement = start_seconds + jvm + health_seconds + s.reaction_seconds;
    why.push(format!(
        "replacements arrive after {replacement:.0} s = start {start_seconds:.0} + RUNNING->healthy {jvm:.0} (declared) + health {health_seconds:.0} ({} x {} s) + scaling reaction {:.0}",
        i.healthy_threshold, i.health_interval_seconds, s.reaction_seconds
    ));
    let window = Duration::milliseconds((replacement * 1000.0) as i64);
    let rise = steepest_rise(&i.load, window);
    let (steepest, at) = rise.map_or((0.0, None), |(r, t)| (r, Some(t)));
    let raw = if i.per_task_capacity > 0.0 {
        s.safety_factor * steepest / i.per_task_capacity
    } else {
        0.0
    };
    match at {
        Some(t) => why.push(format!(
            "steepest rise within {replacement:.0} s: +{steepest:.0} task-% ending {t}; x safety {} / {:.0} task-% per task = {raw:.2} tasks",
            s.safety_factor, i.per_task_capacity
        )),
        None => why.push("no load history (or no rise): the minimum applies".into()),
    }
    let mut n = raw.ceil().max(0.0) as u32;
    if n < s.min {
        why.push(format!("raised to the minimum {}", s.min));
        n = s.min;
    }
    if n > s.max {
        why.push(format!("CLAMPED from {n} to the maximum {}", s.max));
        n = s.max;
    }
    Recommendation {
        n,
        raw,
        start_seconds,
        start_measured_from: starts.len(),
        health_seconds,
        reaction_seconds: s.reaction_seconds,
        replacement_seconds: replacement,
        steepest_rise: steepest,
        steepest_rise_at: at,
        reasoning: why,
    }
}

/// The last published N and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub n: u32,
    pub since: DateTime<Utc>,
}

/// Hysteresis on the value (never on whether it is published): increases apply at once when
/// they reach `min_step`; decreases wait `min_interval` since the last change and then step down
/// by at most a quarter (at least 1), so the pool never shrinks abruptly.
pub fn next_n(
    last: Option<Published>,
    recommended: u32,
    now: DateTime<Utc>,
    s: &PoolSettings,
) -> (u32, String) {
    let target = recommended.clamp(s.min, s.max.max(s.min));
    let Some(last) = last else {
        return (target, format!("first value: {target}"));
    };
    if target == last.n {
        return (last.n, "unchanged".into());
    }
    let diff = target.abs_diff(last.n);
    if diff < s.min_step {
        return (
            last.n,
            format!("{target} is within {} of {}: kept", s.min_step, last.n),
        );
    }
    if target > last.n {
        return (target, format!("raised {} -> {target}", last.n));
    }
    if now - last.since < Duration::minutes(s.min_interval_minutes) {
        return (
            last.n,
            format!(
                "lower value {target} waits: last change {} min ago (< {} min)",
                (now - last.since).num_minutes(),
                s.min_interval_minutes
            ),
        );
    }
    let step = (last.n / 4).max(1);
    let n = last.n.saturating_sub(step).max(target);
    (n, format!("lowered {} -> {n} (towards {target})", last.n))
}
