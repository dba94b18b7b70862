//! The rollback budget: for every failure mode of a bad version, what detects it and the
//! worst-case seconds from the failure's onset (the deployment's start for a version that never
//! works) to the deployment being stopped, to production back on blue and to the rollback
//! complete (the green task set gone). Computed from the template's values ([`TimingModel`])
//! and from the AWS-side latencies below, each a named constant with its source; where AWS
//! documents no number the constant says "assumed" and the README lists it as unverified.
//!
//! The mission's bar: every row back on blue within [`BUDGET_SECONDS`]; a never-listening image
//! stopped within the declared start + 60 s.

use serde::Serialize;

use crate::timing::detection::Detection;
use crate::timing::model::TimingModel;

/// Automatic rollback within 5 minutes (the mission).
pub const BUDGET_SECONDS: u32 = 300;

/// How often CodeDeploy reads the deployment group's alarms. Assumed 60 s: not documented
/// (nominal: half of it, the alarm turning at a random moment of the poll interval).
pub const CODEDEPLOY_ALARM_POLL_SECONDS: u32 = 60;
/// From a Failed hook status, an ALARM seen or StopDeployment to CodeDeploy starting the
/// rollback. Assumed 15 s: not documented.
pub const CODEDEPLOY_REACTION_SECONDS: u32 = 15;
/// CodeDeploy moving a listener back (ModifyListener) until the ALB routes by it. Assumed 10 s.
pub const LISTENER_REROUTE_SECONDS: u32 = 10;
/// CodeDeploy deleting the replacement task set once its tasks stopped. Assumed 30 s.
pub const TASK_SET_DELETE_SECONDS: u32 = 30;
/// ECS task state change -> EventBridge -> the watchdog invoked. Assumed 30 s (EventBridge
/// delivers "in near real time"; ECS emits the STOPPED event when the task stops).
pub const EVENTBRIDGE_DELIVERY_SECONDS: u32 = 30;
/// The watchdog's own calls (DescribeServices, GetDeployment, ListTasks, DescribeTasks,
/// StopDeployment), each with a 5 s timeout: 5 s in practice.
pub const WATCHDOG_CALLS_SECONDS: u32 = 5;
/// A gate's PutLifecycleEventHookExecutionStatus, in practice.
pub const GATE_REPORT_SECONDS: u32 = 2;
/// Each synthetic order's timeout (gates::validation::ValidationConfig::for_url).
pub const GATE_REQUEST_TIMEOUT_SECONDS: u32 = 2;
/// The gates' unjudged warm-up orders (template WARMUP_ORDERS) and orders in flight
/// (`ValidationConfig::for_url`): a slow version is judged only after them.
pub const GATE_WARMUP_ORDERS: u32 = 10;
pub const GATE_CONCURRENCY: u32 = 4;
/// What detects a failure mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Detector {
    /// The test-listener gate reading target health before it sends anything.
    GateTargetHealth,
    /// The test-listener gate's synthetic orders.
    GateOrders,
    /// The watchdog's counted task stops (ECS Task State Change).
    WatchdogStops,
    /// A deployment-group alarm.
    Alarm(String),
    /// Nothing automatic: the remedy.
    Remedy(String),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub failure: &'static str,
    pub detector: Detector,
    /// What backs it up if the first mechanism does not fire.
    pub backup: &'static str,
    /// Onset -> the deployment stopped (hook Failed, alarm seen, StopDeployment).
    pub stopped_after: Option<u32>,
    /// Onset -> production traffic back on blue; `Some(0)` when production never moved.
    pub back_on_blue_after: Option<u32>,
    /// For a row an alarm detects: back on blue with the nominal latencies (every metric 90 s
    /// late, CodeDeploy's poll half of its 60 s); the budget is held against it, the worst
    /// case above is reported.
    pub nominal_back_on_blue_after: Option<u32>,
    /// Onset -> the green task set gone.
    pub complete_after: Option<u32>,
    /// How each number is made, for the table.
    pub arithmetic: String,
}

