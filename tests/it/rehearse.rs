//! The deployment rehearsal (src/rehearse): scenario files, the model running the project's own
//! decisions with the template's and the functions' own values, the report's keys, its
//! determinism, the Rules, and the shape bounds of the new code.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::rehearse::scenario::{self, Scenario, BUILT_IN};
use orderbroker::rehearse::world::Setup;
use orderbroker::rehearse::{engine, latencies, rehearse, report, Rehearsal};
use orderbroker::timing::deploy_parameters;
use serde_json::Value;

use crate::support::{orderbroker, root};

fn cli(args: &[&str]) -> std::process::Output {
    orderbroker()
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn template() -> Template {
    Template::load(root().join("template.yaml")).expect("template.yaml parses")
}

/// `make deploy`'s parameter values.
fn base(t: &Template) -> Vec<(String, String)> {
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    deploy_parameters(&c, t, &[]).unwrap()
}

fn setup_of(t: &Template, s: &Scenario) -> Setup {
    Setup::for_scenario(t, &base(t), s).expect("the rehearsal reads the template")
}

/// Each built-in scenario rehearsed once for every test.
fn rehearsed(name: &str) -> &'static Rehearsal {
    static ALL: OnceLock<BTreeMap<String, Rehearsal>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let t = template();
        BUILT_IN
            .iter()
            .map(|n| {
                let s = scenario::built_in(n).unwrap();
                (n.to_string(), rehearse(&setup_of(&t, &s), &s, true))
            })
            .collect()
    });
    &all[name]
}

#[test]
fn a_scenario_file_names_an_unknown_key_and_keeps_null_apart_from_absent() {
    let e = scenario::parse("x.yaml", "green: {listen: false}\n").unwrap_err();
    assert!(e.to_string().contains("listen"), "{e}");
    let e = scenario::parse("x.yaml", "green: {}\nprodution_rps: 5\n").unwrap_err();
    assert!(e.to_string().contains("prodution_rps"), "{e}");
    let e = scenario::parse("x.yaml", "blue: {error_rate: 0.1}\n").unwrap_err();
    assert!(e.to_string().contains("green"), "green is required: {e}");

    let s = scenario::parse("x.yaml", "green: {}\n").unwrap();
    assert_eq!(
        s.green.healthy_after_s, None,
        "absent: the template's value"
    );
    assert_eq!(s.production_rps, 200.0);
    assert!(s.green.listens && s.green.hooks_report);
    let s = scenario::parse("x.yaml", "green: {healthy_after_s: null}\n").unwrap();
    assert_eq!(s.green.healthy_after_s, Some(None), "null: never healthy");
    let s = scenario::parse(
        "x.yaml",
        "alb_scheme: internet-facing\nparameters: {MinTasks: 4}\ngreen:\n  error_rate: {canary: 0.05}\n",
    )
    .unwrap();
    assert_eq!(s.parameters["MinTasks"].text(), "4");
    assert_eq!(s.green.error_rate.unwrap().canary, 0.05);
    let e = scenario::parse("x.yaml", "green: {error_rate: {canary: 2}}\n").unwrap_err();
    assert!(e.to_string().contains("green.error_rate.canary"), "{e}");

    assert!(scenario::is_file("scenarios/x"));
    assert!(scenario::is_file("x.yaml"));
    assert!(!scenario::is_file("crash-loop"));
    let e = scenario::built_in("crash").unwrap_err();
    assert!(e.to_string().contains("crash-loop"), "lists the names: {e}");
}

#[test]
fn the_built_in_scenarios_are_the_issues() {
    assert_eq!(
        BUILT_IN,
        [
            "good-slow-jvm",
            "good-under-load",
            "good-scale-out-during-deploy",
            "never-listens",
            "never-healthy",
            "crash-loop",
            "fails-under-traffic",
            "latency-regression",
            "hook-never-reports",
        ]
    );
}

#[test]
fn every_latency_range_has_a_source_and_is_no_narrower_than_the_issue_allows() {
    use latencies::Latency::*;
    let floor = [
        (InstallToFirstHook, 15),
        (FargateDeprovision, 30),
        (EcsActionAfterGrace, 30),
        (EventBridgeDelivery, 30),
        (AlarmPoll, 60),
        (CodeDeployReaction, 15),
        (ListenerReroute, 10),
        (TaskSetDeletion, 30),
        (CliOverhead, 10),
        (MinutePhase, 59),
    ];
    for (l, width) in floor {
        let r = latencies::range(l);
        assert_eq!(r.latency, l);
        assert!(r.max - r.min >= width, "{l:?} is narrower than {width} s");
        assert!(!r.source.is_empty());
    }
    assert_eq!(latencies::RANGES.len(), floor.len());
    assert_eq!(latencies::PUBLICATION_RANGE, (30, 150));
    assert_eq!(latencies::publication_orders().len(), 5);
}

