//! Deployment timing: the two declared start times of one OrderBroker task, every value derived
//! from them, and the alarm-level proofs (a good version never tripping a deployment-group
//! alarm, how fast each alarm catches a bad version), computed from the template's own values.
//! The rollback budget is the deployment rehearsal's output (`crate::rehearse`).
//!
//! CloudFormation has no arithmetic, so the derived values are template parameters too;
//! [`Derived::overrides`] is what `orderbroker samconfig overrides` passes for them, and a
//! template test checks that the template's defaults agree with [`derive`] of its declared
//! defaults.
//!
//! - [`model`]: the timing-relevant values read from template.yaml (alarms, health checks,
//!   grace, drain, canary, gate and watchdog budgets).
//! - [`walk`]: the good-version walk through every deployment-group alarm (CloudWatch
//!   evaluator on the walked metric streams).
//! - [`detection`]: how fast each deployment-group alarm catches a bad version.

pub mod detection;
pub mod model;
pub mod walk;

use serde::Serialize;

/// The template parameter: launch -> RUNNING (Fargate provisioning + image pull).
pub const LAUNCH_TO_RUNNING_PARAM: &str = "TaskLaunchToRunningSeconds";
/// The template parameter: RUNNING -> `/health` answers 200 (JVM start).
pub const RUNNING_TO_HEALTHY_PARAM: &str = "TaskRunningToHealthySeconds";

/// Slack added to every deadline derived from the declared start times, so a task exactly at
/// its declared time is never cut off by a few seconds of scheduling jitter.
pub const MARGIN_SECONDS: u32 = 15;
/// What the gate needs after green is healthy: the listener's own health answers, every
/// target's cold start in unjudged orders (ColdStartRequests per target, 4 in flight per target:
/// 50 answers of up to P99LatencyAlarmSeconds' 2 s is 25 s), the 20 judged orders and slack.
pub const GATE_ORDERS_SECONDS: u32 = 60;
/// The longest from NeverHealthySeconds elapsing to the watchdog's next look at green's target
/// health: its per-minute invocations re-check every RECHECK_SECONDS for INVOCATION_SECONDS, so
/// the widest gap between two checks is the rest of the minute plus one re-check interval.
pub const WATCHDOG_GAP_SECONDS: u32 =
    60 - crate::watchdog::INVOCATION_SECONDS + crate::watchdog::RECHECK_SECONDS;
/// Time a hook keeps back from the Lambda deadline to report its status.
pub const REPORT_RESERVE_SECONDS: u32 = 15;
/// Target-group health checks of both target groups (template: HealthCheckIntervalSeconds,
/// HealthyThresholdCount, UnhealthyThresholdCount); [`model`] reads the real ones.
pub const DEFAULT_HEALTH_CHECK: HealthCheck = HealthCheck {
    interval_seconds: 5,
    healthy_threshold: 2,
    unhealthy_threshold: 2,
};

/// The two declared start times: the slowest a HEALTHY task may take for each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StartTimes {
    /// Launch -> RUNNING: Fargate provisioning and the image pull.
    pub launch_to_running: u32,
    /// RUNNING -> the health endpoint answers 200: the JVM's start.
    pub running_to_healthy: u32,
}

/// The target groups' health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub interval_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl HealthCheck {
    /// From the app answering 200 to the target being `healthy`.
    pub fn to_healthy(&self) -> u32 {
        self.interval_seconds * self.healthy_threshold
    }
    /// From registration (RUNNING) to the target being `unhealthy` when nothing answers.
    pub fn to_unhealthy(&self) -> u32 {
        self.interval_seconds * self.unhealthy_threshold
    }
}

