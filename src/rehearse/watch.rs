//! The watchdog in the rehearsal: its two inputs (STOPPED events through EventBridge, and the
//! per-minute schedule re-checking every `RECHECK_SECONDS` for 50 s) on the model's state, the
//! decisions by the watchdog's own pure functions.
//!
//! The watchdog joins a stopped task to its task set by task definition ARN and times green's
//! health from the task set's `createdAt` (both documented fields): the model gives each task
//! set its own revision and the green set the deployment's start as its creation time.

use crate::watchdog::{
    classify, decide, health_verdict, hook_verdict, join, ContainerExit, Decision, DeploymentView,
    HealthVerdict, HookVerdict, LifecycleView, TaskSetView, TaskStopped, INVOCATION_SECONDS,
    RECHECK_SECONDS,
};

use super::ecs::{target_state, wall, Group};
use super::engine::{Ev, Sim, StoppedBy, MS};

pub const DEPLOYMENT_ID: &str = "d-REHEARSAL";
const GREEN_SET: &str = "ecs-svc/2222222222222222222";
const BLUE_SET: &str = "ecs-svc/1111111111111111111";
const GREEN_TD: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker:2";
const BLUE_TD: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker:1";

impl Sim<'_> {
    fn task_sets(&self) -> Vec<TaskSetView> {
        vec![
            TaskSetView {
                id: BLUE_SET.into(),
                external_id: None,
                task_definition: BLUE_TD.into(),
                status: "PRIMARY".into(),
                target_group_arn: Some("blue".into()),
                created_at: Some(wall(-3600 * MS, self.phase)),
            },
            TaskSetView {
                id: GREEN_SET.into(),
                external_id: Some(DEPLOYMENT_ID.into()),
                task_definition: GREEN_TD.into(),
                status: "ACTIVE".into(),
                target_group_arn: Some("green".into()),
                created_at: Some(wall(0, self.phase)),
            },
        ]
    }

    fn deployment_view(&self) -> DeploymentView {
        DeploymentView {
            id: DEPLOYMENT_ID.into(),
            status: if self.cd.finished {
                "Succeeded"
            } else {
                "InProgress"
            }
            .into(),
            stopping: self.cd.stopped_at.is_some(),
        }
    }

    /// The task as its STOPPED event carries it.
    fn stopped_event(&self, id: usize) -> TaskStopped {
        let t = &self.tasks[id];
        let info = t.stop.clone();
        let (set, td) = match t.group {
            Group::Green => (GREEN_SET, GREEN_TD),
            Group::Blue => (BLUE_SET, BLUE_TD),
        };
        TaskStopped {
            task_arn: format!("arn:aws:ecs:us-east-2:111122223333:task/orderbroker/{id:032x}"),
            cluster_arn: "arn:aws:ecs:us-east-2:111122223333:cluster/orderbroker".into(),
            group: "service:orderbroker".into(),
            last_status: "STOPPED".into(),
            started_by: Some(set.into()),
            task_definition_arn: td.into(),
            stop_code: info.as_ref().map(|i| i.code.to_string()),
            stopped_reason: info.as_ref().map(|i| i.reason.clone()),
            started_at: (t.running < i64::MAX / 8).then(|| wall(t.running, self.phase)),
            stopped_at: t.stopped.map(|s| wall(s, self.phase)),
            version: 5,
            containers: vec![ContainerExit {
                name: "orderbroker".into(),
                exit_code: info.as_ref().and_then(|i| i.exit_code),
                reason: None,
            }],
        }
    }

    /// A STOPPED event reaches the watchdog.
    pub(super) fn on_watchdog_event(&mut self, id: usize, now: i64) {
        let never = self.setup.watchdog.never_healthy;
        let event = self.stopped_event(id);
        let crate::watchdog::Join::Green { .. } = join(&event, &self.task_sets()) else {
            return;
        };
        let this = classify(&event, never);
        let counted = (0..self.tasks.len())
            .filter(|&k| k == id || self.tasks[k].stopped.is_some_and(|s| s <= now))
            .filter(|&k| self.tasks[k].group == Group::Green)
            .filter(|&k| classify(&self.stopped_event(k), never).counted())
            .count();
        let n = self.setup.watchdog.counted_stops;
        match decide(&self.deployment_view(), &this, counted, n) {
            Decision::Stop { why, .. } => {
                self.log(now, format!("watchdog: StopDeployment ({why})"));
                self.stop_deployment(now, StoppedBy::WatchdogCrash);
            }
            Decision::Nothing(why) => self.log(now, format!("watchdog (event): {why}")),
        }
    }

    /// The deployment's lifecycle events as `BatchGetDeploymentTargets` would list them.
    fn lifecycle(&self) -> Vec<LifecycleView> {
        let event = |name: &str, start: i64, done: bool| LifecycleView {
            name: name.to_string(),
            status: if done { "Succeeded" } else { "InProgress" }.into(),
            start: Some(wall(start, self.phase)),
        };
        let mut out = vec![event("Install", 0, self.cd.install_done.is_some())];
        for (i, start) in &self.cd.hook_started {
            out.push(event(
                self.setup.hooks[*i].0,
                *start,
                self.cd.hook != Some(*i),
            ));
        }
        if let Some(c) = self.cd.canary {
            out.push(event("AllowTraffic", c, self.cd.full.is_some()));
        }
        out
    }

    /// The invocation's reading of the lifecycle events (at its start, and at a hook's
    /// deadline inside it): `watchdog::hook_verdict`.
    pub(super) fn on_watchdog_hooks(&mut self, started: i64, now: i64) {
        if self.cd.finished || self.cd.stopped_at.is_some() {
            return;
        }
        let hooks: Vec<&str> = self.setup.hooks.iter().map(|h| h.0).collect();
        let timeout = self.setup.watchdog.hook_timeout;
        match hook_verdict(&self.lifecycle(), &hooks, wall(now, self.phase), timeout) {
            HookVerdict::Silent(why) => {
                self.log(now, format!("watchdog: StopDeployment ({why})"));
                self.stop_deployment(now, StoppedBy::WatchdogHookSilent);
            }
            HookVerdict::Waiting(Some(due)) => {
                let at = (due - wall(0, self.phase)).num_milliseconds();
                if at < started + i64::from(INVOCATION_SECONDS) * MS && now == started {
                    self.at(at.max(now), Ev::WatchdogHookDue(started));
                }
            }
            HookVerdict::Waiting(None) => {}
        }
    }

    /// The first scheduled invocation: the next whole minute of the wall clock.
    pub(super) fn first_watchdog_minute(&self) -> i64 {
        i64::from((60 - self.phase % 60) % 60) * MS
    }

    /// One check of a scheduled invocation that started at `started`.
    pub(super) fn on_watchdog_check(&mut self, started: i64, now: i64) {
        if now == started {
            self.at(started + 60 * MS, Ev::WatchdogCheck(started + 60 * MS));
            self.on_watchdog_hooks(started, now);
        }
        if self.cd.finished || self.cd.stopped_at.is_some() {
            return;
        }
        let hc = self.setup.timing.health_check;
        let healthy = self
            .tasks
            .iter()
            .filter(|t| t.group == Group::Green)
            .filter(|t| target_state(t, now, hc).is_some_and(|(s, _)| s == "healthy"))
            .count();
        let created = self.task_sets()[1].created_at;
        let verdict = health_verdict(
            wall(now, self.phase),
            created,
            healthy,
            self.setup.watchdog.readiness,
        );
        match verdict {
            HealthVerdict::NeverHealthy(why) => {
                self.log(now, format!("watchdog: StopDeployment ({why})"));
                self.stop_deployment(now, StoppedBy::WatchdogNeverHealthy);
            }
            HealthVerdict::Waiting(_) => {
                let again = now + i64::from(RECHECK_SECONDS) * MS;
                if again < started + i64::from(INVOCATION_SECONDS) * MS {
                    self.at(again, Ev::WatchdogCheck(started));
                }
            }
            HealthVerdict::Healthy => {}
        }
    }
}