/// A copy of the template with one environment variable of the functions of `handler` set.
fn with_env(t: &Template, handler: &str, name: &str, value: &str) -> Template {
    let mut doc = t.doc().clone();
    let resources = doc["Resources"].as_object_mut().unwrap();
    for (_, r) in resources.iter_mut() {
        if r["Properties"]["Handler"] == handler {
            r["Properties"]["Environment"]["Variables"][name] = Value::from(value);
        }
    }
    Template::from_json(doc).unwrap()
}

fn nominal(t: &Template, s: &Scenario) -> engine::Outcome {
    let setup = setup_of(t, s);
    let choice = latencies::Choice::new(latencies::Pick::Nominal);
    engine::run(&setup, s, choice, None, true)
}

#[test]
fn the_model_runs_the_gates_with_the_functions_own_settings() {
    let t = template();
    let s = scenario::built_in("never-listens").unwrap();
    let mut good = s.clone();
    good.green = scenario::parse("x.yaml", "green: {}\n").unwrap().green;
    // The gates send WARMUP_ORDERS_PER_TARGET per healthy target (3) + SYNTHETIC_ORDERS, as
    // the function reads them and gates::aws sizes the run.
    let orders =
        |t: &Template| -> Vec<u64> { nominal(t, &good).gate_traffic.iter().map(|g| g.2).collect() };
    assert_eq!(orders(&t), vec![170, 170, 170]);
    let more = with_env(&t, "traffic-validator", "SYNTHETIC_ORDERS", "40");
    assert_eq!(orders(&more), vec![190, 190, 190]);
    // The function's own time budget (MAX_RUN_SECONDS) bounds the run: too short, it fails.
    let short = with_env(&t, "traffic-validator", "MAX_RUN_SECONDS", "30");
    let o = nominal(&short, &good);
    assert_eq!(
        o.cd.stopped_by.map(|b| b.label()).as_deref(),
        Some("gate:AfterAllowTestTraffic")
    );
    let fewer = with_env(&t, "traffic-validator", "WARMUP_ORDERS_PER_TARGET", "2");
    assert_eq!(
        orders(&fewer),
        vec![30, 30, 30],
        "at least WARMUP_ORDERS (10)"
    );
    // The hooks run in the AppSpec's order.
    let o = nominal(&t, &good);
    let events: Vec<&str> = o.gate_traffic.iter().map(|g| g.3).collect();
    let placement: Vec<&str> = orderbroker::deploy::appspec::hook_placement()
        .into_iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(events, placement);
}

#[test]
fn the_model_runs_the_watchdog_with_its_own_settings() {
    let t = template();
    let s = scenario::built_in("crash-loop").unwrap();
    let stopped = |t: &Template| nominal(t, &s).cd.stopped_at.unwrap();
    let two = stopped(&t);
    // Three tasks crash together: their three stops count at once; a fourth is a replacement's.
    let three = stopped(&with_env(&t, "deploy-watchdog", "COUNTED_STOPS", "3"));
    let four = stopped(&with_env(&t, "deploy-watchdog", "COUNTED_STOPS", "4"));
    assert_eq!(two, three);
    assert!(
        four > three,
        "a fourth counted stop takes longer: {three} vs {four}"
    );
    assert_eq!(
        nominal(&t, &s).cd.stopped_by.unwrap().label(),
        "watchdog:crash-count"
    );
}

#[test]
fn bad_versions_are_stopped_by_the_expected_mechanisms() {
    for (name, by) in [
        (
            "never-listens",
            &["gate:AfterAllowTestTraffic", "watchdog:never-healthy"][..],
        ),
        (
            "never-healthy",
            &["gate:AfterAllowTestTraffic", "watchdog:never-healthy"],
        ),
        ("crash-loop", &["watchdog:crash-count"]),
    ] {
        let r = rehearsed(name);
        assert!(r.nominal.rolled_back, "{name}");
        let got = r.nominal.stopped_by.clone().unwrap();
        assert!(by.contains(&got.as_str()), "{name}: stopped by {got}");
        let w = r.worst_case.as_ref().unwrap();
        assert!(w.rolled_back, "{name}: every run rolled back");
        for (mechanism, runs) in &r.stopped_by_runs {
            assert!(
                by.contains(&mechanism.as_str()),
                "{name}: {runs} runs stopped by {mechanism}: {:?}",
                r.stopped_by_runs
            );
        }
        let took = w.rollback_complete_after_s.unwrap() - w.onset_s.unwrap();
        assert!(
            took <= report::ROLLBACK_BOUND_SECONDS,
            "{name}: worst {took} s"
        );
    }
}

