//! The market warm-up's AWS edge against mocked SDK clients (aws-smithy-mocks): the exact
//! scheduled actions written and deleted, re-runs, failures, and the coverage metric.

use std::sync::{Arc, Mutex};

use crate::support::{event_text as event, ny};
use aws_sdk_applicationautoscaling as aas;
use aws_sdk_cloudwatch as cw;
use aws_sdk_ssm as ssm;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::DateTime;
use orderbroker::warmup::aws::{run, Clients, WarmupConfig, WarmupError, WarmupRequest};
use orderbroker::warmup::Settings;

const RESOURCE: &str = "service/ob-cluster/ob-service";

fn config() -> WarmupConfig {
    let env = [
        ("SCALABLE_RESOURCE_ID", RESOURCE),
        ("PREDICTIVE_POLICY_NAME", "orderbroker-predictive-cpu"),
        ("STACK_NAME", "orderbroker"),
        ("OVERRIDES_PARAMETER", "/orderbroker/warmup/overrides"),
        ("BASELINE_MIN_TASKS", "3"),
        ("METRICS_NAMESPACE", "OrderBroker/WarmUp"),
        ("SAFETY_FACTOR", "1.2"),
    ];
    WarmupConfig::from_env(|k| {
        env.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// Records every write the run makes.
#[derive(Default, Clone)]
struct Writes {
    puts: Log<aas::operation::put_scheduled_action::PutScheduledActionInput>,
    deletes: Log<String>,
    registers: Log<Option<i32>>,
    coverage: Log<f64>,
}

struct World {
    overrides: String,
    existing: Vec<aas::types::ScheduledAction>,
    forecast: Option<(Vec<SmithyTime>, Vec<f64>)>,
    fail_list: bool,
    fail_put_for: Option<String>,
}

impl Default for World {
    fn default() -> Self {
        World {
            overrides: "{}".into(),
            existing: Vec::new(),
            forecast: Some(forecast_fixture()),
            fail_list: false,
            fail_put_for: None,
        }
    }
}

fn forecast_fixture() -> (Vec<SmithyTime>, Vec<f64>) {
    let v: serde_json::Value =
        serde_json::from_str(&event("predictive-forecast-2026-11-30.json")).unwrap();
    let stamps = v["CapacityForecast"]["Timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let dt = DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
            SmithyTime::from_secs(dt.timestamp())
        })
        .collect();
    let values = v["CapacityForecast"]["Values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    (stamps, values)
}

fn internal(msg: &str) -> aas::types::error::InternalServiceException {
    aas::types::error::InternalServiceException::builder()
        .message(msg)
        .build()
}

fn clients(world: World, writes: &Writes) -> Clients {
    use aas::operation as op;
    let mut aas_rules: Vec<Rule> = Vec::new();
    aas_rules.push(
        mock!(aas::Client::describe_scalable_targets)
            .match_requests(|r| r.resource_ids() == [RESOURCE.to_string()])
            .then_output(|| {
                op::describe_scalable_targets::DescribeScalableTargetsOutput::builder()
                    .scalable_targets(
                        aas::types::ScalableTarget::builder()
                            .service_namespace(aas::types::ServiceNamespace::Ecs)
                            .resource_id(RESOURCE)
                            .scalable_dimension(
                                aas::types::ScalableDimension::EcsServiceDesiredCount,
                            )
                            .min_capacity(3)
                            .max_capacity(30)
                            .role_arn("arn:aws:iam::111122223333:role/aws-service-role/x")
                            .creation_time(SmithyTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            }),
    );
    let forecast = world.forecast.clone();
    aas_rules.push(match forecast {
        Some((stamps, values)) => mock!(aas::Client::get_predictive_scaling_forecast)
            .match_requests(|r| r.policy_name() == Some("orderbroker-predictive-cpu"))
            .then_output(move || {
                op::get_predictive_scaling_forecast::GetPredictiveScalingForecastOutput::builder()
                    .capacity_forecast(
                        aas::types::CapacityForecast::builder()
                            .set_timestamps(Some(stamps.clone()))
                            .set_values(Some(values.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            }),
        None => mock!(aas::Client::get_predictive_scaling_forecast).then_error(|| {
            op::get_predictive_scaling_forecast::GetPredictiveScalingForecastError::ValidationException(
                aas::types::error::ValidationException::builder()
                    .message("not enough data")
                    .build(),
            )
        }),
    });
    let existing = world.existing.clone();
    aas_rules.push(if world.fail_list {
        mock!(aas::Client::describe_scheduled_actions).then_error(|| {
            op::describe_scheduled_actions::DescribeScheduledActionsError::InternalServiceException(
                internal("boom"),
            )
        })
    } else {
        mock!(aas::Client::describe_scheduled_actions)
            .match_requests(|r| r.resource_id() == Some(RESOURCE))
            .then_output(move || {
                op::describe_scheduled_actions::DescribeScheduledActionsOutput::builder()
                    .set_scheduled_actions(Some(existing.clone()))
                    .build()
            })
    });
    let puts = writes.puts.clone();
    let fail_for = world.fail_put_for.clone();
    if let Some(name) = fail_for {
        aas_rules.push(
            mock!(aas::Client::put_scheduled_action)
                .match_requests(move |r| r.scheduled_action_name() == Some(name.as_str()))
                .then_error(|| {
                    op::put_scheduled_action::PutScheduledActionError::InternalServiceException(
                        internal("put failed"),
                    )
                }),
        );
    }
    aas_rules.push(
        mock!(aas::Client::put_scheduled_action).then_compute_output(move |r| {
            puts.lock().unwrap().push(r.clone());
            op::put_scheduled_action::PutScheduledActionOutput::builder().build()
        }),
    );
    let deletes = writes.deletes.clone();
    aas_rules.push(
        mock!(aas::Client::delete_scheduled_action).then_compute_output(move |r| {
            deletes
                .lock()
                .unwrap()
                .push(r.scheduled_action_name().unwrap().to_string());
            op::delete_scheduled_action::DeleteScheduledActionOutput::builder().build()
        }),
    );
    let registers = writes.registers.clone();
    aas_rules.push(
        mock!(aas::Client::register_scalable_target).then_compute_output(move |r| {
            registers.lock().unwrap().push(r.min_capacity());
            op::register_scalable_target::RegisterScalableTargetOutput::builder().build()
        }),
    );

    let coverage = writes.coverage.clone();
    let cw_rules = vec![
        mock!(cw::Client::get_metric_data)
            .then_output(|| cw::operation::get_metric_data::GetMetricDataOutput::builder().build()),
        mock!(cw::Client::put_metric_data)
            .match_requests(|r| r.namespace() == Some("OrderBroker/WarmUp"))
            .then_compute_output(move |r| {
                let d = &r.metric_data()[0];
                assert_eq!(d.metric_name(), Some("NextSpikeCovered"));
                assert_eq!(d.dimensions()[0].value(), Some("orderbroker"));
                coverage.lock().unwrap().push(d.value().unwrap());
                cw::operation::put_metric_data::PutMetricDataOutput::builder().build()
            }),
    ];
    let overrides = world.overrides.clone();
    let ssm_rules = vec![mock!(ssm::Client::get_parameter)
        .match_requests(|r| r.name() == Some("/orderbroker/warmup/overrides"))
        .then_output(move || {
            ssm::operation::get_parameter::GetParameterOutput::builder()
                .parameter(
                    ssm::types::Parameter::builder()
                        .value(overrides.clone())
                        .build(),
                )
                .build()
        })];
    Clients {
        autoscaling: mock_client!(aas, RuleMode::MatchAny, &aas_rules),
        cloudwatch: mock_client!(cw, RuleMode::MatchAny, &cw_rules),
        ssm: mock_client!(ssm, RuleMode::MatchAny, &ssm_rules),
    }
}

fn hourly() -> WarmupRequest {
    serde_json::from_str(&event("market-warmup-hourly.json")).unwrap()
}

/// The actions a run wrote, as (name, schedule, min) with the common fields checked.
fn written(w: &Writes) -> Vec<(String, String, i32)> {
    w.puts
        .lock()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(
                p.service_namespace(),
                Some(&aas::types::ServiceNamespace::Ecs)
            );
            assert_eq!(
                p.scalable_dimension(),
                Some(&aas::types::ScalableDimension::EcsServiceDesiredCount)
            );
            assert_eq!(p.resource_id(), Some(RESOURCE));
            assert_eq!(p.timezone(), Some("America/New_York"));
            let action = p.scalable_target_action().unwrap();
            assert_eq!(
                action.max_capacity(),
                None,
                "the warm-up never touches MaxCapacity"
            );
            (
                p.scheduled_action_name().unwrap().to_string(),
                p.schedule().unwrap().to_string(),
                action.min_capacity().unwrap(),
            )
        })
        .collect()
}

fn as_existing(w: &[(String, String, i32)]) -> Vec<aas::types::ScheduledAction> {
    w.iter()
        .map(|(name, schedule, min)| {
            aas::types::ScheduledAction::builder()
                .scheduled_action_name(name)
                .scheduled_action_arn(format!(
                    "arn:aws:autoscaling:us-east-2:111122223333:scheduledAction:x:{name}"
                ))
                .service_namespace(aas::types::ServiceNamespace::Ecs)
                .schedule(schedule)
                .timezone("America/New_York")
                .resource_id(RESOURCE)
                .scalable_dimension(aas::types::ScalableDimension::EcsServiceDesiredCount)
                .scalable_target_action(
                    aas::types::ScalableTargetAction::builder()
                        .min_capacity(*min)
                        .build(),
                )
                .creation_time(SmithyTime::from_secs(0))
                .build()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn first_run_writes_the_five_session_horizon_exactly() {
    let w = Writes::default();
    let c = clients(World::default(), &w);
    let report = run(&c, &config(), &hourly(), ny("2026-11-30", "06:00"))
        .await
        .unwrap();
    let puts = written(&w);
    assert_eq!(puts.len(), 20, "{puts:?}");
    // Monday 2026-11-30: forecast 9.4 for the open hour -> 12; 7.0 for the close -> 9.
    assert_eq!(
        puts[..4],
        [
            (
                "warmup-2026-11-30-open-raise".into(),
                "at(2026-11-30T09:17:00)".into(),
                12
            ),
            (
                "warmup-2026-11-30-open-restore".into(),
                "at(2026-11-30T10:00:00)".into(),
                3
            ),
            (
                "warmup-2026-11-30-close-raise".into(),
                "at(2026-11-30T15:17:00)".into(),
                9
            ),
            (
                "warmup-2026-11-30-close-restore".into(),
                "at(2026-11-30T16:15:00)".into(),
                3
            ),
        ]
    );
    // Beyond the forecast and with no history: the configured floor, still raised on time.
    assert!(puts.contains(&(
        "warmup-2026-12-04-open-raise".into(),
        "at(2026-12-04T09:17:00)".into(),
        Settings::default().fallback_floor as i32
    )));
    assert!(w.deletes.lock().unwrap().is_empty());
    assert!(w.registers.lock().unwrap().is_empty(), "3 already in force");
    assert_eq!(*w.coverage.lock().unwrap(), vec![1.0]);
    assert!(report.next_spike_covered);
    assert_eq!(report.forecast, "9 hourly points");
}

#[tokio::test]
async fn a_rerun_writes_nothing_twice() {
    let first = Writes::default();
    run(
        &clients(World::default(), &first),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    let existing = as_existing(&written(&first));
    let again = Writes::default();
    let report = run(
        &clients(
            World {
                existing,
                ..World::default()
            },
            &again,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:30"),
    )
    .await
    .unwrap();
    assert!(again.puts.lock().unwrap().is_empty());
    assert!(again.deletes.lock().unwrap().is_empty());
    assert_eq!(report.unchanged, 20);
    assert_eq!(*again.coverage.lock().unwrap(), vec![1.0]);
}

#[tokio::test]
async fn after_a_failed_run_the_next_one_still_covers_the_open() {
    // Monday 06:00 writes the horizon.
    let first = Writes::default();
    run(
        &clients(World::default(), &first),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    let monday = written(&first);
    // Monday 18:05: AWS fails mid-run. Nothing is written or deleted, no coverage is claimed.
    let failed = Writes::default();
    let err = run(
        &clients(
            World {
                fail_list: true,
                ..World::default()
            },
            &failed,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "18:05"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            WarmupError::Aws(ref e) if e.operation() == "DescribeScheduledActions"
        ),
        "{err}"
    );
    assert!(failed.puts.lock().unwrap().is_empty() && failed.deletes.lock().unwrap().is_empty());
    assert!(failed.coverage.lock().unwrap().is_empty());
    // Tuesday's open is still covered by Monday's actions...
    assert!(monday
        .iter()
        .any(|(n, s, _)| n == "warmup-2026-12-01-open-raise" && s == "at(2026-12-01T09:17:00)"));
    // ... and the next good run (Tuesday 05:05) drops Monday's and adds the new fifth session.
    let next = Writes::default();
    let report = run(
        &clients(
            World {
                existing: as_existing(&monday),
                forecast: None,
                ..World::default()
            },
            &next,
        ),
        &config(),
        &hourly(),
        ny("2026-12-01", "05:05"),
    )
    .await
    .unwrap();
    let mut deleted = next.deletes.lock().unwrap().clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            "warmup-2026-11-30-close-raise",
            "warmup-2026-11-30-close-restore",
            "warmup-2026-11-30-open-raise",
            "warmup-2026-11-30-open-restore",
        ]
    );
    let added: Vec<_> = written(&next).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(added.len(), 4);
    assert!(added.iter().all(|n| n.contains("2026-12-07")), "{added:?}");
    assert!(report.next_spike_covered);
    assert!(
        report.forecast.contains("forecast unavailable"),
        "{}",
        report.forecast
    );
}

#[tokio::test]
async fn inside_the_open_window_the_floor_is_applied_at_once() {
    let w = Writes::default();
    let report = run(
        &clients(World::default(), &w),
        &config(),
        &serde_json::from_str(&event("market-warmup-in-session.json")).unwrap(),
        ny("2026-11-30", "09:20"),
    )
    .await
    .unwrap();
    assert_eq!(*w.registers.lock().unwrap(), vec![Some(12)]);
    assert_eq!(report.floor_now, 12);
    assert!(written(&w)
        .iter()
        .all(|(n, _, _)| n != "warmup-2026-11-30-open-raise"));
    assert!(report.next_spike_covered);
}

#[tokio::test]
async fn a_failed_write_is_reported_and_fails_the_run_but_the_rest_is_written() {
    let w = Writes::default();
    let err = run(
        &clients(
            World {
                fail_put_for: Some("warmup-2026-12-02-open-raise".into()),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap_err();
    match err {
        WarmupError::Partial(errors) => {
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].starts_with("warmup-2026-12-02-open-raise"),
                "{errors:?}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(written(&w).len(), 19);
    // The next spike (today's open) is covered, and the metric says so.
    assert_eq!(*w.coverage.lock().unwrap(), vec![1.0]);
}

#[tokio::test]
async fn paused_schedules_nothing_and_reports_uncovered() {
    let w = Writes::default();
    let report = run(
        &clients(
            World {
                overrides: event("market-warmup-overrides-paused.json"),
                existing: as_existing(&[(
                    "warmup-2026-11-30-open-raise".into(),
                    "at(2026-11-30T09:17:00)".into(),
                    12,
                )]),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    assert!(report.paused);
    assert!(w.puts.lock().unwrap().is_empty());
    assert_eq!(
        *w.deletes.lock().unwrap(),
        vec!["warmup-2026-11-30-open-raise".to_string()]
    );
    assert_eq!(*w.coverage.lock().unwrap(), vec![0.0]);
}

#[tokio::test]
async fn manual_floor_is_respected_by_every_action() {
    let w = Writes::default();
    run(
        &clients(
            World {
                overrides: event("market-warmup-overrides-manual-floor.json"),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    let puts = written(&w);
    assert!(puts.iter().all(|(_, _, min)| *min >= 12));
    assert!(puts
        .iter()
        .filter(|(n, _, _)| n.ends_with("restore"))
        .all(|(_, _, min)| *min == 12));
    // 12 is above the 3 in force: applied now.
    assert_eq!(*w.registers.lock().unwrap(), vec![Some(12)]);
}

#[tokio::test]
async fn bad_overrides_are_named_and_nothing_is_written() {
    let w = Writes::default();
    let err = run(
        &clients(
            World {
                overrides: r#"{"paused": "yes"}"#.into(),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("/orderbroker/warmup/overrides"),
        "{err}"
    );
    assert!(w.puts.lock().unwrap().is_empty());
}

#[test]
fn every_event_fixture_is_a_valid_request() {
    for name in [
        "market-warmup-hourly.json",
        "market-warmup-in-session.json",
        "market-warmup-deploy.json",
        "market-warmup-dry-run.json",
    ] {
        let r: WarmupRequest = serde_json::from_str(&event(name)).unwrap();
        assert!(r.trigger.is_some(), "{name}");
    }
    let dry: WarmupRequest = serde_json::from_str(&event("market-warmup-dry-run.json")).unwrap();
    assert!(dry.dry_run);
}

#[test]
fn configuration_errors_name_the_variable() {
    let err = WarmupConfig::from_env(|k| (k == "SCALABLE_RESOURCE_ID").then(|| "cluster/x".into()))
        .unwrap_err();
    assert!(err.to_string().contains("SCALABLE_RESOURCE_ID"), "{err}");
    let err = WarmupConfig::from_env(|k| match k {
        "SCALABLE_RESOURCE_ID" => Some(RESOURCE.into()),
        "PREDICTIVE_POLICY_NAME" | "STACK_NAME" | "OVERRIDES_PARAMETER" => Some("x".into()),
        "BASELINE_MIN_TASKS" => Some("three".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("BASELINE_MIN_TASKS"), "{err}");
}
