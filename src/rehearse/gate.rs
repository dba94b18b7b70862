//! The deployment gates in the rehearsal: each hook invocation polls target health every
//! `WaitBudget::poll` and asks `gates::targets::judge`; once ready, the health warm-up and the
//! synthetic orders (warm-up orders, then the judged ones, `concurrency` in flight, each with
//! the request timeout, stopping at the first failure or once p99 is lost, as
//! `gates::validation` sends them) are answered by the modelled version, and
//! `gates::validation::judge` gives the verdict. The budgets are the function's own
//! (`HookConfig::from_env` on the template's environment, the Lambda timeout).
//!
//! How the version answers: request k of a traffic class with 5xx rate r fails when
//! floor(k*r) > floor((k-1)*r); a task's first `cold.first_requests` answers take the cold
//! latency; otherwise 2 % of the class's requests take its p99 and the rest a quarter of it
//! (the same rules as `alarms::proof`, so the gate and the alarms see one version).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::gates::hook::Listener;
use crate::gates::targets::{judge as judge_targets, Readiness, TargetObservation};
use crate::gates::validation::{
    judge, HealthOutcome, OrderResult, ValidationConfig, Verdict, HEALTH_PAUSE_MS,
};

use super::ecs::{target_state, Group};
use super::engine::{Ev, Sim, MS};
use super::scenario::{PerPhase, DEFAULT_P99_MS};

/// Whether request `k` (from 1) of a class with rate `r` is a failing (or slow) one
/// (`alarms::proof::failing`, the rule the alarms' traffic uses).
pub fn hits(k: u64, r: f64) -> bool {
    k >= 1 && crate::alarms::proof::failing(k - 1, 1, r) == 1
}
fn target_id(id: usize) -> String {
    format!("10.0.{}.{}:8080", id / 250, id % 250 + 4)
}

