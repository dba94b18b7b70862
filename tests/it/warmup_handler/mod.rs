//! The market warm-up's AWS edge against mocked SDK clients (aws-smithy-mocks): the exact
//! scheduled actions written and deleted, re-runs, failures, and the coverage metric.

mod overrides;
mod runs;

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
    skipped: Log<f64>,
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
    let skipped = writes.skipped.clone();
    let cw_rules = vec![
        mock!(cw::Client::get_metric_data)
            .then_output(|| cw::operation::get_metric_data::GetMetricDataOutput::builder().build()),
        mock!(cw::Client::put_metric_data)
            .match_requests(|r| r.namespace() == Some("OrderBroker/WarmUp"))
            .then_compute_output(move |r| {
                for d in r.metric_data() {
                    assert_eq!(d.dimensions()[0].value(), Some("orderbroker"));
                    match d.metric_name() {
                        Some("NextSpikeCovered") => {
                            coverage.lock().unwrap().push(d.value().unwrap())
                        }
                        Some("EventsSkipped") => skipped.lock().unwrap().push(d.value().unwrap()),
                        other => panic!("unexpected metric {other:?}"),
                    }
                }
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
        // The ALB reservation is off in these tests' configuration: no call expected.
        elb: mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            &Vec::<aws_smithy_mocks::Rule>::new()
        ),
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