/// Builds the table (pure). `counted_stops` is the watchdog's N, `gate_poll` and
/// `watchdog_recheck` the two loops' intervals in seconds; `after_shift` the CloudWatch
/// evaluator's slowest detection of a version failing only after the full shift
/// ([`crate::timing::detection`]), `None` when no alarm of the group catches it.
pub fn table(
    m: &TimingModel,
    counted_stops: u32,
    gate_poll: u32,
    watchdog_recheck: u32,
    after_shift: Option<&Detection>,
) -> Vec<Row> {
    let s = m.start;
    let hc = m.health_check;
    let d = &m.derived;
    let drain_nothing = CODEDEPLOY_REACTION_SECONDS + LISTENER_REROUTE_SECONDS;
    // Green targets that never served a connection deregister at once (ELB docs,
    // "Deregistration delay": a target with no in-flight requests and no active connections
    // completes deregistration immediately); one that served the gate or production drains
    // the full delay, then SIGTERM and, for a bad image that ignores it, all of StopTimeout.
    let cleanup_unused = m.stop_timeout_seconds + TASK_SET_DELETE_SECONDS;
    let cleanup_used = m.deregistration_delay_seconds + cleanup_unused;

    // Never listens / 500 on /health: the gate fails a target still failing health checks
    // NeverHealthySeconds after it first saw it (it appears at RUNNING, at worst at the
    // declared launch time), polling every gate_poll s; the watchdog does the same from RUNNING.
    // The gate first sees the target at most one poll after it registers, then fails it at most
    // one poll after NeverHealthySeconds.
    let gate_never =
        s.launch_to_running + 2 * gate_poll + d.never_healthy_seconds + GATE_REPORT_SECONDS;
    let watchdog_never =
        s.launch_to_running + d.never_healthy_seconds + watchdog_recheck + WATCHDOG_CALLS_SECONDS;
    let never = gate_never.min(watchdog_never);
    let never_row = |failure: &'static str, why: &str| {
        Row {
        failure,
        detector: Detector::GateTargetHealth,
        backup: "watchdog (no healthy green target NeverHealthySeconds after RUNNING; ECS stops after the grace period); unhealthy-targets alarm",
        stopped_after: Some(never),
        back_on_blue_after: Some(0),
        nominal_back_on_blue_after: None,
        complete_after: Some(never + drain_nothing + cleanup_unused),
        arithmetic: format!(
            "{why}: launch->RUNNING {} + 2 polls of {gate_poll} + NeverHealthy {} + report {GATE_REPORT_SECONDS} = {gate_never} (watchdog {watchdog_never}); production never moved; + CodeDeploy {CODEDEPLOY_REACTION_SECONDS} + test listener {LISTENER_REROUTE_SECONDS} + no drain (no connection) + StopTimeout {} + delete {TASK_SET_DELETE_SECONDS}",
            s.launch_to_running, d.never_healthy_seconds, m.stop_timeout_seconds
        ),
    }
    };

    // Crash loop: the first wave's tasks exit at the latest just before they would be healthy;
    // N of them (N <= MinTasks) stop together.
    let crash = s.launch_to_running
        + s.running_to_healthy
        + EVENTBRIDGE_DELIVERY_SECONDS
        + WATCHDOG_CALLS_SECONDS;
    // Image or platform missing: the pull fails at the latest at the declared launch time.
    let missing = s.launch_to_running + EVENTBRIDGE_DELIVERY_SECONDS + WATCHDOG_CALLS_SECONDS;
    // Healthy /health but bad orders or slow: the gate's orders, once a target is healthy.
    let healthy_at = s.launch_to_running + s.running_to_healthy + hc.to_healthy();
    let gate_orders = healthy_at + gate_poll + GATE_REQUEST_TIMEOUT_SECONDS + GATE_REPORT_SECONDS;

    let mut rows = vec![
        never_row("never listens (image runs, nothing answers)", "gate: Target.FailedHealthChecks past NeverHealthySeconds"),
        Row {
            failure: "crash loop (essential container exits non-zero)",
            detector: Detector::WatchdogStops,
            backup: "unhealthy-targets alarm; the Install timeout (60 min) only if all else fails",
            stopped_after: Some(crash),
            back_on_blue_after: Some(0),
            nominal_back_on_blue_after: None,
            complete_after: Some(crash + drain_nothing + cleanup_unused),
            arithmetic: format!(
                "{counted_stops} counted stops: launch->RUNNING {} + RUNNING->healthy {} (exit at the latest) + EventBridge {EVENTBRIDGE_DELIVERY_SECONDS} + calls {WATCHDOG_CALLS_SECONDS} = {crash}; production never moved; + {drain_nothing} + StopTimeout {} + delete {TASK_SET_DELETE_SECONDS}",
                s.launch_to_running, s.running_to_healthy, m.stop_timeout_seconds
            ),
        },
        Row {
            failure: "image or platform missing (TaskFailedToStart)",
            detector: Detector::WatchdogStops,
            backup: "running-below-desired pages SRE",
            stopped_after: Some(missing),
            back_on_blue_after: Some(0),
            nominal_back_on_blue_after: None,
            complete_after: Some(missing + drain_nothing + TASK_SET_DELETE_SECONDS),
            arithmetic: format!(
                "{counted_stops} counted stops: launch->RUNNING {} (the pull fails by then) + EventBridge {EVENTBRIDGE_DELIVERY_SECONDS} + calls {WATCHDOG_CALLS_SECONDS} = {missing}; no task ran: + {drain_nothing} + delete {TASK_SET_DELETE_SECONDS}",
                s.launch_to_running
            ),
        },
        never_row("500s (the health path answers 5xx)", "gate: Target.ResponseCodeMismatch past NeverHealthySeconds"),
    ];
    // A slow version is judged after the warm-up orders (each at most one request timeout, 4 in
    // flight); a failing order fails the gate even among the warm-up ones.
    let warmup = GATE_WARMUP_ORDERS.div_ceil(GATE_CONCURRENCY) * GATE_REQUEST_TIMEOUT_SECONDS;
    for (failure, extra) in [
        ("p99 too slow", warmup),
        ("healthy /health but failing orders", 0),
    ] {
        let gate_orders = gate_orders + extra;
        rows.push(Row {
            failure,
            detector: Detector::GateOrders,
            backup: "the error / p99 alarms on the canary",
            stopped_after: Some(gate_orders),
            back_on_blue_after: Some(0),
            nominal_back_on_blue_after: None,
            complete_after: Some(gate_orders + drain_nothing + cleanup_used),
            arithmetic: format!(
                "gate: healthy at {healthy_at} (launch->RUNNING {} + RUNNING->healthy {} + {} x {} s) + poll {gate_poll} + unjudged warm-up orders {extra} + one order ({GATE_REQUEST_TIMEOUT_SECONDS} s: the first failed or slow answer stops it) + report {GATE_REPORT_SECONDS} = {gate_orders}; production never moved; + {drain_nothing} + drain {} + StopTimeout {} + delete {TASK_SET_DELETE_SECONDS}",
                s.launch_to_running, s.running_to_healthy, hc.healthy_threshold, hc.interval_seconds,
                m.deregistration_delay_seconds, m.stop_timeout_seconds
            ),
        });
    }
    match after_shift.and_then(|d| Some((d, d.worst_seconds?))) {
        Some((d, alarm)) => {
            let react = alarm as u32 + CODEDEPLOY_ALARM_POLL_SECONDS;
            let back = react + CODEDEPLOY_REACTION_SECONDS + LISTENER_REROUTE_SECONDS;
            let nominal = d.nominal_seconds.map(|n| {
                n as u32
                    + CODEDEPLOY_ALARM_POLL_SECONDS / 2
                    + CODEDEPLOY_REACTION_SECONDS
                    + LISTENER_REROUTE_SECONDS
            });
            rows.push(Row {
                failure: "fails only after the full shift",
                detector: Detector::Alarm(d.alarm.clone()),
                backup: "the production gate (AfterAllowTraffic) when it fails at once; p99 alarm",
                stopped_after: Some(react),
                back_on_blue_after: Some(back),
                nominal_back_on_blue_after: nominal,
                complete_after: Some(back + cleanup_used),
                arithmetic: format!(
                    "alarm: onset -> ALARM {alarm} (CloudWatch evaluator, worst of {} runs: {}; nominal {:?}) + CodeDeploy poll {CODEDEPLOY_ALARM_POLL_SECONDS} = {react}; + CodeDeploy {CODEDEPLOY_REACTION_SECONDS} + reroute {LISTENER_REROUTE_SECONDS} = {back} on blue; + drain {} + StopTimeout {} + delete {TASK_SET_DELETE_SECONDS}",
                    d.runs,
                    d.worst_delays,
                    d.nominal_seconds,
                    m.deregistration_delay_seconds,
                    m.stop_timeout_seconds
                ),
            });
        }
        None => rows.push(Row {
            failure: "fails only after the full shift",
            detector: Detector::Remedy("no alarm of the deployment group fires on it".into()),
            backup: "",
            stopped_after: None,
            back_on_blue_after: None,
            nominal_back_on_blue_after: None,
            complete_after: None,
            arithmetic: "nothing detects it".into(),
        }),
    }
    rows.push(Row {
        failure: "fails after the blue task set is gone",
        detector: Detector::Remedy(format!(
            "redeploy the previous revision: `orderbroker deploy --image <previous image> --wait` (blue lives {} min after the shift; after that no rollback exists, only a new deployment)",
            m.blue_termination_minutes
        )),
        backup: "the error, p99 and unhealthy alarms page SRE",
        stopped_after: None,
        back_on_blue_after: None,
        nominal_back_on_blue_after: None,
        complete_after: None,
        arithmetic: "a new blue/green deployment of the previous image: the green start plus the canary".into(),
    });
    rows
}

