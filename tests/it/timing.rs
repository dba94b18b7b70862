//! The deployment timing, executable: the derived parameters agree with the declared start
//! times, every failure mode is rolled back within 5 minutes, and a good version walks through
//! every deployment-group alarm without reaching ALARM. All computed from template.yaml.

use orderbroker::cfn::template::Template;
use orderbroker::gates::targets::POLL_SECONDS;
use orderbroker::timing::model::{AlarmKind, TimingModel};
use orderbroker::timing::rollback::{self, Detector, BUDGET_SECONDS};
use orderbroker::timing::walk;
use orderbroker::timing::{derive, DERIVED_PARAMS};
use orderbroker::watchdog::{COUNTED_STOPS_DEFAULT, RECHECK_SECONDS};

use crate::support::root;

fn model() -> TimingModel {
    let t = Template::load(root().join("template.yaml")).expect("template.yaml parses");
    TimingModel::from_template(&t).expect("the timing model reads the template")
}

fn table(m: &TimingModel) -> Vec<rollback::Row> {
    rollback::table(m, COUNTED_STOPS_DEFAULT, POLL_SECONDS, RECHECK_SECONDS)
}

#[test]
fn derived_parameter_defaults_agree_with_the_declared_start_times() {
    let m = model();
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
    // Every derived revision carries the same values (`orderbroker deploy`).
    assert_eq!(
        m.app_idle_timeout_seconds,
        Some(orderbroker::deploy::revision::APP_IDLE_TIMEOUT_SECONDS)
    );
    assert_eq!(
        m.stop_timeout_seconds as i32,
        orderbroker::deploy::revision::STOP_TIMEOUT_SECONDS
    );
}

#[test]
fn the_deployment_group_watches_only_per_target_group_alarms_of_known_kinds() {
    let m = model();
    assert!(m.alarms.len() <= 10, "CodeDeploy takes at most 10 alarms");
    let kinds: Vec<&AlarmKind> = m.alarms.iter().map(|a| &a.kind).collect();
    assert!(
        kinds.iter().all(|k| !matches!(k, AlarmKind::Other(_))),
        "every deployment-group alarm is one the budgets model: {kinds:?}"
    );
    for (kind, n) in [("errors", 2), ("unhealthy", 2), ("p99", 2)] {
        let count = m
            .alarms
            .iter()
            .filter(|a| {
                matches!(
                    (&a.kind, kind),
                    (AlarmKind::Errors { .. }, "errors")
                        | (AlarmKind::Unhealthy { .. }, "unhealthy")
                        | (AlarmKind::P99 { .. }, "p99")
                )
            })
            .count();
        assert_eq!(count, n, "{kind} alarms, one per target group");
    }
    for a in &m.alarms {
        if let AlarmKind::Unhealthy { statistic, .. } = &a.kind {
            assert_eq!(statistic, "Minimum", "{}: startup-immune form", a.id);
            assert_eq!(a.evaluation_periods, m.derived.unhealthy_alarm_minutes);
            assert_eq!(a.datapoints_to_alarm, m.derived.unhealthy_alarm_minutes);
        }
        if let AlarmKind::P99 { min_requests, .. } = &a.kind {
            assert!(
                *min_requests > 40.0,
                "{}: never judged on the gates' orders alone",
                a.id
            );
        }
    }
}

#[test]
fn every_failure_mode_is_back_on_blue_within_five_minutes() {
    let m = model();
    let rows = table(&m);
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
    for r in &rows[..rows.len() - 1] {
        assert!(
            r.back_on_blue_after.unwrap() <= BUDGET_SECONDS,
            "{}",
            r.failure
        );
    }
}

#[test]
fn the_rollback_table_in_the_docs_is_the_computed_one() {
    let rows = table(&model());
    let docs = std::fs::read_to_string(root().join("docs/deployments.md")).unwrap();
    assert!(
        docs.contains(&rollback::markdown(&rows)),
        "docs/deployments.md must hold the computed table (cargo test timing -- --nocapture prints it):\n{}",
        rollback::markdown(&rows)
    );
}

#[test]
fn the_rollback_budget_fails_when_a_change_breaks_it() {
    // Slower alarms: the error alarm needing 3 minutes cannot bring production back in 300 s.
    let mut m = model();
    for a in &mut m.alarms {
        if matches!(a.kind, AlarmKind::Errors { .. }) {
            a.evaluation_periods = 3;
            a.datapoints_to_alarm = 3;
        }
    }
    let bad = rollback::violations(&m, &table(&m));
    assert!(
        bad.iter().any(|v| v.contains("after the full shift")),
        "{bad:?}"
    );
    // No error alarm at all: nothing detects a version failing after the shift.
    let mut m = model();
    m.alarms
        .retain(|a| !matches!(a.kind, AlarmKind::Errors { .. }));
    assert!(!rollback::violations(&m, &table(&m)).is_empty());
    // A longer declared start with derived values left stale breaks the never-listens bar.
    let mut m = model();
    m.derived.never_healthy_seconds += 120;
    assert!(rollback::violations(&m, &table(&m))
        .iter()
        .any(|v| v.starts_with("never listens")));
}

#[test]
fn a_good_version_trips_no_deployment_group_alarm() {
    let m = model();
    let scenarios = walk::scenarios(&walk::Timeline::of(&m));
    assert!(scenarios.len() > 1000, "{} scenarios", scenarios.len());
    let trips = walk::walk(&m);
    assert!(
        trips.is_empty(),
        "{} good-version scenarios reach ALARM; first: {:#?}",
        trips.len(),
        trips.first()
    );
}

#[test]
fn the_walk_catches_the_old_alarm_designs() {
    // UnHealthyHostCount Maximum 2 of 2 (the old alarm): every normal start trips it.
    let mut m = model();
    for a in &mut m.alarms {
        if matches!(a.kind, AlarmKind::Unhealthy { .. }) {
            a.evaluation_periods = 2;
            a.datapoints_to_alarm = 2;
        }
    }
    let trips = walk::walk(&m);
    assert!(trips.iter().any(|t| t.alarm.contains("Unhealthy")));

    // p99 judged on every minute, 2 of 2: a cold JVM's first canary minute trips it.
    let mut m = model();
    for a in &mut m.alarms {
        if let AlarmKind::P99 { min_requests, .. } = &mut a.kind {
            *min_requests = 0.0;
            a.evaluation_periods = 2;
            a.datapoints_to_alarm = 2;
        }
    }
    assert!(walk::walk(&m).iter().any(|t| t.alarm.contains("P99")));

    // An absolute count of 5 errors a minute: keep-alive noise at the open trips it.
    let mut m = model();
    for a in &mut m.alarms {
        if let AlarmKind::Errors { count, .. } = &mut a.kind {
            *count = 5.0;
        }
    }
    assert!(walk::walk(&m).iter().any(|t| t.alarm.contains("Errors")));

    // The app closing idle connections at the ALB's timeout: the documented 502s trip the rate.
    let mut m = model();
    m.app_idle_timeout_seconds = Some(m.alb_idle_timeout_seconds);
    assert!(walk::walk(&m).iter().any(|t| t.alarm.contains("Errors")));
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
        text.contains("HealthCheckGracePeriodSeconds=\"115\""),
        "{text}"
    );
    assert!(text.contains("HookTimeoutSeconds=\"220\""), "{text}");
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
