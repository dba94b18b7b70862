//! The warm pool: the model on worked examples, hysteresis, and the tracked metric in a
//! simulation of target tracking over several scaling rounds.

use chrono::{DateTime, Duration, TimeZone, Utc};
use orderbroker::warm_pool::{
    next_n, recommend, steepest_rise, tracked_metric, LoadPoint, ModelInputs, PoolSettings,
    Published, TaskStart,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 14, 0, 0).unwrap()
}

fn starts(seconds: &[i64]) -> Vec<TaskStart> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let created = t0() + Duration::minutes(i as i64);
            TaskStart {
                created_at: created,
                pull_started_at: Some(created + Duration::seconds(5)),
                pull_stopped_at: Some(created + Duration::seconds(s / 2)),
                started_at: Some(created + Duration::seconds(*s)),
            }
        })
        .collect()
}

/// Load per minute (task-%): `values[i]` at t0 + i minutes.
fn load(values: &[f64]) -> Vec<LoadPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| LoadPoint {
            at: t0() + Duration::minutes(i as i64),
            value: *v,
        })
        .collect()
}

fn inputs(task_starts: Vec<TaskStart>, load: Vec<LoadPoint>) -> ModelInputs {
    ModelInputs {
        task_starts,
        healthy_threshold: 2,
        health_interval_seconds: 5,
        running_to_healthy_seconds: 60.0,
        load,
        per_task_capacity: 60.0,
        settings: PoolSettings::default(),
    }
}

#[test]
fn no_data_gives_the_minimum_with_the_assumptions_said() {
    let r = recommend(&inputs(vec![], vec![]));
    assert_eq!(r.n, 1);
    assert_eq!(r.start_seconds, 90.0);
    // R = start + the declared RUNNING -> healthy + health checks + scaling reaction.
    assert_eq!(r.replacement_seconds, 90.0 + 60.0 + 10.0 + 180.0);
    assert!(r
        .reasoning
        .iter()
        .any(|l| l.contains("no measured task start")));
    assert!(r.reasoning.iter().any(|l| l.contains("no load history")));
}

#[test]
fn a_single_task_measures_the_start() {
    let r = recommend(&inputs(starts(&[42]), vec![]));
    assert_eq!(r.start_seconds, 42.0);
    assert_eq!(r.start_measured_from, 1);
    // A task that never reached RUNNING is not a measurement.
    let mut s = starts(&[42]);
    s.push(TaskStart {
        created_at: t0(),
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
    });
    assert_eq!(recommend(&inputs(s, vec![])).start_measured_from, 1);
}

#[test]
fn the_worked_example_from_the_readme() {
    // Load climbs 300 task-% (5 tasks at 60 %) in 3 minutes at the open; starts take 60-90 s.
    let l = load(&[600.0, 620.0, 700.0, 820.0, 920.0, 930.0]);
    let r = recommend(&inputs(starts(&[60, 70, 80, 90]), l));
    assert_eq!(r.start_seconds, 90.0, "p90 of 4 starts");
    // R = 90 start + 60 RUNNING -> healthy (declared) + 10 health + 180 reaction.
    assert_eq!(r.replacement_seconds, 340.0);
    // Points 5 minutes apart fit in 340 s: 600 -> 930.
    assert_eq!(r.steepest_rise, 330.0);
    // ceil(1.25 x 330 / 60) = ceil(6.875) = 7
    assert_eq!(r.n, 7);
}

#[test]
fn a_huge_spike_is_clamped_by_the_bounds_and_says_so() {
    let r = recommend(&inputs(starts(&[60]), load(&[100.0, 5000.0])));
    assert_eq!(r.n, 10);
    assert!(
        r.reasoning
            .iter()
            .any(|l| l.contains("CLAMPED from 103 to the maximum 10")),
        "{:?}",
        r.reasoning
    );
}

#[test]
fn a_quiet_day_needs_only_the_minimum() {
    let r = recommend(&inputs(
        starts(&[60]),
        load(&[300.0, 305.0, 298.0, 310.0, 300.0]),
    ));
    assert_eq!(r.n, 1);
    assert!(r.steepest_rise <= 12.0);
}

