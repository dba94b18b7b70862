//! The warm-pool function's AWS edge against mocked SDK clients: N published every run,
//! changed only past hysteresis, and kept when inputs cannot be read.

use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch as cw;
use aws_sdk_ecs as ecs;
use aws_sdk_ssm as ssm;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Duration, TimeZone, Utc};
use orderbroker::warm_pool::aws::{run, PoolClients, PoolConfig};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap()
}

fn cfg() -> PoolConfig {
    let env = [
        ("CLUSTER_NAME", "ob-cluster"),
        ("SERVICE_NAME", "ob-service"),
        ("STACK_NAME", "orderbroker"),
        ("SETTINGS_PARAMETER", "/orderbroker/warm-pool/settings"),
        ("STANDBY_DEFAULT", "2"),
        ("CPU_TARGET", "60"),
        ("HEALTHY_THRESHOLD", "2"),
        ("HEALTH_INTERVAL_SECONDS", "5"),
        // 0 keeps this file's hysteresis arithmetic (R = start + 10 + 180); the declared JVM
        // start's part of R is tests/it/warm_pool.rs and the test below.
        ("RUNNING_TO_HEALTHY_SECONDS", "0"),
        ("DEFAULT_START_SECONDS", "60"),
    ];
    PoolConfig::from_env(|k| {
        env.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn ts(t: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_secs(t.timestamp())
}

struct World {
    settings: &'static str,
    /// Last published StandbyTasks: (minutes ago, value).
    history: Vec<(i64, f64)>,
    load: Vec<f64>,
    ecs_fails: bool,
}

/// Each published StandbyTasks value.
type Published = Arc<Mutex<Vec<(String, f64)>>>;

fn clients(w: World, published: &Published) -> PoolClients {
    let history = w.history.clone();
    let load = w.load.clone();
    let cw_rules = vec![
        mock!(cw::Client::get_metric_data)
            .match_requests(|r| {
                r.metric_data_queries()
                    .iter()
                    .any(|q| q.id() == Some("standby"))
            })
            .then_output(move || {
                let (t, v): (Vec<_>, Vec<_>) = history
                    .iter()
                    .map(|(ago, v)| (ts(now() - Duration::minutes(*ago)), *v))
                    .unzip();
                cw::operation::get_metric_data::GetMetricDataOutput::builder()
                    .metric_data_results(
                        cw::types::MetricDataResult::builder()
                            .id("standby")
                            .set_timestamps(Some(t))
                            .set_values(Some(v))
                            .build(),
                    )
                    .build()
            }),
        mock!(cw::Client::get_metric_data)
            .match_requests(|r| {
                r.metric_data_queries()
                    .iter()
                    .any(|q| q.id() == Some("load"))
            })
            .then_output(move || {
                let start = now() - Duration::hours(1);
                let (t, v): (Vec<_>, Vec<_>) = load
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (ts(start + Duration::minutes(i as i64)), *v))
                    .unzip();
                cw::operation::get_metric_data::GetMetricDataOutput::builder()
                    .metric_data_results(
                        cw::types::MetricDataResult::builder()
                            .id("load")
                            .set_timestamps(Some(t))
                            .set_values(Some(v))
                            .build(),
                    )
                    .build()
            }),
        {
            let p = published.clone();
            mock!(cw::Client::put_metric_data)
                .match_requests(|r| r.namespace() == Some("OrderBroker/WarmPool"))
                .then_compute_output(move |r| {
                    for d in r.metric_data() {
                        assert_eq!(d.dimensions()[0].value(), Some("orderbroker"));
                        p.lock()
                            .unwrap()
                            .push((d.metric_name().unwrap().to_string(), d.value().unwrap()));
                    }
                    cw::operation::put_metric_data::PutMetricDataOutput::builder().build()
                })
        },
    ];
    let ecs_rules: Vec<Rule> = if w.ecs_fails {
        vec![mock!(ecs::Client::list_tasks).then_error(|| {
            ecs::operation::list_tasks::ListTasksError::ServerException(
                ecs::types::error::ServerException::builder()
                    .message("down")
                    .build(),
            )
        })]
    } else {
        vec![
            mock!(ecs::Client::list_tasks)
                .match_requests(|r| {
                    r.cluster() == Some("ob-cluster") && r.service_name() == Some("ob-service")
                })
                .then_output(|| {
                    ecs::operation::list_tasks::ListTasksOutput::builder()
                        .task_arns("arn:aws:ecs:us-east-2:111122223333:task/ob-cluster/a")
                        .task_arns("arn:aws:ecs:us-east-2:111122223333:task/ob-cluster/b")
                        .build()
                }),
            mock!(ecs::Client::describe_tasks).then_output(|| {
                let task = |created: i64, started: i64| {
                    ecs::types::Task::builder()
                        .created_at(ts(now() - Duration::seconds(created)))
                        .started_at(ts(now() - Duration::seconds(created - started)))
                        .build()
                };
                ecs::operation::describe_tasks::DescribeTasksOutput::builder()
                    .tasks(task(3600, 40))
                    .tasks(task(1800, 60))
                    .build()
            }),
        ]
    };
    let settings = w.settings;
    let ssm_rules = vec![mock!(ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some("/orderbroker/warm-pool/settings"))
        .then_output(move || {
            ssm::operation::get_parameter::GetParameterOutput::builder()
                .parameter(ssm::types::Parameter::builder().value(settings).build())
                .build()
        })];
    PoolClients {
        ecs: mock_client!(ecs, RuleMode::MatchAny, &ecs_rules),
        cloudwatch: mock_client!(cw, RuleMode::MatchAny, &cw_rules),
        ssm: mock_client!(ssm, RuleMode::MatchAny, &ssm_rules),
    }
}

fn standby(p: &Published) -> Vec<f64> {
    p.lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| m == "StandbyTasks")
        .map(|(_, v)| *v)
        .collect()
}

/// A ramp of 60 task-% a minute: start p90 60 s -> R = 250 s -> rise 240 -> ceil(1.25 x 4) = 5.
fn ramp() -> Vec<f64> {
    (0..20).map(|i| 300.0 + 60.0 * i as f64).collect()
}

#[tokio::test]
async fn n_is_sized_and_published_with_the_measured_start() {
    // One run on the ramp with nothing published before.
    let on_ramp = |cfg: PoolConfig| async move {
        let p = Published::default();
        let clients = clients(
            World {
                settings: "{}",
                history: vec![],
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        );
        let r = run(&clients, &cfg, now()).await;
        (r, p)
    };
    let (r, p) = on_ramp(cfg()).await;
    assert!(r.degraded.is_empty(), "{:?}", r.degraded);
    assert_eq!(r.published, 5);
    assert_eq!(standby(&p), vec![5.0]);
    let start: Vec<_> = p
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| m == "TaskStartSeconds")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(start, vec![60.0], "p90 of 40 s and 60 s");

    // The declared RUNNING -> healthy (RUNNING_TO_HEALTHY_SECONDS) is part of R: 60 more
    // seconds of ramp to cover (R 310 s: rise 300 -> ceil(1.25 x 5) = 7).
    let mut declared = cfg();
    declared.running_to_healthy_seconds = 60.0;
    let (r, _) = on_ramp(declared).await;
    assert_eq!(
        r.recommendation.as_ref().unwrap().replacement_seconds,
        310.0
    );
    assert_eq!(r.published, 7);
}

#[tokio::test]
async fn n_changes_only_past_the_hysteresis() {
    // Published 6 for the last 5 minutes; the model says 5: a decrease waits 15 minutes.
    let p = Published::default();
    let r = run(
        &clients(
            World {
                settings: "{}",
                history: vec![(5, 6.0), (3, 6.0), (1, 6.0)],
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![6.0], "{}", r.decision);
    // 6 for the last 20 minutes (out of a 3-hour look-back): now it steps down.
    let p = Published::default();
    let history: Vec<(i64, f64)> = (1..=20).map(|m| (m, 6.0)).collect();
    run(
        &clients(
            World {
                settings: "{}",
                history,
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![5.0]);
}

#[tokio::test]
async fn a_read_failure_keeps_the_last_value_and_still_publishes() {
    let p = Published::default();
    let r = run(
        &clients(
            World {
                settings: "{}",
                history: vec![(1, 7.0)],
                load: ramp(),
                ecs_fails: true,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![7.0]);
    assert!(
        r.degraded.iter().any(|d| d.contains("ListTasks")),
        "{:?}",
        r.degraded
    );
    // Nothing published before either: the safe default the policy's FILL also uses.
    let p = Published::default();
    run(
        &clients(
            World {
                settings: "{not json",
                history: vec![],
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![2.0]);
}

#[tokio::test]
async fn operator_bounds_and_pause_apply_without_a_code_change() {
    let p = Published::default();
    run(
        &clients(
            World {
                settings: r#"{"min": 1, "max": 3}"#,
                history: vec![],
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![3.0]);
    let p = Published::default();
    let r = run(
        &clients(
            World {
                settings: r#"{"paused": true}"#,
                history: vec![(1, 4.0)],
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![4.0]);
    assert!(r.decision.contains("paused"));
}

#[test]
fn the_recommend_cli_explains_the_worked_example() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/warm-pool-model-input.json");
    let out = crate::support::orderbroker()
        .args(["warm-pool", "recommend", "--input"])
        .arg(&file)
        .output()
        .unwrap();
    let text = crate::support::succeeded(&out);
    assert!(text.starts_with("standby tasks N = 7\n"), "{text}");
    assert!(
        text.contains("task start p90 = 90 s over 4 recent tasks"),
        "{text}"
    );
    assert!(text.contains("replacements arrive after 340 s"), "{text}");
}

/// Every numeric settings field at extreme values: each is refused by name or accepted, and an
/// accepted document never panics the model (the CLI's `--settings` and the function's SSM
/// parameter share this parser).
#[test]
fn every_settings_field_is_bounded_at_extreme_values() {
    use orderbroker::warm_pool::aws::parse_settings;
    let fields = [
        "min",
        "max",
        "safety_factor",
        "default_start_seconds",
        "reaction_seconds",
        "start_percentile",
        "min_step",
        "min_interval_minutes",
    ];
    let extremes = [
        "-1e300", "-1", "0", "0.5", "1", "90", "100", "101", "5000", "1e19", "1e300",
    ];
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/warm-pool-model-input.json");
    let base: orderbroker::warm_pool::ModelInputs =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut accepted = 0;
    for field in fields {
        for x in extremes {
            let doc = format!("{{\"{field}\": {x}}}");
            match parse_settings("/p", &doc) {
                Ok(s) => {
                    accepted += 1;
                    s.validate().unwrap();
                    let mut i = base.clone();
                    i.settings = s;
                    let r = orderbroker::warm_pool::recommend(&i);
                    assert!(r.n <= orderbroker::warm_pool::MAX_STANDBY, "{doc}");
                }
                Err(e) => assert!(e.to_string().contains(field), "{doc}: {e}"),
            }
        }
    }
    assert!(accepted > 0 && accepted < fields.len() * extremes.len());
    for refused in [
        r#"{"reaction_seconds": -1e300}"#,
        r#"{"default_start_seconds": 0}"#,
        r#"{"start_percentile": 500}"#,
        r#"{"safety_factor": -2}"#,
        r#"{"min": 5, "max": 2}"#,
        r#"{"max": 100000}"#,
    ] {
        assert!(parse_settings("/p", refused).is_err(), "{refused}");
    }
}

#[tokio::test]
async fn settings_out_of_range_keep_the_last_value_as_other_bad_input_does() {
    let p = Published::default();
    let r = run(
        &clients(
            World {
                settings: r#"{"reaction_seconds": -1e300}"#,
                history: vec![(1, 7.0)],
                load: ramp(),
                ecs_fails: false,
            },
            &p,
        ),
        &cfg(),
        now(),
    )
    .await;
    assert_eq!(standby(&p), vec![7.0]);
    assert!(
        r.degraded.iter().any(|d| d.contains("reaction_seconds")),
        "{:?}",
        r.degraded
    );
}

#[test]
fn the_recommend_cli_refuses_nonsense_input_and_flags_an_input_file_would_ignore() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/warm-pool-model-input.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("ob-wp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, serde_json::Value, &str); 5] = [
        (
            "safety",
            serde_json::json!({"safety_factor": -1.0}),
            "safety_factor",
        ),
        (
            "minmax",
            serde_json::json!({"min": 9, "max": 2}),
            "min 9 is above max 2",
        ),
        (
            "pct",
            serde_json::json!({"start_percentile": 500.0}),
            "start_percentile",
        ),
        (
            "reaction",
            serde_json::json!({"reaction_seconds": -1e300}),
            "reaction_seconds",
        ),
        ("capacity", serde_json::json!({}), "per_task_capacity"),
    ];
    for (name, settings, says) in cases {
        v["settings"] = settings;
        if name == "capacity" {
            v["per_task_capacity"] = serde_json::json!(0.0);
        }
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, v.to_string()).unwrap();
        let out = crate::support::orderbroker()
            .args(["warm-pool", "recommend", "--input"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    for flag in [
        &["--cpu-target", "50"][..],
        &["--settings", "{}"],
        &["--healthy-threshold", "3"],
    ] {
        let out = crate::support::orderbroker()
            .args(["warm-pool", "recommend", "--input"])
            .arg(&file)
            .args(flag)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {err}");
        assert!(err.contains("cannot be used with"), "{flag:?}: {err}");
    }
}