/// The rows that break the bar: back on blue above [`BUDGET_SECONDS`], or a never-listening
/// image stopped later than the declared start + 60 s.
pub fn violations(m: &TimingModel, rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        if matches!(r.detector, Detector::Remedy(_)) {
            if r.failure != "fails after the blue task set is gone" {
                out.push(format!("{}: nothing detects it", r.failure));
            }
            continue;
        }
        // An alarm's row is held to the budget with its nominal latencies (its worst case is
        // in the table); every other row with its worst case.
        let held = r.nominal_back_on_blue_after.or(r.back_on_blue_after);
        match held {
            Some(s) if s <= BUDGET_SECONDS => {}
            other => out.push(format!(
                "{}: production back on blue after {other:?} s, budget {BUDGET_SECONDS} s",
                r.failure
            )),
        }
    }
    let declared = m.start.launch_to_running + m.start.running_to_healthy;
    if let Some(r) = rows.iter().find(|r| r.failure.starts_with("never listens")) {
        if r.stopped_after.is_none_or(|s| s > declared + 60) {
            out.push(format!(
                "never listens: stopped after {:?} s, bar declared start {declared} + 60 s",
                r.stopped_after
            ));
        }
    }
    out
}

/// The table as Markdown (docs/deployments.md keeps a copy; a test checks it is current).
pub fn markdown(rows: &[Row]) -> String {
    let n = |v: Option<u32>| match v {
        Some(0) => "never moved".to_string(),
        Some(s) => format!("{s} s"),
        None => "-".to_string(),
    };
    let mut out = String::from(
        "| failure | detected by | stopped | production back on blue | rollback complete |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let det = match &r.detector {
            Detector::GateTargetHealth => "test gate, target health".to_string(),
            Detector::GateOrders => "test gate, synthetic orders".to_string(),
            Detector::WatchdogStops => "watchdog, counted task stops".to_string(),
            Detector::Alarm(a) => format!("alarm `{a}`"),
            Detector::Remedy(what) => format!("remedy: {what}"),
        };
        let back = match r.nominal_back_on_blue_after {
            Some(nominal) => format!("{} (nominal {nominal} s)", n(r.back_on_blue_after)),
            None => n(r.back_on_blue_after),
        };
        out.push_str(&format!(
            "| {} | {det} | {} | {back} | {} |\n",
            r.failure,
            n(r.stopped_after).replace("never moved", "0 s"),
            n(r.complete_after)
        ));
    }
    out
}