#[test]
fn a_hook_that_never_reports_is_stopped_by_the_watchdog_well_before_the_hour() {
    let t = template();
    let s = scenario::built_in("hook-never-reports").unwrap();
    let setup = setup_of(&t, &s);
    let r = rehearsed("hook-never-reports");
    assert_eq!(
        r.stopped_by_runs.keys().collect::<Vec<_>>(),
        ["watchdog:hook-silent"],
        "{:?}",
        r.stopped_by_runs
    );
    let bound = f64::from(setup.timing.hook_timeout_seconds) + report::SILENT_HOOK_MARGIN_SECONDS;
    let took = r.max_onset_to_stopped_s.unwrap();
    assert!(took <= bound, "onset -> stopped {took} s > {bound} s");
    // Well before CodeDeploy's own hour.
    assert!(took < 3600.0 / 4.0);
    assert!(
        report::misses(r, &setup).is_empty(),
        "{:?}",
        report::misses(r, &setup)
    );
}

#[test]
fn good_versions_are_never_rolled_back_trip_no_alarm_and_lose_no_request() {
    let t = template();
    for name in [
        "good-slow-jvm",
        "good-under-load",
        "good-scale-out-during-deploy",
    ] {
        let r = rehearsed(name);
        let w = r.worst_case.as_ref().unwrap();
        assert!(
            !w.rolled_back,
            "{name}: rolled back in some run: {:?}",
            r.stopped_by_runs
        );
        assert!(w.alarms_fired.is_empty(), "{name}: {:?}", w.alarms_fired);
        assert_eq!(r.max_failed_production_requests, 0, "{name}");
        assert!(report::misses(r, &setup_of(&t, &scenario::built_in(name).unwrap())).is_empty());
        // The good version went all the way: every hook passed, production on green.
        let n = &r.nominal;
        assert!(
            n.stopped_by.is_none() && n.onset_s.is_none(),
            "{name}: {n:?}"
        );
    }
}

