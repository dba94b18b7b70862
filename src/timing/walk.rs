//! The good-version walk: a healthy version whose tasks take anywhere from the fastest start to
//! the declared start times, walked through a whole deployment (green registered at RUNNING and
//! `unhealthy` until its JVM answers, the gates' requests, staggered task starts, one scale-out
//! during the deployment, a cold JVM's slow first answers, background 5xx of 1 in 1,000), both
//! as the green and as the blue target group, and every deployment-group alarm evaluated on its
//! metric streams by the CloudWatch evaluator ([`crate::alarms`]) under each publication order.
//! Any scenario that reaches ALARM is a good version rolled back: [`walk`] returns them all.
//!
//! Pessimistic where AWS documents nothing finer: a minute reads `UnHealthyHostCount >= 1`
//! (even for the Minimum statistic) when any target is unhealthy at any moment of it.

use serde::Serialize;

use crate::alarms::data::{Delays, MetricStore};
use crate::alarms::evaluate::{Settings, State};
use crate::alarms::proof::{Class, Cold, GroupTraffic, Keys, PerClass, Sampling, Task, Version};
use crate::alarms::{AlarmDefinition, PointCache};
use crate::timing::model::TimingModel;
use crate::timing::{HealthCheck, StartTimes};

/// The fastest start of each phase a healthy task may have (the walk's lower bound).
pub const FASTEST_PHASE_SECONDS: u32 = 10;
/// Background 5xx of a good version (keep-alive races, client aborts): 1 in 1,000 when the app
/// keeps idle connections longer than the ALB; 1 in 200 when it does not (the ALB's documented
/// intermittent 502s, "Connection idle timeout"). Both assumed.
pub const NOISE_ERROR_RATE: f64 = 0.001;
pub const KEEPALIVE_RACE_ERROR_RATE: f64 = 0.005;
/// The quietest production rate the docs declare (a quiet hour, requests a second), and 50x it.
pub const QUIET_RPS: f64 = 20.0;
pub const RATES: [f64; 2] = [QUIET_RPS, 50.0 * QUIET_RPS];
/// The gates' requests on the test listener: two runs (AfterAllowTestTraffic and
/// BeforeAllowTraffic) of 3 health probes, 10 warm-up orders and ValidationOrders (20).
pub const GATE_REQUESTS: u64 = 2 * (3 + 10 + 20);
/// A good version's latency: p99 40 ms; a new task's first 50 answers take 900 ms (assumed:
/// the rehearsal's `cold` default; docs/deployments.md, "Application requirements", asks the
/// JVM to stay under P99LatencyAlarmSeconds while cold).
pub const GOOD_P99_SECONDS: f64 = 0.04;
pub const COLD: Cold = Cold {
    first_requests: 50,
    seconds: 0.9,
};

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
    /// `green` (the new version's target group) or `blue`.
    pub role: &'static str,
    pub delays: &'static str,
    /// The ALARM tick, seconds after the deployment started.
    pub at: i64,
    pub scenario: Scenario,
}

