//! The deployment rehearsal: a deterministic discrete-event model, on a simulated clock, of
//! what happens between "deployment created" and "rollback complete" (or the termination wait's
//! end), with the project's own decisions inside it (pure; no AWS, no network).
//!
//! - [`latencies`]: every latency AWS does not document, one range each, with its source.
//! - [`scenario`]: the built-in scenarios and the YAML scenario file.
//! - [`world`]: the template's values, the functions' settings and the hook placement.
//! - [`engine`]: the clock and CodeDeploy; [`ecs`]: tasks and target health; [`gate`]: the
//!   hooks' gates; [`watch`]: the watchdog; [`traffic`]: the alarms on the run's ALB metrics.
//! - [`runs`]: one run, the combinations and the samples; [`report`]: what `rehearse` prints.
//!
//! docs/rehearsal.md describes the model and lists its assumptions.

pub mod ecs;
pub mod engine;
pub mod gate;
pub mod latencies;
pub mod live;
pub mod report;
pub mod runs;
pub mod scenario;
pub mod traffic;
pub mod watch;
pub mod world;

use serde::Serialize;

use engine::{Outcome, MS};
use latencies::{Choice, Pick};
use runs::RunResult;
use scenario::{PerPhase, Scenario};
use traffic::Cache;
use world::Setup;

/// What kind of bad version a scenario describes, from its content (the onset rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Good,
    /// Never listens, never healthy or crashes: a gate or the watchdog must stop it.
    NeverServes,
    /// Fails or is slow under production traffic only: an alarm must stop it.
    FailsUnderTraffic,
    /// A hook never reports.
    SilentHook,
}

fn bad_phase(sc: &Scenario, setup: &Setup) -> [bool; 3] {
    let e = sc.green.error_rate.unwrap_or(PerPhase::all(0.0));
    let p = sc
        .green
        .p99_ms
        .unwrap_or(PerPhase::all(scenario::DEFAULT_P99_MS));
    let slow = setup.p99_alarm_seconds * 1000.0;
    [(e.test, p.test), (e.canary, p.canary), (e.full, p.full)].map(|(e, p)| e >= 0.05 || p > slow)
}

fn never_serves(sc: &Scenario) -> bool {
    !sc.green.listens
        || sc.green.healthy_after_s == Some(None)
        || sc.green.crash_after_s.is_some()
        || sc.green.image_missing
}

/// The scenario's kind, the first that applies.
pub fn kind(sc: &Scenario, setup: &Setup) -> Kind {
    if never_serves(sc) {
        Kind::NeverServes
    } else if bad_phase(sc, setup).iter().any(|b| *b) {
        Kind::FailsUnderTraffic
    } else if !sc.green.hooks_report {
        Kind::SilentHook
    } else {
        Kind::Good
    }
}

/// The onset of a run (ms of the deployment): the earliest of what the content makes bad.
pub fn onset(sc: &Scenario, setup: &Setup, o: &Outcome) -> Option<i64> {
    let mut at: Vec<i64> = Vec::new();
    let green = || o.tasks.iter().filter(|t| t.group == ecs::Group::Green);
    if sc.green.image_missing {
        // Never RUNNING: the first green task's launch.
        at.extend(green().map(|t| t.launched).min());
    } else if never_serves(sc) {
        at.extend(green().map(|t| t.running).min());
    }
    let [test, canary, full] = bad_phase(sc, setup);
    if test {
        at.extend(o.gate_traffic.first().map(|g| g.0));
    }
    if canary {
        at.extend(o.cd.canary);
    }
    if full {
        at.extend(o.cd.full);
    }
    if !sc.green.hooks_report {
        at.extend(o.cd.hook_started.first().map(|h| h.1));
    }
    at.into_iter().min()
}

/// A scenario rehearsed: the nominal run, the best and worst cases and how many runs.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub kind: Kind,
    #[serde(flatten)]
    pub nominal: RunResult,
    pub best_case: Option<RunResult>,
    pub worst_case: Option<RunResult>,
    pub runs: usize,
    /// The most failed production requests of any run.
    pub max_failed_production_requests: u64,
    /// The longest onset -> stopped of any run (`None` when a run was never stopped or has no
    /// onset): the silent-hook bound is held against it.
    pub max_onset_to_stopped_s: Option<f64>,
    /// How many runs each mechanism stopped (`none`: not rolled back).
    pub stopped_by_runs: std::collections::BTreeMap<String, usize>,
    /// The shortest and longest of each lifecycle event and milestone over every run (s):
    /// what a live run's measurement is compared with.
    pub ranges: std::collections::BTreeMap<String, [f64; 2]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<(f64, String)>,
}

/// Rehearses a scenario against a setup.
pub fn rehearse(setup: &Setup, sc: &Scenario, timeline: bool) -> Rehearsal {
    let mut cache = Cache::default();
    let nominal_delays = latencies::nominal_publication();
    let (nominal, out) = runs::run_once(
        setup,
        sc,
        Choice::new(Pick::Nominal),
        ("every metric at the middle of its range", &nominal_delays),
        &mut cache,
        timeline,
    );
    let mut all = runs::combinations(setup, sc, &mut cache);
    all.extend(runs::samples(setup, sc, &mut cache));
    let kind = kind(sc, setup);
    let bad = kind != Kind::Good;
    Rehearsal {
        kind,
        best_case: runs::pick(&all, bad, false),
        worst_case: runs::pick(&all, bad, true),
        runs: all.len() + 1,
        max_failed_production_requests: all
            .iter()
            .chain(std::iter::once(&nominal))
            .map(|r| r.failed_production_requests)
            .max()
            .unwrap_or(0),
        ranges: ranges(all.iter().chain(std::iter::once(&nominal))),
        max_onset_to_stopped_s: all
            .iter()
            .map(|r| Some(r.stopped_after_s? - r.onset_s?))
            .try_fold(f64::NEG_INFINITY, |m, x| x.map(|x| m.max(x))),
        stopped_by_runs: all.iter().fold(Default::default(), |mut m, r| {
            let by = r.stopped_by.clone().unwrap_or_else(|| "none".into());
            *m.entry(by).or_insert(0) += 1;
            m
        }),
        nominal,
        timeline: out
            .log
            .into_iter()
            .map(|(t, w)| (t as f64 / MS as f64, w))
            .collect(),
    }
}

/// The range of each lifecycle event's duration and of each milestone over the runs.
fn ranges<'a>(
    runs: impl Iterator<Item = &'a RunResult>,
) -> std::collections::BTreeMap<String, [f64; 2]> {
    let mut out: std::collections::BTreeMap<String, [f64; 2]> = Default::default();
    let mut add = |k: &str, v: f64| {
        let e = out.entry(k.to_string()).or_insert([v, v]);
        e[0] = e[0].min(v);
        e[1] = e[1].max(v);
    };
    for r in runs {
        for (k, v) in &r.phases {
            add(k, *v);
        }
        for (k, v) in [
            ("stopped", r.stopped_after_s),
            ("back on blue", r.back_on_blue_after_s),
            ("rollback complete", r.rollback_complete_after_s),
            ("reported by the CLI", r.cli_reports_after_s),
        ] {
            if let Some(v) = v {
                add(k, v);
            }
        }
    }
    out
}
