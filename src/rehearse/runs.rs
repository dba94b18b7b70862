//! One rehearsal run end to end, and the runs behind `best_case` / `worst_case` (pure).
//!
//! A run: the model once without alarms; the CloudWatch evaluator on its traffic; when an
//! alarm of the group reaches ALARM while the deployment is still in progress, the model again
//! with CodeDeploy seeing that alarm one poll later (the evaluation is causal: the second run is
//! the first up to that instant).
//!
//! The combinations: every range end of the latencies a run reads, explored as a tree (a
//! latency a run never reads, say EventBridge for a deployment no task stop touches, does not
//! double the runs), at most 2^10 leaves, each under the five publication orders; then 200
//! seeded samples, every latency uniform over its range and every metric's delay drawn per
//! minute.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alarms::data::Delays;

use super::engine::{self, Outcome, MS};
use super::latencies::{self, Choice, Latency, Pick, PUBLICATION_RANGE};
use super::scenario::Scenario;
use super::traffic::{self, Cache};
use super::world::Setup;

/// Seeded samples per scenario.
pub const SAMPLES: u64 = 200;
/// Most leaves of the combination tree (2^10).
pub const MAX_COMBINATIONS: usize = 1 << 10;

/// One run as the report gives it. Times are seconds from the deployment's creation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub scenario: String,
    pub rolled_back: bool,
    pub stopped_by: Option<String>,
    pub onset_s: Option<f64>,
    pub stopped_after_s: Option<f64>,
    pub back_on_blue_after_s: Option<f64>,
    pub rollback_complete_after_s: Option<f64>,
    /// What the operator's `orderbroker deploy --wait` sees: rollback complete + the CLI's overhead.
    pub cli_reports_after_s: Option<f64>,
    pub alarms_fired: Vec<String>,
    pub failed_production_requests: u64,
    pub latencies: BTreeMap<Latency, u32>,
    pub publication: String,
    /// Each lifecycle event's duration (s), by CodeDeploy's name, for the live comparison.
    pub phases: BTreeMap<String, f64>,
}

fn s(ms: Option<i64>) -> Option<f64> {
    ms.map(|v| v as f64 / MS as f64)
}

/// Runs the model (twice when an alarm stops it) under one choice and one publication.
pub fn run_once(
    setup: &Setup,
    sc: &Scenario,
    choice: Choice,
    publication: (&str, &Delays),
    cache: &mut Cache,
    log: bool,
) -> (RunResult, Outcome) {
    let default = choice.default;
    let first = engine::run(setup, sc, choice, None, log);
    let fired = traffic::alarms(setup, sc, &first, publication.1, cache);
    let live_until = first
        .cd
        .stopped_at
        .or(first.cd.finished_at)
        .unwrap_or(first.end);
    let out = match fired.iter().find(|(_, at)| *at < live_until) {
        Some((id, at)) => {
            let again = Choice::with(first.choice.consulted.clone(), default);
            engine::run(setup, sc, again, Some((*at, id.clone())), log)
        }
        None => first,
    };
    let fired = traffic::alarms(setup, sc, &out, publication.1, cache);
    (result(setup, sc, &out, &fired, publication.0), out)
}

fn result(
    setup: &Setup,
    sc: &Scenario,
    o: &Outcome,
    fired: &[(String, i64)],
    publication: &str,
) -> RunResult {
    let mut latencies: BTreeMap<Latency, u32> = o.choice.consulted.iter().copied().collect();
    let mut cli = Choice::with(o.choice.fixed.clone(), o.choice.default);
    let overhead = cli.get(Latency::CliOverhead);
    latencies.insert(Latency::CliOverhead, overhead);
    let complete = o.cd.complete;
    RunResult {
        scenario: sc.name.clone(),
        rolled_back: o.cd.stopped_at.is_some(),
        stopped_by: o.cd.stopped_by.as_ref().map(|b| b.label()),
        onset_s: s(super::onset(sc, setup, o)),
        stopped_after_s: s(o.cd.stopped_at),
        back_on_blue_after_s: s(o.cd.back_on_blue),
        rollback_complete_after_s: s(complete),
        cli_reports_after_s: s(complete.map(|c| c + i64::from(overhead) * MS)),
        alarms_fired: fired
            .iter()
            .filter(|(_, at)| *at <= traffic::horizon(o))
            .map(|(id, _)| id.clone())
            .collect(),
        failed_production_requests: traffic::failed_production_requests(setup, sc, o),
        latencies,
        publication: publication.to_string(),
        phases: o
            .cd
            .phases
            .iter()
            .map(|(name, a, b)| (name.clone(), (b - a) as f64 / MS as f64))
            .collect(),
    }
}

