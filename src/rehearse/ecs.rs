//! ECS and the ALB's target health in the rehearsal: tasks launch, reach RUNNING and register;
//! the target groups' health checks as the template sets them; the scheduler replacing tasks
//! the ALB reports unhealthy after the grace period; essential-container exits; STOPPED events
//! (reasons, exit codes, `startedBy`) delivered to the watchdog, which decides with its own
//! functions (`watchdog::join`, `classify`, `decide`, `health_verdict`).
//!
//! AWS sources: a new target "must pass one health check to be considered healthy", then
//! UnhealthyThresholdCount / HealthyThresholdCount consecutive checks move it (ELB docs, "Health
//! checks for Application Load Balancer target groups"); "the Amazon ECS service scheduler
//! ignores unhealthy Elastic Load Balancing target health checks" for the grace period after a
//! task has first started (ECS API, `healthCheckGracePeriodSeconds`); a task stopping passes
//! DEACTIVATING (deregistration), STOPPING (SIGTERM, then SIGKILL after StopTimeout),
//! DEPROVISIONING (network interface detached) before STOPPED (ECS developer guide, "Task
//! lifecycle"). ASSUMPTIONS (named in docs/rehearsal.md): the first health check runs one
//! interval after registration; ECS starts a replacement when the stopped task reaches STOPPED;
//! a bad version ignores SIGTERM (its stop takes all of StopTimeout).

use chrono::{DateTime, TimeZone, Utc};

use super::engine::{Ev, Sim, MS};
use super::latencies::Latency;

/// Which task set a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Blue,
    Green,
}

/// Why a task stopped, as its STOPPED event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopInfo {
    pub code: &'static str,
    pub reason: String,
    pub exit_code: Option<i64>,
}

/// One task.
#[derive(Debug, Clone)]
pub struct Task {
    pub group: Group,
    pub launched: i64,
    pub running: i64,
    /// From when the health path answers 200; `None`: never.
    pub app_ok: Option<i64>,
    pub listens: bool,
    pub crash_at: Option<i64>,
    /// Deregistration began (the ALB reports it draining).
    pub stopping: Option<i64>,
    pub stopped: Option<i64>,
    pub stop: Option<StopInfo>,
    /// Requests it answered through the gates.
    pub gate_served: u64,
}

