//! Before a gate sends anything: the health of the target group behind the listener it tests.
//!
//! ECS registers a task when it is RUNNING, before the JVM listens; the ALB then reports the
//! target `initial` and `unhealthy` (`Target.FailedHealthChecks`) until the app answers
//! (../shared/aws-facts.md, "Deployment alarms and target health"). A gate that sent requests
//! then would get the ALB's 502/503 (counted by the ALB-wide 5xx metric) and learn nothing a
//! `DescribeTargetHealth` does not say for free. So the gate waits (bounded by
//! `GateReadinessSeconds`) until a target is healthy and none is still `initial`, and fails at
//! once on a non-transient state held past `NeverHealthySeconds` from when it first saw that
//! target: a bad version, not a slow one.
//!
//! Target states and reason codes: ELB API `TargetHealth` (`initial`, `healthy`, `unhealthy`,
//! `unused`, `draining`, `unavailable`; `Target.FailedHealthChecks`, `Target.ResponseCodeMismatch`,
//! `Target.Timeout`, `Elb.InternalError`, ...).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a gate reads target health.
pub const POLL_SECONDS: u32 = 5;

/// How long and how often to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBudget {
    /// `NeverHealthySeconds`.
    pub never_healthy: Duration,
    /// `GateReadinessSeconds`.
    pub readiness: Duration,
    pub poll: Duration,
}

/// How the wait for a healthy target ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetWait {
    pub ready: bool,
    pub reason: String,
    pub target_groups: Vec<String>,
    pub polls: u32,
    pub waited_ms: u64,
    /// The last reading, `ip:port state (reason)`.
    pub last: Vec<String>,
    /// Healthy targets in the last reading.
    #[serde(default)]
    pub healthy: usize,
}

/// One target as `DescribeTargetHealth` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetObservation {
    /// `ip:port` (the ECS task's address).
    pub id: String,
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// The reasons that mean the app itself is failing (not registration, not the ALB).
pub const NON_TRANSIENT_REASONS: [&str; 3] = [
    "Target.FailedHealthChecks",
    "Target.ResponseCodeMismatch",
    "Target.Timeout",
];

/// The gate's decision after one reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "readiness", content = "detail", rename_all = "lowercase")]
pub enum Readiness {
    /// A target is healthy and none is still `initial`: send the orders.
    Ready,
    /// Keep polling (why).
    Wait(String),
    /// A bad version: fail the hook now (why).
    Fail(String),
}

/// Remembers when each target was first seen across readings.
#[derive(Debug, Clone, Default)]
pub struct FirstSeen(BTreeMap<String, Duration>);

impl FirstSeen {
    /// Records the targets of a reading at `elapsed` (since the gate started).
    pub fn record(&mut self, targets: &[TargetObservation], elapsed: Duration) {
        for t in targets {
            self.0.entry(t.id.clone()).or_insert(elapsed);
        }
    }

    /// How long ago a target was first seen.
    pub fn age(&self, id: &str, elapsed: Duration) -> Duration {
        self.0
            .get(id)
            .map_or(Duration::ZERO, |seen| elapsed.saturating_sub(*seen))
    }
}

/// Judges one reading (pure). `elapsed` is the time since the gate started, `never_healthy` the
/// derived `NeverHealthySeconds`, `readiness` the derived `GateReadinessSeconds`.
pub fn judge(
    targets: &[TargetObservation],
    seen: &FirstSeen,
    elapsed: Duration,
    never_healthy: Duration,
    readiness: Duration,
) -> Readiness {
    let serving: Vec<&TargetObservation> = targets
        .iter()
        .filter(|t| !matches!(t.state.as_str(), "draining" | "unused"))
        .collect();
    let healthy = serving.iter().filter(|t| t.state == "healthy").count();
    let initial = serving.iter().filter(|t| t.state == "initial").count();
    if healthy > 0 && initial == 0 {
        return Readiness::Ready;
    }
    if healthy == 0 {
        // A target failing for a reason of its own past the declared start: a bad version.
        if let Some(bad) = serving.iter().find(|t| {
            t.state == "unhealthy"
                && t.reason
                    .as_deref()
                    .is_some_and(|r| NON_TRANSIENT_REASONS.contains(&r))
                && seen.age(&t.id, elapsed) >= never_healthy
        }) {
            return Readiness::Fail(format!(
                "target {} still unhealthy ({}{}) {} s after it registered (NeverHealthySeconds {}): the new version does not answer its health check",
                bad.id,
                bad.reason.as_deref().unwrap_or_default(),
                bad.description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
                seen.age(&bad.id, elapsed).as_secs(),
                never_healthy.as_secs()
            ));
        }
    }
    let why = if serving.is_empty() {
        "no target registered yet".to_string()
    } else {
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for t in &serving {
            let key = match &t.reason {
                Some(r) => format!("{} ({r})", t.state),
                None => t.state.clone(),
            };
            *states.entry(key).or_default() += 1;
        }
        states
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if elapsed >= readiness {
        return Readiness::Fail(format!(
            "no healthy target within GateReadinessSeconds ({} s): {why}",
            readiness.as_secs()
        ));
    }
    Readiness::Wait(why)
}