/// What a walked timeline depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub start: StartTimes,
    pub health_check: HealthCheck,
    pub canary_percent: u32,
    pub canary_minutes: u32,
    /// The share of requests a good version answers 5xx.
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
    for offset in [0, 15, 30, 45, 59] {
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
                    for at in (0..=horizon).step_by(30) {
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

fn tasks(launch: u32, starts: &[TaskStart], to_healthy: u32) -> Vec<Task> {
    starts
        .iter()
        .map(|t| {
            let running = launch + t.launch_to_running;
            Task {
                running: i64::from(running),
                healthy: Some(i64::from(running + t.running_to_healthy + to_healthy)),
                stopped: None,
            }
        })
        .collect()
}

/// When the gate sends its orders: the first second from its start at which a target is
/// healthy and none is still `initial` (registered, first checks pending).
fn gate_ready(all: &[Task], start: i64, to_unhealthy: i64) -> i64 {
    let healthy = |t: &Task| t.healthy.unwrap_or(i64::MAX);
    let latest = all.iter().map(healthy).max().unwrap_or(start).max(start);
    (start..=latest)
        .find(|&s| {
            all.iter().any(|t| healthy(t) <= s)
                && all
                    .iter()
                    .all(|t| s < t.running || s >= (t.running + to_unhealthy).min(healthy(t)))
        })
        .unwrap_or(latest)
}

/// The phases of one walked deployment, in seconds from its start.
#[derive(Debug, Clone, PartialEq)]
pub struct Phases {
    pub green: Vec<Task>,
    pub gate: i64,
    pub canary: i64,
    pub full: i64,
    pub end: i64,
}

/// The deployment's phases: the wave (and any scale-out) registered at RUNNING, the gates
/// when a target is healthy and none is initial, the canary 5 s later, the full shift after
/// the canary interval, then ten minutes more.
pub fn phases(t: &Timeline, s: &Scenario) -> Phases {
    let hc = t.health_check;
    let wave = tasks(0, &s.wave, hc.to_healthy());
    let gate = gate_ready(&wave, i64::from(s.gate_start), i64::from(hc.to_unhealthy()));
    let canary = gate + 5;
    let full = canary + i64::from(t.canary_minutes) * 60;
    let mut green = wave;
    if let Some((at, more)) = &s.scale_out {
        green.extend(tasks(*at, more, hc.to_healthy()));
    }
    Phases {
        green,
        gate,
        canary,
        full,
        end: full + 600,
    }
}

/// A version that answers every class with `p99` and `errors`, cold as [`COLD`].
pub fn version(errors: PerClass<f64>, p99: PerClass<f64>) -> Version {
    Version {
        error_rate: errors,
        p99_seconds: p99,
        cold: Some(COLD),
    }
}

/// The good version.
pub fn good() -> Version {
    version(PerClass::all(0.0), PerClass::all(GOOD_P99_SECONDS))
}

/// The new version's target group through the deployment.
pub fn green(t: &Timeline, s: &Scenario, v: Version, sampling: Sampling) -> GroupTraffic {
    let p = phases(t, s);
    let canary = f64::from(t.canary_percent) / 100.0;
    GroupTraffic {
        offset: s.offset,
        tasks: p.green,
        shares: vec![
            (p.canary, canary, Class::Canary),
            (p.full, 1.0, Class::Full),
        ],
        gate: Some((p.gate, GATE_REQUESTS)),
        rate: s.rate,
        noise: t.noise,
        version: v,
        end: p.end,
        to_unhealthy: i64::from(t.health_check.to_unhealthy()),
        sampling,
    }
}

/// The old (good, warm) version's target group: all of production, then the rest of the
/// canary, then nothing.
pub fn blue(t: &Timeline, s: &Scenario) -> GroupTraffic {
    let p = phases(t, s);
    let canary = f64::from(t.canary_percent) / 100.0;
    GroupTraffic {
        offset: s.offset,
        tasks: vec![
            Task {
                running: -600,
                healthy: Some(-590),
                stopped: None,
            };
            s.wave.len()
        ],
        shares: vec![
            (0, 1.0, Class::Full),
            (p.canary, 1.0 - canary, Class::Full),
            (p.full, 0.0, Class::Full),
        ],
        gate: None,
        rate: s.rate,
        noise: t.noise,
        version: Version {
            cold: None,
            ..good()
        },
        end: p.end,
        to_unhealthy: i64::from(t.health_check.to_unhealthy()),
        sampling: Sampling::AnyMoment,
    }
}

/// The dimensions an alarm's metrics carry (its target group).
pub fn keys_of(a: &AlarmDefinition) -> Keys {
    let dims: Vec<(String, String)> = a
        .metrics()
        .next()
        .map(|m| m.metric.dimensions.clone().into_iter().collect())
        .unwrap_or_default();
    Keys::new(&dims)
}

/// Publication orders every proof runs (each ALB metric's delay is one value per run, over
/// the assumed 30-150 s, docs/deployments.md): all 90 s (nominal), then the rehearsal's five
/// ([`crate::rehearse::latencies::publication_orders`]).
pub fn publication_orders() -> Vec<(&'static str, Delays)> {
    let mut orders = vec![("all 90 s", Delays::uniform(NOMINAL_DELAY))];
    orders.extend(crate::rehearse::latencies::publication_orders());
    orders
}

/// ASSUMPTION (AWS documents no bound for the ALB's publication delay): 30-150 s, nominal 90.
pub const DELAY_RANGE: (u32, u32) = crate::rehearse::latencies::PUBLICATION_RANGE;
pub const NOMINAL_DELAY: u32 = 90;

/// Walks every scenario through every deployment-group alarm, as green and as blue, under
/// every publication order and each evaluation setting; the trips (empty = a good version
/// never rolls back).
pub fn walk(m: &TimingModel, settings: &[Settings]) -> Vec<Trip> {
    let t = Timeline::of(m);
    let orders = publication_orders();
    let mut trips = Vec::new();
    for s in scenarios(&t) {
        let mut roles = vec![("green", green(&t, &s, good(), Sampling::AnyMoment))];
        // Blue's traffic does not depend on a scale-out of green: walked once per timeline.
        if s.scale_out.is_none() {
            roles.push(("blue", blue(&t, &s)));
        }
        for (role, traffic) in roles {
            let run = Run {
                role,
                scenario: &s,
                window: (0, traffic.end + i64::from(s.offset) + 300),
            };
            let mut built: Vec<(Keys, MetricStore)> = Vec::new();
            for a in &m.alarms {
                let keys = keys_of(a);
                if !built.iter().any(|(k, _)| *k == keys) {
                    let store = traffic.streams(&keys);
                    built.push((keys.clone(), store));
                }
                let (_, store) = built.iter().find(|(k, _)| *k == keys).expect("built above");
                run.alarm(a, store, &orders, settings, &mut trips);
            }
        }
    }
    trips
}

/// One walked deployment as one target group sees it.
struct Run<'a> {
    role: &'static str,
    scenario: &'a Scenario,
    window: (i64, i64),
}

impl Run<'_> {
    /// Every publication order and evaluation setting of one alarm; each ALARM is a trip.
    fn alarm(
        &self,
        a: &AlarmDefinition,
        store: &MetricStore,
        orders: &[(&'static str, Delays)],
        settings: &[Settings],
        trips: &mut Vec<Trip>,
    ) {
        let offset = i64::from(self.scenario.offset);
        let trip = |delays: &'static str, at: i64, alarm: String| Trip {
            alarm,
            role: self.role,
            delays,
            at: at - offset,
            scenario: self.scenario.clone(),
        };
        let cache = PointCache::default();
        for (name, delays) in orders {
            let published = match a.published_with(store, delays, &cache) {
                Ok(p) => p,
                Err(e) => {
                    trips.push(trip(
                        name,
                        0,
                        format!("{} (cannot be evaluated: {e})", a.logical_id),
                    ));
                    continue;
                }
            };
            for set in settings {
                match published.first_alarm(self.window, set, State::Ok) {
                    Ok(None) => {}
                    Ok(Some(at)) => trips.push(trip(name, at, a.logical_id.clone())),
                    Err(e) => trips.push(trip(
                        name,
                        0,
                        format!("{} (cannot be evaluated: {e})", a.logical_id),
                    )),
                }
            }
        }
    }
}