/// The target's health checks from registration, one a HealthCheckIntervalSeconds: each
/// check's instant and the state after it (ELB: a new target is healthy after ONE pass,
/// unhealthy after UnhealthyThresholdCount failures, back after HealthyThresholdCount passes).
fn checks(
    task: &Task,
    hc: crate::timing::HealthCheck,
) -> impl Iterator<Item = (i64, &'static str)> + '_ {
    let interval = i64::from(hc.interval_seconds.max(1)) * MS;
    let (mut state, mut fails, mut passes) = ("initial", 0u32, 0u32);
    (1i64..).map(move |k| {
        let at = task.running + k * interval;
        let pass = task.listens
            && task.app_ok.is_some_and(|a| a <= at)
            && task.crash_at.is_none_or(|c| at < c);
        if pass {
            fails = 0;
            passes += 1;
            if state == "initial" || (state == "unhealthy" && passes >= hc.healthy_threshold) {
                state = "healthy";
            }
        } else {
            passes = 0;
            fails += 1;
            if state != "unhealthy" && fails >= hc.unhealthy_threshold {
                state = "unhealthy";
            }
        }
        (at, state)
    })
}

/// Target health as `DescribeTargetHealth` would report it: state and reason.
pub fn target_state(
    task: &Task,
    t: i64,
    hc: crate::timing::HealthCheck,
) -> Option<(&'static str, Option<&'static str>)> {
    if t < task.running || task.stopped.is_some_and(|s| s <= t) {
        return None;
    }
    if task.stopping.is_some_and(|s| s <= t) {
        return Some(("draining", Some("Target.DeregistrationInProgress")));
    }
    let state = checks(task, hc)
        .take_while(|(at, _)| *at <= t)
        .last()
        .map_or("initial", |(_, s)| s);
    let reason = match state {
        "initial" => Some("Elb.RegistrationInProgress"),
        "unhealthy" if task.listens && task.crash_at.is_none_or(|c| t < c) => {
            Some("Target.ResponseCodeMismatch")
        }
        "unhealthy" => Some("Target.FailedHealthChecks"),
        _ => None,
    };
    Some((state, reason))
}

/// The first instant the target is healthy (checks are only at interval steps), by `until`.
pub fn first_healthy(task: &Task, until: i64, hc: crate::timing::HealthCheck) -> Option<i64> {
    let registered = |at: i64| task.stopping.or(task.stopped).is_none_or(|s| at < s);
    checks(task, hc)
        .take_while(|(at, _)| *at <= until && registered(*at))
        .find(|(_, s)| *s == "healthy")
        .map(|(at, _)| at)
}

/// The deployment clock in wall time: a whole minute plus the minute phase.
pub fn wall(t: i64, phase: u32) -> DateTime<Utc> {
    let base = 1_796_310_000_000i64; // 2026-12-03T15:00:00Z: a whole minute.
    Utc.timestamp_millis_opt(base + i64::from(phase) * MS + t)
        .single()
        .unwrap_or_default()
}

impl Sim<'_> {
    /// Launches a task of `group` now.
    pub(super) fn launch(&mut self, group: Group, now: i64) -> usize {
        let green = &self.scenario.green;
        let start = self.setup.timing.start;
        let running = now + i64::from(start.launch_to_running) * MS;
        let app_ok = match group {
            Group::Blue => Some(running + i64::from(start.running_to_healthy) * MS / 2),
            Group::Green => match green.healthy_after_s {
                None => Some(running + i64::from(start.running_to_healthy) * MS),
                Some(None) => None,
                Some(Some(s)) => Some(running + i64::from(s) * MS),
            },
        };
        let is_green = group == Group::Green;
        let task = Task {
            group,
            launched: now,
            running,
            app_ok,
            listens: !is_green || green.listens,
            crash_at: green
                .crash_after_s
                .filter(|_| is_green)
                .map(|c| running + i64::from(c) * MS),
            stopping: None,
            stopped: None,
            stop: None,
            gate_served: 0,
        };
        self.tasks.push(task);
        let id = self.tasks.len() - 1;
        if is_green && green.image_missing {
            // The pull fails at the latest when the task would have been RUNNING.
            self.at(running, Ev::PullFailed(id));
        } else {
            self.at(running, Ev::TaskRunning(id));
        }
        id
    }

    /// The image cannot be pulled: the task stops without running (it never registers).
    pub(super) fn on_pull_failed(&mut self, id: usize, now: i64) {
        let info = StopInfo {
            code: "TaskFailedToStart",
            reason: "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref: not found".into(),
            exit_code: None,
        };
        let t = &mut self.tasks[id];
        t.running = i64::MAX / 4;
        let stopped = now + i64::from(self.choice.get(Latency::FargateDeprovision)) * MS;
        self.stop_task(id, now, stopped, info);
    }

    pub(super) fn on_running(&mut self, id: usize, now: i64) {
        let t = self.tasks[id].clone();
        if t.group == Group::Blue {
            return;
        }
        self.log(now, format!("task {id} (green) RUNNING, registered"));
        if let Some(c) = t.crash_at {
            self.at(c, Ev::Crash(id));
        }
        let grace = i64::from(self.setup.timing.grace_seconds) * MS;
        self.at(t.running + grace, Ev::GraceOver(id));
        self.at(now, Ev::InstallCheck);
    }

    /// An essential container exits non-zero: the task stops, ECS replaces it.
    pub(super) fn on_crash(&mut self, id: usize, now: i64) {
        if self.tasks[id].stopping.is_some() {
            return;
        }
        let info = StopInfo {
            code: "EssentialContainerExited",
            reason: "Essential container in task exited".into(),
            exit_code: Some(1),
        };
        let stopped = now + i64::from(self.choice.get(Latency::FargateDeprovision)) * MS;
        self.stop_task(id, now, stopped, info);
    }

    /// The grace period is over: ECS replaces a task whose target is unhealthy.
    pub(super) fn on_grace_over(&mut self, id: usize, now: i64) {
        let hc = self.setup.timing.health_check;
        let task = &self.tasks[id];
        if task.stopping.is_some() {
            return;
        }
        match target_state(task, now, hc) {
            Some(("unhealthy", _)) => {
                let act = now + i64::from(self.choice.get(Latency::EcsActionAfterGrace)) * MS;
                let term = act + i64::from(self.setup.timing.stop_timeout_seconds) * MS;
                let stopped = term + i64::from(self.choice.get(Latency::FargateDeprovision)) * MS;
                let info = StopInfo {
                    code: "ServiceSchedulerInitiated",
                    reason: "Task failed ELB health checks in (target-group green)".into(),
                    exit_code: Some(143),
                };
                self.stop_task(id, act, stopped, info);
            }
            Some(("healthy", _)) | None => {}
            // Still initial or draining: look again at the next health check.
            Some(_) => self.at(now + i64::from(hc.interval_seconds) * MS, Ev::GraceOver(id)),
        }
    }

    pub(super) fn stop_task(&mut self, id: usize, stopping: i64, stopped: i64, info: StopInfo) {
        self.log(
            stopping,
            format!("task {id} stopping: {} ({})", info.code, info.reason),
        );
        let t = &mut self.tasks[id];
        t.stopping = Some(stopping);
        t.stopped = Some(stopped);
        t.stop = Some(info);
        self.at(stopped, Ev::TaskStopped(id));
    }

    /// STOPPED: ECS starts a replacement, EventBridge carries the event to the watchdog.
    pub(super) fn on_stopped(&mut self, id: usize, now: i64) {
        self.log(now, format!("task {id} STOPPED"));
        if self.cd.stopped_at.is_none() {
            let replacement = self.launch(Group::Green, now);
            self.log(
                now,
                format!("ECS starts task {replacement} to replace task {id}"),
            );
        }
        let deliver = now + i64::from(self.choice.get(Latency::EventBridgeDelivery)) * MS;
        self.at(deliver, Ev::WatchdogEvent(id));
    }
}