#[test]
fn slower_starts_need_more_standby_tasks() {
    // A steady ramp of 60 task-% per minute: the longer replacements take, the more spare.
    let ramp: Vec<f64> = (0..30).map(|i| 300.0 + 60.0 * i as f64).collect();
    let fast = recommend(&inputs(starts(&[30, 30, 30]), load(&ramp)));
    let slow = recommend(&inputs(starts(&[120, 120, 120]), load(&ramp)));
    assert_eq!(fast.replacement_seconds, 280.0);
    assert_eq!(slow.replacement_seconds, 370.0);
    // Within 280 s the ramp rises 240 (4 minutes); within 370 s, 360 (6 minutes).
    assert_eq!((fast.steepest_rise, slow.steepest_rise), (240.0, 360.0));
    // ceil(1.25 x 4) = 5; ceil(1.25 x 6) = ceil(7.5) = 8
    assert_eq!((fast.n, slow.n), (5, 8));
}

#[test]
fn steepest_rise_only_looks_within_the_window() {
    let l = load(&[0.0, 10.0, 20.0, 100.0]);
    assert_eq!(steepest_rise(&l, Duration::seconds(60)).unwrap().0, 80.0);
    assert_eq!(steepest_rise(&l, Duration::seconds(180)).unwrap().0, 100.0);
    assert!(steepest_rise(&load(&[50.0, 40.0]), Duration::seconds(60)).is_none());
}

#[test]
fn hysteresis_raises_at_once_and_lowers_slowly() {
    let s = PoolSettings {
        min_step: 2,
        ..PoolSettings::default()
    };
    let now = t0();
    let last = Some(Published {
        n: 8,
        since: now - Duration::minutes(5),
    });
    assert_eq!(next_n(None, 4, now, &s).0, 4);
    assert_eq!(
        next_n(last, 9, now, &s).0,
        8,
        "a step below min_step is ignored"
    );
    assert_eq!(next_n(last, 10, now, &s).0, 10, "increases apply at once");
    assert_eq!(next_n(last, 2, now, &s).0, 8, "decreases wait the interval");
    let old = Some(Published {
        n: 8,
        since: now - Duration::minutes(20),
    });
    assert_eq!(next_n(old, 2, now, &s).0, 6, "then step down by a quarter");
    assert_eq!(next_n(old, 50, now, &s).0, 10, "never above max");
}

// ------------------------------------------------------------------ the tracked metric

struct Round {
    load: f64,
    n: Option<f64>,
    /// A blue/green deployment is in progress: both task sets run.
    deploying: bool,
}

/// Target tracking as Application Auto Scaling applies it to an ECS service (ECS developer
/// guide, "Service auto scaling considerations"): the new capacity is
/// ceil(RUNNING x metric / target) within the bounds, from the RUNNING count, which lags
/// desired by one period (tasks launched in a period run in the next) and counts both task sets
/// while a deployment runs (each set runs the desired count); it scales out only when the
/// metric is above the target, in only when below, and never in during a deployment. The
/// metric divides by DESIRED (the template's expression): each round's CPU is the load spread
/// over the running tasks, capped at 100 %.
fn simulate_with_max(rounds: &[Round], start: u32, max: u32) -> Vec<u32> {
    let (target, fill, min) = (60.0, 2.0, 3);
    let mut desired = start;
    let mut running_per_set = start;
    let mut out = Vec::new();
    for r in rounds {
        let sets = if r.deploying { 2.0 } else { 1.0 };
        let running = f64::from(running_per_set) * sets;
        let cpu = if running > 0.0 {
            (r.load / running).min(100.0)
        } else {
            0.0
        };
        let m = tracked_metric(
            cpu,
            running,
            f64::from(desired),
            r.n.unwrap_or(fill),
            target,
        );
        assert!(m.is_finite(), "never a division by zero");
        // (A hair of tolerance so 19.000000001 from float arithmetic is 19.)
        let proposed = ((running * m / target - 1e-9).ceil().max(0.0) as u32).clamp(min, max);
        if (m > target + 1e-9 && proposed > desired)
            || (m < target - 1e-9 && !r.deploying && proposed < desired)
        {
            desired = proposed;
        }
        running_per_set = desired;
        out.push(desired);
    }
    out
}

fn simulate(rounds: &[Round], start: u32) -> Vec<u32> {
    simulate_with_max(rounds, start, 200)
}

fn steady(load: f64, n: f64, rounds: usize) -> Vec<Round> {
    (0..rounds)
        .map(|_| Round {
            load,
            n: Some(n),
            deploying: false,
        })
        .collect()
}

