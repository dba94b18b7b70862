//! What the run's traffic does to the deployment group's alarms and to production (pure): each
//! target group's ALB metrics built from the run (`alarms::proof::GroupTraffic`, the ALB's
//! documented reporting) and every alarm of the group evaluated by the library's CloudWatch
//! evaluator (`alarms::AlarmDefinition::first_alarm`), never restated here.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::alarms::data::{Delays, MetricStore};
use crate::alarms::evaluate::{Settings, State};
use crate::alarms::proof::{self, Class, Cold, GroupTraffic, PerClass, Sampling, Version};
use crate::alarms::AlarmDefinition;
use crate::timing::walk;

use super::ecs::{first_healthy, Group};
use super::engine::{Outcome, MS};
use super::scenario::{PerPhase, Scenario, DEFAULT_P99_MS};
use super::world::Setup;

/// Seconds of the deployment, rounded down.
fn secs(ms: i64) -> i64 {
    ms.div_euclid(MS)
}

fn per_class(p: Option<PerPhase>, default: f64, scale: f64) -> PerClass<f64> {
    let p = p.unwrap_or(PerPhase::all(default));
    PerClass {
        test: p.test * scale,
        canary: p.canary * scale,
        full: p.full * scale,
    }
}

/// Where the alarms stop mattering: CodeDeploy acts on an alarm only while the deployment is
/// in progress (until it is stopped, or the termination wait is over).
pub fn horizon(o: &Outcome) -> i64 {
    o.cd.stopped_at.or(o.cd.finished_at).unwrap_or(o.end)
}

fn tasks(setup: &Setup, o: &Outcome, group: Group) -> Vec<proof::Task> {
    let hc = setup.timing.health_check;
    let end = horizon(o);
    o.tasks
        .iter()
        .filter(|t| t.group == group && t.running <= end)
        .map(|t| {
            let until = t.stopping.unwrap_or(end).min(end);
            proof::Task {
                running: secs(t.running),
                healthy: first_healthy(t, until, hc).map(secs),
                stopped: t.stopping.filter(|s| *s <= end).map(secs),
            }
        })
        .collect()
}

/// Green's share of production from each instant, as CodeDeploy sets the production
/// listener's weights: the canary, the full shift, and none again after a rollback.
fn green_shares(setup: &Setup, o: &Outcome) -> Vec<(i64, f64, Class)> {
    let canary = f64::from(setup.timing.canary_percent) / 100.0;
    let mut shares = Vec::new();
    if let Some(c) = o.cd.canary {
        shares.push((secs(c), canary, Class::Canary));
    }
    if let Some(f) = o.cd.full {
        shares.push((secs(f), 1.0, Class::Full));
    }
    if let (Some(b), Some(_)) = (o.cd.back_on_blue, o.cd.canary) {
        shares.push((secs(b), 0.0, Class::Full));
    }
    shares
}

/// One target group through the run: green takes its shares of production and the gates'
/// orders through the test listener; blue (the original) all of production before, the rest of
/// it during, and all of it again after a rollback.
fn group(setup: &Setup, s: &Scenario, o: &Outcome, sampling: Sampling, g: Group) -> GroupTraffic {
    let green = green_shares(setup, o);
    let (shares, gate, version) = match g {
        Group::Green => {
            let test: u64 = o
                .gate_traffic
                .iter()
                .filter(|g| g.3 != "AfterAllowTraffic")
                .map(|g| g.2)
                .sum();
            let gate = o.gate_traffic.first().map(|g| (secs(g.0), test));
            let version = Version {
                error_rate: per_class(s.green.error_rate, 0.0, 1.0),
                p99_seconds: per_class(s.green.p99_ms, DEFAULT_P99_MS, 0.001),
                cold: s.green.cold.map(|c| Cold {
                    first_requests: c.first_requests,
                    seconds: c.p99_ms / 1000.0,
                }),
            };
            (green, gate, version)
        }
        Group::Blue => {
            let rest = green
                .iter()
                .map(|(t, share, _)| (*t, 1.0 - share, Class::Full));
            let version = Version {
                error_rate: PerClass::all(s.blue.error_rate),
                p99_seconds: PerClass::all(s.blue.p99_ms / 1000.0),
                cold: None,
            };
            (
                std::iter::once((0, 1.0, Class::Full)).chain(rest).collect(),
                None,
                version,
            )
        }
    };
    GroupTraffic {
        offset: o.phase,
        tasks: tasks(setup, o, g),
        shares,
        gate,
        rate: s.production_rps,
        noise: walk::Timeline::of(&setup.timing).noise,
        version,
        end: secs(horizon(o)),
        to_unhealthy: i64::from(setup.timing.health_check.to_unhealthy()),
        sampling,
    }
}

