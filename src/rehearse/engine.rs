//! The discrete-event clock and CodeDeploy's side of the rehearsal (pure): the ECS blue/green
//! lifecycle (Start, Install, AllowTestTraffic, the hooks in the AppSpec's order, AllowTraffic
//! with the template's canary, the termination wait), hook timeouts, alarms seen, StopDeployment
//! and the rollback sequence. ECS, the ALB, the gates and the watchdog are in their own modules.
//!
//! AWS sources: the lifecycle and its hooks (CodeDeploy user guide, "AppSpec 'hooks' section
//! for an Amazon ECS deployment": "BeforeInstall ... AfterInstall ... AfterAllowTestTraffic ...
//! BeforeAllowTraffic ... AfterAllowTraffic"); a hook not reported within one hour fails the
//! deployment (same page; quotas: 3600 s); "CodeDeploy implements rollbacks by rerouting
//! traffic from the replacement task set to the original task set" ("Deployments on an Amazon
//! ECS compute platform"); a target with no in-flight requests deregisters at once, otherwise
//! after the deregistration delay (ELB docs, "Deregistration delay"). ASSUMPTIONS (named in
//! docs/rehearsal.md): Install ends when every replacement task is RUNNING; the hooks of one
//! side of AllowTraffic run back to back; the termination wait still rolls back on an alarm.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use super::ecs::{Group, Task};
use super::latencies::{Choice, Latency};
use super::scenario::Scenario;
use super::world::Setup;

/// Milliseconds per second: the clock's unit.
pub const MS: i64 = 1000;
/// CodeDeploy's limit for a lifecycle event (quotas: "Maximum number of seconds until a
/// deployment lifecycle event fails if not completed | 3600").
pub const LIFECYCLE_EVENT_LIMIT_SECONDS: i64 = 3600;

/// Something that happens at an instant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ev {
    TaskRunning(usize),
    PullFailed(usize),
    InstallCheck,
    HookStart(usize),
    /// Hook index, when that gate started.
    GatePoll(usize, i64),
    HookReport(usize, bool),
    HookTimeout(usize),
    Crash(usize),
    GraceOver(usize),
    TaskStopped(usize),
    WatchdogEvent(usize),
    WatchdogCheck(i64),
    /// A hook's silence deadline inside an invocation that started then.
    WatchdogHookDue(i64),
    ScaleOut,
    FullShift,
    AlarmSeen(String),
    Finished,
}

/// What stopped the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StoppedBy {
    Gate(&'static str),
    WatchdogNeverHealthy,
    WatchdogCrash,
    WatchdogHookSilent,
    Alarm(String),
    HookTimeout,
}

impl StoppedBy {
    /// The `stopped_by` value of the report.
    pub fn label(&self) -> String {
        match self {
            StoppedBy::Gate(e) => format!("gate:{e}"),
            StoppedBy::WatchdogNeverHealthy => "watchdog:never-healthy".into(),
            StoppedBy::WatchdogCrash => "watchdog:crash-count".into(),
            StoppedBy::WatchdogHookSilent => "watchdog:hook-silent".into(),
            StoppedBy::Alarm(id) => format!("alarm:{id}"),
            StoppedBy::HookTimeout => "codedeploy:hook-timeout".into(),
        }
    }
}

/// CodeDeploy's view of the deployment and the listeners it moves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CodeDeploy {
    pub install_done: Option<i64>,
    /// The hook in progress and when each started.
    pub hook: Option<usize>,
    pub hook_started: Vec<(usize, i64)>,
    pub test_on_green: Option<i64>,
    pub canary: Option<i64>,
    pub full: Option<i64>,
    pub succeeded_at: Option<i64>,
    pub finished: bool,
    pub finished_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub stopped_by: Option<StoppedBy>,
    /// When production is back on blue (after a stop).
    pub back_on_blue: Option<i64>,
    pub complete: Option<i64>,
    /// Each lifecycle event that ended, as CodeDeploy would list it: name, start, end.
    pub phases: Vec<(String, i64, i64)>,
}