fn deploying(load: f64, n: f64, rounds: usize) -> Vec<Round> {
    (0..rounds)
        .map(|_| Round {
            load,
            n: Some(n),
            deploying: true,
        })
        .collect()
}

#[test]
fn settles_at_demand_plus_n_in_one_step_up_and_down() {
    // 900 task-% = 15 tasks at 60 %; N = 4 -> 19 in one step from any unsaturated start.
    assert_eq!(simulate(&steady(900.0, 4.0, 5), 10), vec![19; 5]);
    assert_eq!(simulate(&steady(900.0, 4.0, 5), 40), vec![19; 5]);
    // From a saturated start (3 tasks at 100 %) it takes one more step.
    assert_eq!(simulate(&steady(900.0, 4.0, 5), 3), vec![9, 19, 19, 19, 19]);
    // Load steps up and back down.
    let mut rounds = steady(300.0, 4.0, 3);
    rounds.extend(steady(1200.0, 4.0, 3));
    rounds.extend(steady(240.0, 4.0, 3));
    assert_eq!(simulate(&rounds, 3), vec![9, 9, 9, 19, 24, 24, 8, 8, 8]);
}

#[test]
fn n_larger_than_demand_does_not_oscillate() {
    // Demand 1 task, N = 6: 7 tasks, steady (the running/(running - N) form diverges here).
    assert_eq!(simulate(&steady(60.0, 6.0, 8), 3), vec![7; 8]);
    assert_eq!(simulate(&steady(60.0, 6.0, 8), 30), vec![7; 8]);
}

#[test]
fn a_deployment_at_steady_load_scales_nothing() {
    // Both task sets run (38 tasks), CPU halves; the metric divides by desired (19): at target.
    assert_eq!(simulate(&deploying(900.0, 4.0, 4), 19), vec![19; 4]);
}

#[test]
fn a_scale_out_during_a_deployment_over_asks_about_twice_capped_at_max_tasks() {
    // Load rises 900 -> 1200 task-% while blue and green both run. Outside a deployment the
    // policy asks 24 (20 tasks of demand + N 4); during one it scales from the RUNNING count,
    // both sets (38): ceil(38 x 75.8 / 60) = 48, about twice, and never scales back in until
    // the deployment ends.
    let mut rounds = deploying(1200.0, 4.0, 3);
    rounds.extend(steady(1200.0, 4.0, 2));
    assert_eq!(simulate(&rounds, 19), vec![48, 48, 48, 24, 24]);
    let outside = simulate(&steady(1200.0, 4.0, 3), 19);
    assert_eq!(outside, vec![24, 24, 24]);
    // Bounded: MaxTasks caps each task set (the deploy quota check covers 2 x MaxTasks).
    assert_eq!(simulate_with_max(&rounds, 19, 30), vec![30, 30, 30, 24, 24]);
    // Scale-out is never suspended: load still rising during the deployment gets capacity.
    let mut climbing = deploying(1200.0, 4.0, 1);
    climbing.extend(deploying(3000.0, 4.0, 2));
    let out = simulate_with_max(&climbing, 19, 200);
    assert!(out.windows(2).all(|w| w[1] >= w[0]), "{out:?}");
    assert!(
        *out.last().unwrap() >= 54,
        "3000 task-% = 50 tasks + N 4: {out:?}"
    );
}

#[test]
fn a_missing_n_falls_back_to_the_fill_value() {
    let rounds: Vec<Round> = (0..3)
        .map(|_| Round {
            load: 900.0,
            n: None,
            deploying: false,
        })
        .collect();
    assert_eq!(simulate(&rounds, 15), vec![17; 3], "15 + FILL default 2");
}

#[test]
fn a_saturated_fleet_still_climbs_monotonically() {
    // 3 tasks, load of 30 tasks: CPU caps at 100 %, the metric understates, yet every round
    // grows until demand + N.
    let out = simulate(&steady(1800.0, 2.0, 6), 3);
    assert!(out.windows(2).all(|w| w[1] >= w[0]), "{out:?}");
    assert_eq!(*out.last().unwrap(), 32);
}

#[test]
fn desired_zero_is_guarded() {
    assert_eq!(tracked_metric(0.0, 0.0, 0.0, 2.0, 60.0), 120.0);
}