/// Every value derived from the declared start times, each the template parameter of the
/// same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Derived {
    /// `HealthCheckGracePeriodSeconds` (ECS, counted from RUNNING): NeverHealthySeconds, the
    /// watchdog's widest gap between checks and the margin. A slow-but-healthy JVM is never
    /// replaced, and a never-healthy green task is still RUNNING (its clock not restarted by a
    /// replacement) when the watchdog and the gates judge it: they act first, ECS after.
    pub health_check_grace_seconds: u32,
    /// `LaunchToHealthySeconds`: launch -> target healthy. The warm-up's lead, the deploy and
    /// preflight spike windows, the warm pool's start when nothing was measured.
    pub launch_to_healthy_seconds: u32,
    /// `GateReadinessSeconds`: longest a gate waits for the listener's target group to have a
    /// healthy target, counted from the gate's start (at worst the deployment's start).
    pub gate_readiness_seconds: u32,
    /// `NeverHealthySeconds`: a target (or, for the watchdog, a RUNNING green task) without a
    /// healthy target this long after it appeared is a failed version, not a slow one.
    pub never_healthy_seconds: u32,
    /// `HookTimeoutSeconds`: the hook functions' Lambda timeout.
    pub hook_timeout_seconds: u32,
    /// `UnhealthyAlarmMinutes` (M): minutes of `UnHealthyHostCount` Minimum >= 1 that no healthy
    /// start can produce within M + 1 minutes (see [`unhealthy_alarm_minutes`]).
    pub unhealthy_alarm_minutes: u32,
    /// `UnhealthyAlarmPeriods` (N = M + 1, see [`unhealthy_alarm_periods`]).
    pub unhealthy_alarm_periods: u32,
}

/// The derived parameters, by name, in the order [`Derived::overrides`] writes them.
pub const DERIVED_PARAMS: [&str; 7] = [
    "HealthCheckGracePeriodSeconds",
    "LaunchToHealthySeconds",
    "GateReadinessSeconds",
    "NeverHealthySeconds",
    "HookTimeoutSeconds",
    "UnhealthyAlarmMinutes",
    "UnhealthyAlarmPeriods",
];

/// The minutes one launch wave can keep a target `unhealthy` in: tasks RUNNING anywhere from
/// launch to the declared launch time, each unhealthy from RUNNING until its JVM answers plus
/// the healthy threshold, a span of at most the declared launch-to-healthy. Counting a minute as
/// breaching when the span touches it at all (the pessimistic reading: CloudWatch does not
/// document how often the ALB samples UnHealthyHostCount within a minute), a span of S seconds
/// touches at most ceil(S / 60) + 1 one-minute periods.
pub fn wave_unhealthy_minutes(start: StartTimes, hc: HealthCheck) -> u32 {
    (start.launch_to_running + start.running_to_healthy + hc.to_healthy()).div_ceil(60) + 1
}

/// M: one more minute than two launch waves can touch (the deployment's and a scale-out's,
/// back to back or apart), so M breaching minutes within M + 1 never come from a good version.
pub fn unhealthy_alarm_minutes(start: StartTimes, hc: HealthCheck) -> u32 {
    2 * wave_unhealthy_minutes(start, hc) + 1
}

/// N = M + 1. CloudWatch evaluates the most recent REAL datapoints of its evaluation range
/// (CloudWatch user guide, "How alarm state is evaluated when data is missing"); with the ALB's
/// metrics up to 150 s late the three newest minutes of the range are unpublished at every
/// evaluation, so an M-of-M alarm (N = M) could only fire if the range held N + 3 periods: the
/// guide's example holds N + 2. M of M + 1 fires with M + 1 published minutes, M of them
/// breaching (the evaluator shows both, src/alarms/).
pub fn unhealthy_alarm_periods(start: StartTimes, hc: HealthCheck) -> u32 {
    unhealthy_alarm_minutes(start, hc) + 1
}

/// Every derived value (pure).
pub fn derive(start: StartTimes, hc: HealthCheck) -> Derived {
    let never_healthy = start.running_to_healthy + hc.to_healthy() + MARGIN_SECONDS;
    let readiness = start.launch_to_running + never_healthy;
    Derived {
        health_check_grace_seconds: never_healthy + WATCHDOG_GAP_SECONDS + MARGIN_SECONDS,
        launch_to_healthy_seconds: start.launch_to_running
            + start.running_to_healthy
            + hc.to_healthy(),
        gate_readiness_seconds: readiness,
        never_healthy_seconds: never_healthy,
        hook_timeout_seconds: readiness + GATE_ORDERS_SECONDS + REPORT_RESERVE_SECONDS,
        unhealthy_alarm_minutes: unhealthy_alarm_minutes(start, hc),
        unhealthy_alarm_periods: unhealthy_alarm_periods(start, hc),
    }
}