/// One run of the model.
pub struct Sim<'a> {
    pub(super) setup: &'a Setup,
    pub(super) scenario: &'a Scenario,
    pub(super) choice: Choice,
    pub(super) phase: u32,
    queue: BinaryHeap<Reverse<(i64, u64, Ev)>>,
    seq: u64,
    pub(super) tasks: Vec<Task>,
    pub(super) initial_green: Vec<usize>,
    pub(super) cd: CodeDeploy,
    pub(super) log: Option<Vec<(i64, String)>>,
    /// Gate order windows: (start, end, orders, hook event).
    pub(super) gate_traffic: Vec<(i64, i64, u64, &'static str)>,
    /// Each gate run's first sight of each target (gates::targets::FirstSeen).
    pub(super) seen: std::collections::BTreeMap<usize, crate::gates::targets::FirstSeen>,
    waves_done: u32,
}

/// What one run leaves behind.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub cd: CodeDeploy,
    pub tasks: Vec<Task>,
    pub gate_traffic: Vec<(i64, i64, u64, &'static str)>,
    pub phase: u32,
    pub choice: Choice,
    pub log: Vec<(i64, String)>,
    /// Where the run's traffic and alarms end.
    pub end: i64,
}

impl<'a> Sim<'a> {
    pub(super) fn at(&mut self, t: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    pub(super) fn log(&mut self, t: i64, what: String) {
        if let Some(log) = &mut self.log {
            log.push((t, what));
        }
    }

    fn new(setup: &'a Setup, scenario: &'a Scenario, mut choice: Choice, log: bool) -> Self {
        let phase = choice.get(Latency::MinutePhase);
        Sim {
            setup,
            scenario,
            choice,
            phase,
            queue: BinaryHeap::new(),
            seq: 0,
            tasks: Vec::new(),
            initial_green: Vec::new(),
            cd: CodeDeploy::default(),
            log: log.then(Vec::new),
            gate_traffic: Vec::new(),
            seen: Default::default(),
            waves_done: 0,
        }
    }

    fn start(&mut self, alarm: Option<(i64, String)>) {
        let warm = -600 * MS;
        for _ in 0..self.setup.tasks {
            let id = self.launch(Group::Blue, warm);
            self.tasks[id].app_ok = Some(warm);
        }
        self.log(
            0,
            "deployment created; Install: the replacement task set starts".into(),
        );
        for _ in 0..self.setup.tasks {
            let id = self.launch(Group::Green, 0);
            self.initial_green.push(id);
        }
        if let Some(w) = self.scenario.scale_out {
            self.at(i64::from(w.first_s) * MS, Ev::ScaleOut);
        }
        let first = self.first_watchdog_minute();
        self.at(first, Ev::WatchdogCheck(first));
        if let Some((alarm_at, id)) = alarm {
            let seen = alarm_at + i64::from(self.choice.get(Latency::AlarmPoll)) * MS;
            self.at(seen, Ev::AlarmSeen(id));
        }
    }

    fn dispatch(&mut self, now: i64, ev: Ev) {
        match ev {
            Ev::TaskRunning(id) => self.on_running(id, now),
            Ev::PullFailed(id) => self.on_pull_failed(id, now),
            Ev::InstallCheck => self.on_install_check(now),
            Ev::HookStart(i) => self.on_hook_start(i, now),
            Ev::GatePoll(i, started) => self.on_gate_poll(i, started, now),
            Ev::HookReport(i, ok) => self.on_hook_report(i, ok, now),
            Ev::HookTimeout(i) => {
                if self.cd.hook == Some(i) {
                    self.log(
                        now,
                        "CodeDeploy: the lifecycle event timed out (1 hour)".into(),
                    );
                    self.stop_deployment(now, StoppedBy::HookTimeout);
                }
            }
            Ev::Crash(id) => self.on_crash(id, now),
            Ev::GraceOver(id) => self.on_grace_over(id, now),
            Ev::TaskStopped(id) => self.on_stopped(id, now),
            Ev::WatchdogEvent(id) => self.on_watchdog_event(id, now),
            Ev::WatchdogCheck(started) => self.on_watchdog_check(started, now),
            Ev::WatchdogHookDue(started) => self.on_watchdog_hooks(started, now),
            Ev::ScaleOut => self.on_scale_out(now),
            Ev::FullShift => self.on_full_shift(now),
            Ev::AlarmSeen(id) => {
                self.log(now, format!("CodeDeploy sees alarm {id} in ALARM"));
                self.stop_deployment(now, StoppedBy::Alarm(id));
            }
            Ev::Finished => {
                self.cd.finished = true;
                self.cd.finished_at = Some(now);
                self.log(
                    now,
                    "the termination wait is over: deployment Succeeded".into(),
                );
            }
        }
    }

    fn on_scale_out(&mut self, now: i64) {
        let Some(w) = self.scenario.scale_out else {
            return;
        };
        if self.cd.stopped_at.is_some() || self.cd.finished {
            return;
        }
        for _ in 0..w.tasks {
            self.launch(Group::Blue, now);
            self.launch(Group::Green, now);
        }
        self.log(
            now,
            format!("scale-out: {} more tasks in each task set", w.tasks),
        );
        self.waves_done += 1;
        if self.waves_done < w.waves {
            self.at(now + i64::from(w.every_s) * MS, Ev::ScaleOut);
        }
    }

    fn on_install_check(&mut self, now: i64) {
        if self.cd.install_done.is_some() || self.cd.stopped_at.is_some() {
            return;
        }
        if self
            .initial_green
            .iter()
            .any(|&id| self.tasks[id].running > now)
        {
            return;
        }
        self.cd.install_done = Some(now);
        self.cd.phases.push(("Install".into(), 0, now));
        let hook = now + i64::from(self.choice.get(Latency::InstallToFirstHook)) * MS;
        self.cd.test_on_green = Some(hook);
        self.log(now, "Install done: every replacement task RUNNING".into());
        self.at(hook, Ev::HookStart(0));
    }

    fn on_hook_start(&mut self, i: usize, now: i64) {
        if self.cd.stopped_at.is_some() {
            return;
        }
        let event = self.setup.hooks[i].0;
        self.cd.hook = Some(i);
        self.cd.hook_started.push((i, now));
        self.log(now, format!("{event}: the gate is invoked"));
        self.at(now + LIFECYCLE_EVENT_LIMIT_SECONDS * MS, Ev::HookTimeout(i));
        self.at(now, Ev::GatePoll(i, now));
    }

    fn on_hook_report(&mut self, i: usize, ok: bool, now: i64) {
        if self.cd.stopped_at.is_some() || self.cd.hook != Some(i) {
            return;
        }
        let event = self.setup.hooks[i].0;
        if let Some((_, start)) = self.cd.hook_started.iter().rev().find(|(k, _)| *k == i) {
            self.cd.phases.push((event.to_string(), *start, now));
        }
        if !ok {
            self.stop_deployment(now, StoppedBy::Gate(event));
            return;
        }
        self.cd.hook = None;
        let next = i + 1;
        match self.setup.hooks.get(next).map(|h| h.0) {
            Some("AfterAllowTraffic") => {
                let reroute = i64::from(self.choice.get(Latency::ListenerReroute)) * MS;
                let canary = now + reroute;
                self.cd.canary = Some(canary);
                self.log(
                    canary,
                    format!(
                        "AllowTraffic: {} % of production on green",
                        self.setup.timing.canary_percent
                    ),
                );
                let full = canary + i64::from(self.setup.timing.canary_minutes) * 60 * MS + reroute;
                self.at(full, Ev::FullShift);
            }
            Some(_) => self.at(now, Ev::HookStart(next)),
            None => self.succeed(now),
        }
    }

    fn succeed(&mut self, now: i64) {
        self.cd.succeeded_at = Some(now);
        let wait = i64::from(self.setup.timing.blue_termination_minutes) * 60 * MS;
        self.log(now, "every hook passed; the termination wait begins".into());
        self.at(now + wait, Ev::Finished);
    }

    fn on_full_shift(&mut self, now: i64) {
        if self.cd.stopped_at.is_some() {
            return;
        }
        self.cd.full = Some(now);
        if let Some(c) = self.cd.canary {
            self.cd.phases.push(("AllowTraffic".into(), c, now));
        }
        self.log(now, "AllowTraffic: all of production on green".into());
        let next = self
            .setup
            .hooks
            .iter()
            .position(|h| h.0 == "AfterAllowTraffic");
        match next {
            Some(i) => self.at(now, Ev::HookStart(i)),
            None => self.succeed(now),
        }
    }

    /// A hook Failed, an alarm seen, StopDeployment or a timeout: the rollback.
    pub(super) fn stop_deployment(&mut self, now: i64, by: StoppedBy) {
        if self.cd.stopped_at.is_some() || self.cd.finished {
            return;
        }
        self.log(now, format!("deployment stopped by {}", by.label()));
        self.cd.stopped_at = Some(now);
        self.cd.stopped_by = Some(by);
        let reacted = now + i64::from(self.choice.get(Latency::CodeDeployReaction)) * MS;
        let routed = reacted + i64::from(self.choice.get(Latency::ListenerReroute)) * MS;
        let moved = self.cd.canary.is_some_and(|c| c <= routed);
        let back = if moved { routed } else { now };
        self.cd.back_on_blue = Some(back);
        self.log(routed, "listeners back on the original task set".into());
        let mut last = routed;
        for id in 0..self.tasks.len() {
            last = last.max(self.stop_green(id, routed, moved));
        }
        let complete = last + i64::from(self.choice.get(Latency::TaskSetDeletion)) * MS;
        self.cd.complete = Some(complete);
        self.log(
            complete,
            "the replacement task set is deleted: rollback complete".into(),
        );
    }

    /// Stops one green task for the rollback; when it is STOPPED.
    fn stop_green(&mut self, id: usize, routed: i64, moved: bool) -> i64 {
        let t = &self.tasks[id];
        if t.group != Group::Green {
            return routed;
        }
        if let Some(s) = t.stopped {
            return s;
        }
        let timing = &self.setup.timing;
        let served = moved || t.gate_served > 0;
        let drain = if served && t.running <= routed {
            i64::from(timing.deregistration_delay_seconds) * MS
        } else {
            0
        };
        let term = if t.running <= routed {
            i64::from(timing.stop_timeout_seconds) * MS
        } else {
            0
        };
        let stopped =
            routed + drain + term + i64::from(self.choice.get(Latency::FargateDeprovision)) * MS;
        let t = &mut self.tasks[id];
        t.stopping = Some(routed);
        t.stopped = Some(stopped);
        stopped
    }

    fn horizon(&self) -> Option<i64> {
        self.cd.complete.or(self.cd.finished_at)
    }
}

/// Runs the scenario once. `alarm`: an alarm of the group reaches ALARM at that instant (from
/// the CloudWatch evaluator on an earlier run's traffic); CodeDeploy sees it one poll later.
pub fn run(
    setup: &Setup,
    scenario: &Scenario,
    choice: Choice,
    alarm: Option<(i64, String)>,
    log: bool,
) -> Outcome {
    let mut sim = Sim::new(setup, scenario, choice, log);
    sim.start(alarm);
    let cap = 2 * LIFECYCLE_EVENT_LIMIT_SECONDS * MS;
    while let Some(Reverse((now, _, ev))) = sim.queue.pop() {
        if now > cap || sim.horizon().is_some_and(|h| now > h) {
            break;
        }
        sim.dispatch(now, ev);
    }
    let end = sim.horizon().unwrap_or(cap);
    let mut log = sim.log.take().unwrap_or_default();
    log.sort_by_key(|(t, _)| *t);
    Outcome {
        cd: sim.cd,
        tasks: sim.tasks,
        gate_traffic: sim.gate_traffic,
        phase: sim.phase,
        choice: sim.choice,
        log,
        end,
    }
}