impl Sim<'_> {
    fn observations(&self, now: i64) -> Vec<(usize, TargetObservation)> {
        let hc = self.setup.timing.health_check;
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.group == Group::Green)
            .filter_map(|(id, t)| {
                let (state, reason) = target_state(t, now, hc)?;
                Some((
                    id,
                    TargetObservation {
                        id: target_id(id),
                        state: state.to_string(),
                        reason: reason.map(str::to_string),
                        description: None,
                    },
                ))
            })
            .collect()
    }

    /// When gate `i`, started at `started`, must have its verdict: its Lambda timeout less the
    /// report reserve, at most `max_run` (as `gates::hook::handle` bounds the run).
    fn gate_until(&self, i: usize, started: i64) -> i64 {
        let cfg = &self.setup.hooks[i].1;
        let lambda = i64::from(self.setup.timing.hook_timeout_seconds) * MS;
        let budget =
            (lambda - cfg.report_reserve.as_millis() as i64).min(cfg.max_run.as_millis() as i64);
        started + budget
    }

    /// One reading of target health by gate `i`, started at `started`.
    pub(super) fn on_gate_poll(&mut self, i: usize, started: i64, now: i64) {
        if self.cd.stopped_at.is_some() || self.cd.hook != Some(i) {
            return;
        }
        let cfg = self.setup.hooks[i].1.clone();
        let elapsed = Duration::from_millis((now - started).max(0) as u64);
        let obs: Vec<TargetObservation> =
            self.observations(now).into_iter().map(|(_, o)| o).collect();
        let seen = self.seen.entry(i).or_default();
        seen.record(&obs, elapsed);
        let readiness = judge_targets(
            &obs,
            seen,
            elapsed,
            cfg.wait.never_healthy,
            cfg.wait.readiness,
        );
        match readiness {
            Readiness::Ready => self.send_orders(i, started, now),
            Readiness::Wait(why) => {
                let next = now + (cfg.wait.poll.as_millis() as i64).max(1);
                if next >= self.gate_until(i, started) {
                    let why =
                        format!("the time budget ran out waiting for a healthy target: {why}");
                    self.report(i, now, Verdict::Fail(format!("target health: {why}")));
                } else {
                    self.at(next, Ev::GatePoll(i, started));
                }
            }
            Readiness::Fail(why) => {
                self.report(i, now, Verdict::Fail(format!("target health: {why}")))
            }
        }
    }

    fn report(&mut self, i: usize, at: i64, verdict: Verdict) {
        let event = self.setup.hooks[i].0;
        self.log(at, format!("{event} gate: {verdict:?}"));
        if self.scenario.green.hooks_report {
            self.at(at, Ev::HookReport(i, verdict.passed()));
        } else {
            self.log(at, format!("{event}: the hook never reports its status"));
        }
    }

    /// Production requests each green target has answered by `t` (the production gate meets
    /// tasks production has already warmed).
    fn production_served(&self, t: i64, targets: usize) -> u64 {
        let Some(canary) = self.cd.canary.filter(|c| *c < t) else {
            return 0;
        };
        let rate = self.scenario.production_rps;
        let share = f64::from(self.setup.timing.canary_percent) / 100.0;
        let full = self.cd.full.unwrap_or(i64::MAX).min(t);
        let secs = |ms: i64| ms.max(0) as f64 / MS as f64;
        let n = rate * (share * secs(full - canary) + secs(t - full));
        (n / targets.max(1) as f64) as u64
    }

    fn answer_ms(&self, task: usize, k: u64, p99: f64, now: i64, targets: usize) -> f64 {
        let served = self.tasks[task].gate_served + self.production_served(now, targets);
        match self.scenario.green.cold {
            Some(c) if served < c.first_requests => c.p99_ms,
            _ if hits(k, 0.02) => p99,
            _ => p99 / 4.0,
        }
    }

    /// The health warm-up and the orders; reports at the end, or when the function's budget
    /// runs out (its Lambda timeout less the report reserve, at most `max_run`, as
    /// `gates::hook::handle` bounds the run).
    fn send_orders(&mut self, i: usize, started: i64, now: i64) {
        let cfg = self.setup.hooks[i].1.clone();
        let v = &cfg.validation;
        let (listener_class, open) = match cfg.listener {
            Listener::Test => ("test", self.setup.gate_paths.0),
            Listener::Production => ("full", self.setup.gate_paths.1),
        };
        let health = self.health(v, open);
        let t0 = now + health.waited_ms as i64;
        if !health.healthy {
            self.report(i, t0, judge(v, &health, &[], false));
            return;
        }
        let targets: Vec<usize> = self
            .observations(t0)
            .into_iter()
            .filter(|(_, o)| o.state == "healthy")
            .map(|(id, _)| id)
            .collect();
        // The run for this many healthy targets, as gates::aws::gate sizes it.
        let v = v.for_targets(targets.len());
        let (results, end) = self.orders(i, &v, (t0, &targets), listener_class);
        let until = self.gate_until(i, started);
        let verdict = judge(&v, &health, &results, end > until);
        self.report(i, end.min(until), verdict);
    }

    fn health(&self, v: &crate::gates::validation::ValidationConfig, open: bool) -> HealthOutcome {
        if !open {
            // Every attempt times out until the warm-up's own limit.
            let per = v.request_timeout.as_millis() as u64 + v.warmup_interval.as_millis() as u64;
            let attempts = (v.warmup.as_millis() as u64).div_ceil(per.max(1)) as u32;
            return HealthOutcome {
                healthy: false,
                attempts,
                waited_ms: v.warmup.as_millis() as u64,
                last_status: None,
                last_error: Some("operation timed out (no network path to the listener)".into()),
            };
        }
        let n = i64::from(v.healthy_in_a_row);
        HealthOutcome {
            healthy: true,
            attempts: v.healthy_in_a_row,
            waited_ms: (n * 5 + (n - 1) * HEALTH_PAUSE_MS as i64) as u64,
            last_status: Some(200),
            last_error: None,
        }
    }

    /// Sends the orders as `gates::validation` does; the results and when the last answered.
    fn orders(
        &mut self,
        i: usize,
        v: &ValidationConfig,
        (t0, targets): (i64, &[usize]),
        class: &str,
    ) -> (Vec<OrderResult>, i64) {
        let g = &self.scenario.green;
        let pick = |p: Option<PerPhase>, d: f64| {
            let p = p.unwrap_or(PerPhase::all(d));
            if class == "test" {
                p.test
            } else {
                p.full
            }
        };
        let (rate, p99) = (pick(g.error_rate, 0.0), pick(g.p99_ms, DEFAULT_P99_MS));
        let total = v.warmup_orders + v.orders;
        let slow_limit = crate::gates::validation::slow_answers_that_fail_p99(v.orders);
        let timeout = v.request_timeout.as_millis() as f64;
        let mut flight: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
        let (mut next, mut slow, mut stop, mut clock) = (0usize, 0usize, false, t0);
        let mut results = Vec::new();
        let mut answers: Vec<(f64, bool)> = Vec::new();
        loop {
            while !stop && flight.len() < v.concurrency.max(1) && next < total {
                let task = targets[next % targets.len().max(1)];
                let ms = self.answer_ms(task, next as u64 + 1, p99, clock, targets.len());
                self.tasks[task].gate_served += 1;
                answers.push((ms, hits(next as u64 + 1, rate)));
                flight.push(Reverse((clock + ms.min(timeout).ceil() as i64, next)));
                next += 1;
            }
            let Some(Reverse((done, k))) = flight.pop() else {
                break;
            };
            clock = done;
            let (ms, failed) = answers[k];
            let error = if ms > timeout {
                Some("operation timed out".to_string())
            } else if failed {
                Some("status 500".to_string())
            } else {
                None
            };
            let r = OrderResult {
                index: k,
                idempotency_key: format!("rehearsal-{k}"),
                status: if ms > timeout {
                    None
                } else if failed {
                    Some(500)
                } else {
                    Some(200)
                },
                latency_ms: ms.min(timeout) as u64,
                error,
                body_excerpt: None,
            };
            if k >= v.warmup_orders && r.latency_ms > v.p99_threshold.as_millis() as u64 {
                slow += 1;
            }
            stop |= !r.ok() || slow >= slow_limit;
            results.push(r);
        }
        results.sort_by_key(|r| r.index);
        let event = self.setup.hooks[i].0;
        self.gate_traffic
            .push((t0, clock, results.len() as u64, event));
        (results, clock)
    }
}