impl Derived {
    /// The derived parameters as `sam deploy` overrides, in [`DERIVED_PARAMS`] order.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let values = [
            self.health_check_grace_seconds,
            self.launch_to_healthy_seconds,
            self.gate_readiness_seconds,
            self.never_healthy_seconds,
            self.hook_timeout_seconds,
            self.unhealthy_alarm_minutes,
            self.unhealthy_alarm_periods,
        ];
        DERIVED_PARAMS
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// What can be wrong with declared start times.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartTimesError {
    #[error("{key}={value:?} is not a whole number of seconds")]
    NotANumber { key: String, value: String },
    #[error("{key}={value} is outside {min}..={max} seconds")]
    OutOfRange {
        key: String,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error(
        "{key} is derived from {LAUNCH_TO_RUNNING_PARAM} and {RUNNING_TO_HEALTHY_PARAM}: \
         remove it from parameter_overrides (it would be {expected}, samconfig says {found:?})"
    )]
    SetByHand {
        key: String,
        expected: String,
        found: String,
    },
    #[error(
        "the hook timeout would be {0} s, above Lambda's 900 s: lower the declared start times"
    )]
    HookTooLong(u32),
}

/// The template's bounds of the declared start times.
pub const LAUNCH_TO_RUNNING_RANGE: (u32, u32) = (10, 600);
/// At most 300: it is also the container health check's StartPeriod (ECS allows 0-300).
pub const RUNNING_TO_HEALTHY_RANGE: (u32, u32) = (10, 300);

/// Reads the declared start times from parameter pairs (defaults where absent) and refuses a
/// derived value set by hand that disagrees (pure).
pub fn start_times_from_pairs(
    pairs: &[(String, String)],
    defaults: StartTimes,
) -> Result<StartTimes, StartTimesError> {
    let get = |key: &str, default: u32, (min, max): (u32, u32)| {
        let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == key) else {
            return Ok(default);
        };
        let value: u32 = v.trim().parse().map_err(|_| StartTimesError::NotANumber {
            key: key.into(),
            value: v.clone(),
        })?;
        if !(min..=max).contains(&value) {
            return Err(StartTimesError::OutOfRange {
                key: key.into(),
                value,
                min,
                max,
            });
        }
        Ok(value)
    };
    Ok(StartTimes {
        launch_to_running: get(
            LAUNCH_TO_RUNNING_PARAM,
            defaults.launch_to_running,
            LAUNCH_TO_RUNNING_RANGE,
        )?,
        running_to_healthy: get(
            RUNNING_TO_HEALTHY_PARAM,
            defaults.running_to_healthy,
            RUNNING_TO_HEALTHY_RANGE,
        )?,
    })
}