/// Every leaf of the range-end tree, each under the five publication orders.
pub fn combinations(setup: &Setup, sc: &Scenario, cache: &mut Cache) -> Vec<RunResult> {
    let orders = latencies::publication_orders();
    let mut out = Vec::new();
    let mut stack: Vec<Vec<(Latency, u32)>> = vec![Vec::new()];
    let mut leaves = 0;
    while let Some(prefix) = stack.pop() {
        leaves += 1;
        let mut read: Vec<Latency> = Vec::new();
        for (name, delays) in &orders {
            let choice = Choice::with(prefix.clone(), Pick::Min);
            let (r, o) = run_once(setup, sc, choice, (name, delays), cache, false);
            for (l, _) in o.choice.consulted {
                if !read.contains(&l) {
                    read.push(l);
                }
            }
            out.push(r);
        }
        // Branch on every latency read after the prefix: min stays on this path, max is a new one.
        let mut path = prefix.clone();
        for l in read
            .into_iter()
            .filter(|l| prefix.iter().all(|(k, _)| k != l))
        {
            let r = latencies::range(l);
            if leaves + stack.len() < MAX_COMBINATIONS && r.max != r.min {
                let mut other = path.clone();
                other.push((l, r.max));
                stack.push(other);
            }
            path.push((l, r.min));
        }
    }
    out
}

/// The seeded samples.
pub fn samples(setup: &Setup, sc: &Scenario, cache: &mut Cache) -> Vec<RunResult> {
    (0..SAMPLES)
        .map(|seed| {
            let choice = Choice::with(latencies::sample(seed), Pick::Nominal);
            let delays = Delays::seeded(seed, PUBLICATION_RANGE.0, PUBLICATION_RANGE.1);
            let name = format!("seeded per-minute delays #{seed}");
            run_once(setup, sc, choice, (&name, &delays), cache, false).0
        })
        .collect()
}

/// The run to report as worst (`worst` true) or best: for a bad version the longest (shortest)
/// onset -> rollback complete, a run never rolled back counting as the longest; for a good
/// version the most (fewest) alarms, then a rollback.
pub fn pick(runs: &[RunResult], bad: bool, worst: bool) -> Option<RunResult> {
    let score = |r: &RunResult| -> (f64, f64) {
        if bad {
            let took = match (r.rollback_complete_after_s, r.onset_s) {
                (Some(c), Some(o)) if r.rolled_back => c - o,
                _ => f64::INFINITY,
            };
            (took, 0.0)
        } else {
            (
                r.alarms_fired.len() as f64,
                f64::from(u8::from(r.rolled_back)),
            )
        }
    };
    let cmp = |a: &&RunResult, b: &&RunResult| {
        score(a)
            .partial_cmp(&score(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let chosen = if worst {
        runs.iter().max_by(cmp)
    } else {
        runs.iter().min_by(cmp)
    };
    let mut r = chosen?.clone();
    if worst {
        r.rolled_back = if bad {
            runs.iter().all(|x| x.rolled_back)
        } else {
            runs.iter().any(|x| x.rolled_back)
        };
        if !bad {
            let mut all: Vec<String> = runs.iter().flat_map(|x| x.alarms_fired.clone()).collect();
            all.sort();
            all.dedup();
            r.alarms_fired = all;
        }
    }
    Some(r)
}
