//! The deployment timing, executable: the derived parameters agree with the declared start
//! times, every failure mode is rolled back within 5 minutes, and a good version walks through
//! every deployment-group alarm without reaching ALARM. All computed from template.yaml.

use std::sync::OnceLock;

use orderbroker::alarms::evaluate::Settings;
use orderbroker::cfn::resolve::Parameters;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::gates::targets::POLL_SECONDS;
use orderbroker::timing::detection::{self, Bad, Detection, Family};
use orderbroker::timing::model::TimingModel;
use orderbroker::timing::rollback::{self, Detector, BUDGET_SECONDS};
use orderbroker::timing::walk;
use orderbroker::timing::{deploy_parameters, derive, DERIVED_PARAMS};
use orderbroker::watchdog::{COUNTED_STOPS_DEFAULT, RECHECK_SECONDS};

use crate::support::root;

/// Seeded per-minute delay runs per detection (docs/deployments.md's table uses the same).
pub const SEEDS: u64 = 20;

/// The template with the parameters `make deploy` passes (samconfig plus the derived values).
pub fn model() -> TimingModel {
    let t = Template::load(root().join("template.yaml")).expect("template.yaml parses");
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    let params = Parameters::new(&t, &deploy_parameters(&c, &t, &[]).unwrap());
    TimingModel::with_parameters(&t, &params).expect("the timing model reads the template")
}

/// The evaluator's detections of the real alarms (computed once for every test).
pub fn detections() -> &'static [Detection] {
    static ROWS: OnceLock<Vec<Detection>> = OnceLock::new();
    ROWS.get_or_init(|| detection::detections(&model(), &Settings::default(), SEEDS))
}

/// The slowest detection of a version failing only after the full shift.
fn after_shift(rows: &[Detection]) -> Option<&Detection> {
    rows.iter()
        .filter(|d| d.bad == Bad::ErrorsAfterShift)
        .max_by_key(|d| d.worst_seconds.unwrap_or(i64::MAX))
}

fn table(m: &TimingModel, rows: &[Detection]) -> Vec<rollback::Row> {
    rollback::table(
        m,
        COUNTED_STOPS_DEFAULT,
        POLL_SECONDS,
        RECHECK_SECONDS,
        after_shift(rows),
    )
}

#[test]
fn derived_parameter_defaults_agree_with_the_declared_start_times() {
    let t = Template::load(root().join("template.yaml")).unwrap();
    let m = TimingModel::from_template(&t).unwrap();
    assert_eq!(
        m.derived,
        derive(m.start, m.health_check),
        "the template's derived defaults must equal derive(declared defaults): run `orderbroker samconfig overrides` and copy its values"
    );
    assert_eq!(m.grace_seconds, m.derived.health_check_grace_seconds);
    assert_eq!(m.hook_timeout_seconds, m.derived.hook_timeout_seconds);
    assert_eq!(DERIVED_PARAMS.len(), m.derived.overrides().len());
}

#[test]
fn the_app_keeps_idle_connections_longer_than_the_alb() {
    let m = model();
    assert_eq!(
        m.app_idle_timeout_seconds,
        Some(m.alb_idle_timeout_seconds + 15),
        "HTTP_IDLE_TIMEOUT_SECONDS must be the ALB idle timeout + 15"
    );
}

#[test]
fn every_deployment_group_alarm_is_evaluated_and_of_a_known_family() {
    let m = model();
    assert!(m.alarms.len() <= 10, "CodeDeploy takes at most 10 alarms");
    for a in &m.alarms {
        assert!(
            detection::family(a).is_some(),
            "{}: no bad version exercises it, so nothing proves it can fire",
            a.logical_id
        );
    }
    for f in [Family::Errors, Family::Latency, Family::Unhealthy] {
        let n = m
            .alarms
            .iter()
            .filter(|a| detection::family(a) == Some(f))
            .count();
        assert_eq!(n, 2, "{f:?} alarms, one per target group");
    }
    // Every alarm of the group appears in the detection table, each at both rates.
    for a in &m.alarms {
        assert!(
            detections()
                .iter()
                .filter(|d| d.alarm == a.logical_id)
                .count()
                >= 2,
            "{} is not evaluated",
            a.logical_id
        );
    }
    for a in &m.alarms {
        if detection::family(a) == Some(Family::Unhealthy) {
            assert_eq!(a.evaluation_periods, m.derived.unhealthy_alarm_periods);
            assert_eq!(a.datapoints_to_alarm, m.derived.unhealthy_alarm_minutes);
        }
    }
}

#[test]
fn every_failure_mode_is_back_on_blue_within_five_minutes() {
    let m = model();
    let rows = table(&m, detections());
    println!("{}", rollback::markdown(&rows));
    for r in &rows {
        println!("{}: {}", r.failure, r.arithmetic);
    }
    let bad = rollback::violations(&m, &rows);
    assert!(bad.is_empty(), "rollback budget broken: {bad:#?}");
    assert_eq!(rows.len(), 8, "one row per failure mode");
    // The never-listening image is stopped within the declared start + 60 s.
    let never = &rows[0];
    let declared = m.start.launch_to_running + m.start.running_to_healthy;
    assert!(never.stopped_after.unwrap() <= declared + 60);
    // The last row is the remedy, not a time.
    assert!(matches!(rows.last().unwrap().detector, Detector::Remedy(_)));
    // Gates and the watchdog: within the budget in the worst case. The alarm-only row: within
    // it nominally; its worst case is what the table reports.
    for r in &rows[..rows.len() - 1] {
        let held = r.nominal_back_on_blue_after.or(r.back_on_blue_after);
        assert!(held.unwrap() <= BUDGET_SECONDS, "{}", r.failure);
        if !matches!(r.detector, Detector::Alarm(_)) {
            assert!(r.nominal_back_on_blue_after.is_none(), "{}", r.failure);
        }
    }
}