/// The derived overrides for these pairs: refuses a derived key set by hand to another value
/// and a hook timeout Lambda cannot run.
pub fn derived_overrides(
    pairs: &[(String, String)],
    defaults: StartTimes,
    hc: HealthCheck,
) -> Result<Vec<(String, String)>, StartTimesError> {
    let start = start_times_from_pairs(pairs, defaults)?;
    let derived = derive(start, hc);
    if derived.hook_timeout_seconds > 900 {
        return Err(StartTimesError::HookTooLong(derived.hook_timeout_seconds));
    }
    let out = derived.overrides();
    for (k, expected) in &out {
        if let Some((_, found)) = pairs.iter().find(|(key, _)| key == k) {
            if found.trim() != expected {
                return Err(StartTimesError::SetByHand {
                    key: k.clone(),
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// What can stop the deploy parameters from being computed.
#[derive(Debug, thiserror::Error)]
pub enum DeployParametersError {
    #[error(transparent)]
    SamConfig(#[from] crate::cfn::samconfig::SamConfigError),
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error("deriving from the declared task start times: {0}")]
    StartTimes(#[from] StartTimesError),
    #[error("{}", .0.join("; "))]
    Values(Vec<String>),
}

/// The full parameter list `make deploy` passes to `sam deploy` (`orderbroker samconfig
/// overrides`): samconfig's overrides, `CostCenter` from the stack tags, `extra` (`--set`),
/// then every value derived from the declared start times (refused when set by hand to another
/// value). The template's declared defaults and health checks feed the derivation.
pub fn deploy_parameters(
    samconfig: &crate::cfn::samconfig::SamConfig,
    template: &crate::cfn::template::Template,
    extra: &[(String, String)],
) -> Result<crate::cfn::samconfig::Pairs, DeployParametersError> {
    let mut pairs = samconfig.deploy_overrides(extra)?;
    let defaults = crate::cfn::resolve::Parameters::new(template, &[]);
    let (start, hc) = model::declared(template, &defaults)?;
    let derived = derived_overrides(&pairs, start, hc)?;
    for (k, v) in derived {
        match pairs.iter_mut().find(|(key, _)| *key == k) {
            Some(entry) => entry.1 = v,
            None => pairs.push((k, v)),
        }
    }
    let wrong = crate::cfn::resolve::check_values(template, &pairs);
    if !wrong.is_empty() {
        return Err(DeployParametersError::Values(wrong));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: StartTimes = StartTimes {
        launch_to_running: 60,
        running_to_healthy: 60,
    };

    #[test]
    fn derived_values_for_the_defaults() {
        let d = derive(DEFAULTS, DEFAULT_HEALTH_CHECK);
        assert_eq!(d.health_check_grace_seconds, 120);
        assert_eq!(d.launch_to_healthy_seconds, 130);
        assert_eq!(d.gate_readiness_seconds, 145);
        assert_eq!(d.hook_timeout_seconds, 220);
        // One wave (130 s) touches at most 4 minutes; two at most 8: M = 9 of N = 10.
        assert_eq!(d.unhealthy_alarm_minutes, 9);
        assert_eq!(d.unhealthy_alarm_periods, 10);
    }

    #[test]
    fn hand_set_derived_value_that_disagrees_is_refused() {
        let pairs = vec![
            ("TaskRunningToHealthySeconds".to_string(), "90".to_string()),
            (
                "HealthCheckGracePeriodSeconds".to_string(),
                "60".to_string(),
            ),
        ];
        let e = derived_overrides(&pairs, DEFAULTS, DEFAULT_HEALTH_CHECK).unwrap_err();
        assert!(e.to_string().contains("150"), "{e}");
        let ok = vec![("TaskRunningToHealthySeconds".to_string(), "90".to_string())];
        let out = derived_overrides(&ok, DEFAULTS, DEFAULT_HEALTH_CHECK).unwrap();
        assert!(out.contains(&("HealthCheckGracePeriodSeconds".into(), "150".into())));
    }

    #[test]
    fn bad_declared_values_name_the_key() {
        let pairs = vec![("TaskLaunchToRunningSeconds".to_string(), "fast".to_string())];
        let e = start_times_from_pairs(&pairs, DEFAULTS).unwrap_err();
        assert!(e.to_string().contains("TaskLaunchToRunningSeconds"));
        let pairs = vec![("TaskLaunchToRunningSeconds".to_string(), "5".to_string())];
        assert!(matches!(
            start_times_from_pairs(&pairs, DEFAULTS),
            Err(StartTimesError::OutOfRange { .. })
        ));
        let slow = vec![
            ("TaskLaunchToRunningSeconds".to_string(), "600".to_string()),
            ("TaskRunningToHealthySeconds".to_string(), "300".to_string()),
        ];
        assert!(matches!(
            derived_overrides(&slow, DEFAULTS, DEFAULT_HEALTH_CHECK),
            Err(StartTimesError::HookTooLong(_))
        ));
    }
}