/// The replacement (green) target group through the run.
pub fn green(setup: &Setup, s: &Scenario, o: &Outcome, sampling: Sampling) -> GroupTraffic {
    group(setup, s, o, sampling, Group::Green)
}

/// The original (blue) target group through the run.
pub fn blue(setup: &Setup, s: &Scenario, o: &Outcome, sampling: Sampling) -> GroupTraffic {
    group(setup, s, o, sampling, Group::Blue)
}

/// Metric stores and first-ALARM instants already computed: a store by the traffic it came
/// from, an alarm's first ALARM by its store and the publication delays.
#[derive(Debug, Default)]
pub struct Cache {
    stores: HashMap<u64, MetricStore>,
    firsts: HashMap<(usize, u64, u64), Option<i64>>,
    pub hits: u64,
    pub misses: u64,
}

fn key(parts: &[&dyn std::fmt::Debug]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        format!("{p:?}").hash(&mut h);
    }
    h.finish()
}

/// Every alarm of the group that reaches ALARM by the run's end, with the instant (ms of the
/// deployment), earliest first. How UnHealthyHostCount is sampled within a minute is not
/// documented: each kind of version gets the reading pessimistic for it (a good version: a
/// minute counts as unhealthy if a target is unhealthy at any moment of it, the most alarms; a
/// bad version: one sample a second, so a breach must hold the whole minute, the latest alarm).
pub fn alarms(
    setup: &Setup,
    s: &Scenario,
    o: &Outcome,
    delays: &Delays,
    cache: &mut Cache,
) -> Vec<(String, i64)> {
    let sampling = match super::kind(s, setup) {
        super::Kind::Good => Sampling::AnyMoment,
        _ => Sampling::EverySecond,
    };
    let g = green(setup, s, o, sampling);
    let b = blue(setup, s, o, sampling);
    let (g, b) = ((key(&[&g]), g), (key(&[&b]), b));
    let delays_key = key(&[delays]);
    let blue_prefix = format!("{}.", setup.blue_group);
    let mut out: Vec<(String, i64)> = Vec::new();
    for (index, a) in setup.timing.alarms.iter().enumerate() {
        let keys = walk::keys_of(a);
        let is_blue = keys
            .requests
            .dimensions
            .get("TargetGroup")
            .is_some_and(|v| v.starts_with(&blue_prefix));
        let t = if is_blue { &b } else { &g };
        if let Some(at) = first_alarm(cache, (index, a), t, &keys, (delays, delays_key)) {
            out.push((a.logical_id.clone(), at));
        }
    }
    out.sort_by_key(|(_, at)| *at);
    out
}

/// One alarm's first ALARM on one group's traffic (ms of the deployment), from the cache when
/// the same traffic and publication were evaluated before.
fn first_alarm(
    cache: &mut Cache,
    (index, a): (usize, &AlarmDefinition),
    (store_key, t): &(u64, GroupTraffic),
    keys: &proof::Keys,
    (delays, delays_key): (&Delays, u64),
) -> Option<i64> {
    let store_key = *store_key;
    if let Some(v) = cache.firsts.get(&(index, store_key, delays_key)) {
        cache.hits += 1;
        return *v;
    }
    cache.misses += 1;
    let store = cache
        .stores
        .entry(store_key)
        .or_insert_with(|| t.streams(keys));
    let o = i64::from(t.offset);
    let found = a.first_alarm(
        store,
        delays,
        (o, t.end + o),
        &Settings::default(),
        State::Ok,
    );
    let at = found.ok().flatten().map(|tick| (tick - o) * MS);
    cache.firsts.insert((index, store_key, delays_key), at);
    at
}

/// Production requests the new version answered 5xx (its own error rate; the background noise
/// every version has is not the deployment's).
pub fn failed_production_requests(setup: &Setup, s: &Scenario, o: &Outcome) -> u64 {
    let g = green(setup, s, o, Sampling::AnyMoment);
    let rates = per_class(s.green.error_rate, 0.0, 1.0);
    let (mut produced, mut index, mut failed) = (0.0f64, [0u64; 2], 0u64);
    let start = g.shares.first().map_or(g.end, |s| s.0);
    for t in start..g.end {
        let Some((_, share, class)) = g.shares.iter().rev().find(|(at, _, _)| *at <= t) else {
            continue;
        };
        let before = produced.floor() as u64;
        produced += g.rate * share;
        let n = produced.floor() as u64 - before;
        let slot = usize::from(*class == Class::Full);
        failed += proof::failing(index[slot], n, rates.get(*class));
        index[slot] += n;
    }
    failed
}