#[test]
fn the_tables_in_the_docs_are_the_computed_ones() {
    let docs = std::fs::read_to_string(root().join("docs/deployments.md")).unwrap();
    let rows = table(&model(), detections());
    assert!(
        docs.contains(&rollback::markdown(&rows)),
        "docs/deployments.md must hold the computed table (cargo test timing -- --nocapture prints it):\n{}",
        rollback::markdown(&rows)
    );
    let det = detection::markdown(detections());
    assert!(
        docs.contains(&det),
        "docs/deployments.md must hold the evaluator's detection table (`orderbroker alarms --detection --seeds {SEEDS}`):\n{det}"
    );
}

#[test]
fn the_rollback_budget_fails_when_a_change_breaks_it() {
    // No alarm catching a version that fails after the shift: nothing detects it.
    let m = model();
    assert!(rollback::violations(&m, &table(&m, &[]))
        .iter()
        .any(|v| v.contains("after the full shift")));
    // An alarm that needs 3 of 3 minutes: slower than the budget allows.
    let mut slow = model();
    for a in &mut slow.alarms {
        if detection::family(a) == Some(Family::Errors) {
            a.datapoints_to_alarm = 3;
        }
    }
    let rows = detection::detections(&slow, &Settings::default(), 0);
    let bad = rollback::violations(&slow, &table(&slow, &rows));
    assert!(
        bad.iter().any(|v| v.contains("after the full shift")),
        "{bad:?}"
    );
    // A longer declared start with derived values left stale breaks the never-listens bar.
    let mut m = model();
    m.derived.never_healthy_seconds += 120;
    assert!(rollback::violations(&m, &table(&m, detections()))
        .iter()
        .any(|v| v.starts_with("never listens")));
}

#[test]
fn a_good_version_trips_no_deployment_group_alarm() {
    let m = model();
    let scenarios = walk::scenarios(&walk::Timeline::of(&m));
    assert!(scenarios.len() > 1000, "{} scenarios", scenarios.len());
    // The documented evaluation range (N + 2) and a longer one: the verdict must not rest on
    // the undocumented range length.
    let settings = [
        Settings::default(),
        Settings {
            range_extra_periods: 5,
            tick_offset: 30,
        },
    ];
    let trips = walk::walk(&m, &settings);
    assert!(
        trips.is_empty(),
        "{} good-version runs reach ALARM; first: {:#?}",
        trips.len(),
        trips.first()
    );
}

#[test]
fn samconfig_overrides_passes_the_derived_values_and_refuses_hand_set_ones() {
    let out = crate::support::orderbroker()
        .args(["samconfig", "overrides"])
        .output()
        .unwrap();
    let text = crate::support::succeeded(&out);
    let m = model();
    for (k, v) in derive(m.start, m.health_check).overrides() {
        assert!(text.contains(&format!("{k}=\"{v}\"")), "{k}={v} in {text}");
    }
    // A slower JVM declared: everything after it moves.
    let out = crate::support::orderbroker()
        .args([
            "samconfig",
            "overrides",
            "--set",
            "TaskRunningToHealthySeconds=90",
        ])
        .output()
        .unwrap();
    let text = crate::support::succeeded(&out);
    assert!(
        text.contains("HealthCheckGracePeriodSeconds=\"150\""),
        "{text}"
    );
    assert!(text.contains("HookTimeoutSeconds=\"250\""), "{text}");
    // A derived value set by hand to something else is refused, naming it.
    let out = crate::support::orderbroker()
        .args([
            "samconfig",
            "overrides",
            "--set",
            "HealthCheckGracePeriodSeconds=60",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HealthCheckGracePeriodSeconds"), "{err}");
}

#[test]
fn the_declared_start_times_bound_what_depends_on_them() {
    let t = Template::load(root().join("template.yaml")).unwrap();
    let params = t.section("Parameters");
    for (name, (min, max)) in [
        (
            orderbroker::timing::LAUNCH_TO_RUNNING_PARAM,
            orderbroker::timing::LAUNCH_TO_RUNNING_RANGE,
        ),
        (
            orderbroker::timing::RUNNING_TO_HEALTHY_PARAM,
            orderbroker::timing::RUNNING_TO_HEALTHY_RANGE,
        ),
    ] {
        assert_eq!(params[name]["MinValue"], serde_json::json!(min), "{name}");
        assert_eq!(params[name]["MaxValue"], serde_json::json!(max), "{name}");
    }
    // The gates' unjudged warm-up orders are what the budget assumes.
    for f in t.resources_of_type("AWS::Serverless::Function") {
        if f.prop("Handler") == Some(&serde_json::json!("traffic-validator")) {
            assert_eq!(
                f.prop("Environment.Variables.WARMUP_ORDERS"),
                Some(&serde_json::json!(
                    orderbroker::timing::rollback::GATE_WARMUP_ORDERS.to_string()
                )),
                "{}",
                f.id
            );
        }
    }
    // The container health check ignores failures for the declared JVM start (ECS: 0-300 s).
    let td = t
        .resources_of_type("AWS::ECS::TaskDefinition")
        .next()
        .unwrap();
    assert_eq!(
        td.prop("ContainerDefinitions.0.HealthCheck.StartPeriod"),
        Some(&serde_json::json!({"Ref": orderbroker::timing::RUNNING_TO_HEALTHY_PARAM}))
    );
    assert!(orderbroker::timing::RUNNING_TO_HEALTHY_RANGE.1 <= 300);
}
