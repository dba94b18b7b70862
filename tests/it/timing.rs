//! The deployment timing, executable: the derived parameters agree with the declared start
//! times, every failure mode is rolled back within 5 minutes, and a good version walks through
//! every deployment-group alarm without reaching ALARM. All computed from template.yaml.

use std::sync::OnceLock;

use orderbroker::alarms::evaluate::Settings;
use orderbroker::cfn::resolve::Parameters;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::timing::detection::{self, Bad, Detection, Family};
use orderbroker::timing::model::TimingModel;
use orderbroker::timing::walk;
use orderbroker::timing::{deploy_parameters, derive, DERIVED_PARAMS};

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
fn the_detection_table_in_the_docs_is_the_computed_one() {
    let docs = std::fs::read_to_string(root().join("docs/deployments.md")).unwrap();
    let det = detection::markdown(detections());
    assert!(
        docs.contains(&det),
        "docs/deployments.md must hold the evaluator's detection table (`orderbroker alarms --detection --seeds {SEEDS}`):\n{det}"
    );
}

#[test]
fn an_alarm_that_needs_three_breaching_minutes_detects_later() {
    // The detection the alarms' own proofs measure follows the alarm's definition: 3 of 3
    // minutes is slower than the template's 2 of 5.
    let m = model();
    let base = detection::detections(&m, &Settings::default(), 0);
    let mut slow = model();
    for a in &mut slow.alarms {
        if detection::family(a) == Some(Family::Errors) {
            a.datapoints_to_alarm = 3;
        }
    }
    let later = detection::detections(&slow, &Settings::default(), 0);
    let worst = |rows: &[Detection]| {
        rows.iter()
            .filter(|d| d.bad == Bad::ErrorsAfterShift)
            .filter_map(|d| d.worst_seconds)
            .max()
    };
    assert!(
        worst(&later) > worst(&base),
        "{:?} vs {:?}",
        worst(&later),
        worst(&base)
    );
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