#[test]
fn the_report_has_the_issues_keys_and_is_deterministic() {
    let out = cli(&["rehearse", "--scenario", "crash-loop", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let keys = [
        "scenario",
        "rolled_back",
        "stopped_by",
        "onset_s",
        "stopped_after_s",
        "back_on_blue_after_s",
        "rollback_complete_after_s",
        "alarms_fired",
        "failed_production_requests",
    ];
    for k in keys {
        assert!(v.get(k).is_some(), "top level lacks {k}");
        for case in ["best_case", "worst_case"] {
            assert!(v[case].get(k).is_some(), "{case} lacks {k}");
        }
    }
    assert!(v["worst_case"]["latencies"].is_object());
    let runs = v["runs"].as_u64().unwrap();
    assert!(runs > 200 && runs <= 1024 * 5 + 200 + 1, "{runs} runs");
    let again = cli(&["rehearse", "--scenario", "crash-loop", "--json"]);
    assert_eq!(
        out.stdout, again.stdout,
        "the same scenario gives the same report"
    );
}

#[test]
fn a_scenario_the_templates_rules_refuse_exits_2_naming_the_rule() {
    let dir = std::env::temp_dir().join(format!("rehearse-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("open.yaml");
    std::fs::write(
        &file,
        "alb_scheme: internet-facing\nparameters: {ValidatorSourceCidr: \"\"}\ngreen: {}\n",
    )
    .unwrap();
    let out = cli(&["rehearse", "--scenario", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InternetFacingNeedsPublicSubnetsAndValidatorPath")
            && err.contains("ValidatorSourceCidr"),
        "{err}"
    );
    std::fs::write(&file, "green: {hooks_reprot: false}\n").unwrap();
    let out = cli(&["rehearse", "--scenario", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hooks_reprot"));
}

/// Lines of each function in a Rust source (from its `fn` line to the brace closing it at the
/// same indentation).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let trimmed = l.trim_start();
        let indent = &l[..l.len() - trimmed.len()];
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(super) fn ",
            "pub(crate) fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .any(|p| trimmed.starts_with(p));
        if !is_fn || trimmed.ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(j) = lines[i + 1..].iter().position(|x| *x == close) {
            out.push((trimmed.chars().take(60).collect(), j + 2));
        }
    }
    out
}

#[test]
fn the_rehearsal_meets_the_shape_bounds_and_does_no_io() {
    let dir = root().join("src/rehearse");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        let name = path.display();
        assert!(text.lines().count() <= 600, "{name}: over 600 lines");
        for (f, n) in function_lengths(&text) {
            assert!(n <= 80, "{name}: {f} has {n} lines");
        }
        for io in [
            "std::fs", "std::net", "tokio", "reqwest", "aws_sdk", "std::env", "println!",
        ] {
            assert!(
                !text.contains(io),
                "{name}: {io} (I/O belongs to the CLI edge)"
            );
        }
    }
    assert!(files >= 10);
    assert!(function_lengths("fn a() {\n    x\n}\n")[0].1 == 3);
}

#[test]
fn a_live_deployment_is_read_in_the_rehearsals_vocabulary() {
    use orderbroker::rehearse::live::{compare, mechanism};
    assert_eq!(mechanism(None, None, None), "none");
    assert_eq!(
        mechanism(
            Some("HOOK_EXECUTION_FAILURE"),
            Some("AfterAllowTestTraffic"),
            Some("failed")
        ),
        "gate:AfterAllowTestTraffic"
    );
    assert!(mechanism(Some("MANUAL_STOP"), None, None).starts_with("watchdog"));
    assert!(mechanism(Some("ALARM_ACTIVE"), None, Some("GreenP99")).starts_with("alarm"));
    let r = rehearsed("crash-loop");
    let lines = compare(&[("Install".into(), 61.0), ("stopped".into(), 1000.0)], r);
    assert!(
        lines[0].contains("inside") || lines[0].contains("OUTSIDE"),
        "{lines:?}"
    );
    assert!(lines[1].contains("OUTSIDE"), "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("rollback complete") && l.contains("not measured")));
}

#[test]
fn the_repository_scenarios_rehearse_as_documented() {
    let t = template();
    let expect = [
        ("image-missing.yaml", Some("watchdog:crash-count")),
        ("failing-orders.yaml", Some("gate:AfterAllowTestTraffic")),
        // Slow once warm: still caught on the test listener, before production moves.
        ("slow-everywhere.yaml", Some("gate:AfterAllowTestTraffic")),
        ("internet-facing-good.yaml", None),
    ];
    for (file, by) in expect {
        let path = root().join("scenarios").join(file);
        let s = scenario::parse(file, &std::fs::read_to_string(&path).unwrap()).unwrap();
        let setup = setup_of(&t, &s);
        let r = rehearse(&setup, &s, false);
        assert_eq!(
            r.nominal.stopped_by.as_deref(),
            by,
            "{file}: {:?}",
            r.stopped_by_runs
        );
        assert!(
            report::misses(&r, &setup).is_empty(),
            "{file}: {:?}",
            report::misses(&r, &setup)
        );
    }
}

#[test]
fn the_rollback_budget_in_the_docs_is_the_rehearsals_table() {
    let t = template();
    let rows: Vec<(Rehearsal, Vec<String>)> = BUILT_IN
        .iter()
        .map(|n| {
            let r = rehearsed(n).clone();
            let misses = report::misses(&r, &setup_of(&t, &scenario::built_in(n).unwrap()));
            (r, misses)
        })
        .collect();
    let table = report::markdown(&rows);
    let docs = std::fs::read_to_string(root().join("docs/deployments.md")).unwrap();
    assert!(
        docs.contains(&table),
        "docs/deployments.md must hold the rehearsal's table (orderbroker rehearse --all --markdown):\n{table}"
    );
    // The bounds every scenario holds, and the two the rehearsal reports as missed with what
    // limits them (docs/deployments.md, "Rollback budget").
    for (r, misses) in &rows {
        let name = r.nominal.scenario.as_str();
        match name {
            "fails-under-traffic" | "latency-regression" => {
                assert!(r.worst_case.as_ref().unwrap().rolled_back, "{name}");
                let n = &r.nominal;
                let back = n.back_on_blue_after_s.unwrap() - n.onset_s.unwrap();
                assert!(
                    back <= report::ROLLBACK_BOUND_SECONDS,
                    "{name}: back on blue {back}"
                );
            }
            _ => assert!(misses.is_empty(), "{name}: {misses:?}"),
        }
    }
}
