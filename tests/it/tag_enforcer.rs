//! The run-time tag enforcer: ARN mapping on real physical-id shapes, and the enforcement run
//! against mocked SDK clients (batches of 20, pagination, throttling, partial failures,
//! untaggable types), and as the `Custom::TagPolicy` answer through a local ResponseURL server.

use std::sync::{Arc, Mutex};

use aws_sdk_applicationautoscaling as aas;
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudwatch as cw;
use aws_sdk_ecs as ecs;
use aws_sdk_resourcegroupstagging as rgt;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use orderbroker::cfn::custom_resource::handle;
use orderbroker::tagging::aws::{
    enforce, handle_tag_policy, parse_properties, EnforcerClients, EnforcerConfig,
};
use orderbroker::tagging::enforcer::{target, ArnContext, StackResource, Target};

const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-2:111122223333:stack/orderbroker/4d3e1c20-cb0f-11f0-9c7e-0a1b2c3d4e5f";

fn ctx() -> ArnContext {
    let mut c = ArnContext::from_stack_id(STACK_ID).unwrap();
    c.codedeploy_application = Some("orderbroker-CodeDeployApplication-Xy12".into());
    c
}

fn res(t: &str, id: &str) -> StackResource {
    StackResource {
        logical_id: "X".into(),
        resource_type: t.into(),
        physical_id: id.into(),
    }
}

#[test]
fn physical_ids_map_to_the_arns_the_tagging_apis_take() {
    let c = ctx();
    let arn = |t: &str, id: &str| match target(&res(t, id), &c) {
        Target::Arn(a) => a,
        other => panic!("{t}: {other:?}"),
    };
    assert_eq!(
        arn("AWS::ECS::Cluster", "ob-Cluster-1"),
        "arn:aws:ecs:us-east-2:111122223333:cluster/ob-Cluster-1"
    );
    assert_eq!(
        arn(
            "AWS::SQS::Queue",
            "https://sqs.us-east-2.amazonaws.com/111122223333/ob-WarmupDeadLetterQueue-9"
        ),
        "arn:aws:sqs:us-east-2:111122223333:ob-WarmupDeadLetterQueue-9"
    );
    assert_eq!(
        arn("AWS::SSM::Parameter", "/orderbroker/warmup/overrides"),
        "arn:aws:ssm:us-east-2:111122223333:parameter/orderbroker/warmup/overrides"
    );
    assert_eq!(
        arn("AWS::Logs::LogGroup", "ob-lg"),
        "arn:aws:logs:us-east-2:111122223333:log-group:ob-lg"
    );
    assert_eq!(
        arn("AWS::IAM::Role", "ob-TaskRole-7"),
        "arn:aws:iam::111122223333:role/ob-TaskRole-7"
    );
    assert_eq!(
        arn("AWS::S3::Bucket", "ob-accesslogs"),
        "arn:aws:s3:::ob-accesslogs"
    );
    assert_eq!(
        arn("AWS::CodeDeploy::DeploymentGroup", "ob-DeploymentGroup-3"),
        "arn:aws:codedeploy:us-east-2:111122223333:deploymentgroup:orderbroker-CodeDeployApplication-Xy12/ob-DeploymentGroup-3"
    );
    assert_eq!(
        arn("AWS::CloudWatch::Dashboard", "orderbroker-orderbroker"),
        "arn:aws:cloudwatch::111122223333:dashboard/orderbroker-orderbroker"
    );
    let svc = "arn:aws:ecs:us-east-2:111122223333:service/ob-Cluster-1/ob-Service-2";
    assert_eq!(arn("AWS::ECS::Service", svc), svc);
    // A scalable target is resolved through Application Auto Scaling by its three-part id.
    assert_eq!(
        target(
            &res(
                "AWS::ApplicationAutoScaling::ScalableTarget",
                "service/ob-Cluster-1/ob-Service-2|ecs:service:DesiredCount|ecs"
            ),
            &c
        ),
        Target::ScalableTarget {
            namespace: "ecs".into(),
            resource_id: "service/ob-Cluster-1/ob-Service-2".into(),
            dimension: "ecs:service:DesiredCount".into(),
        }
    );
    for t in [
        "AWS::ECS::TaskSet",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::Scheduler::Schedule",
        "Custom::TagPolicy",
    ] {
        assert!(
            matches!(target(&res(t, "x"), &c), Target::Untaggable(_)),
            "{t}"
        );
    }
    assert!(matches!(
        target(
            &res(
                "AWS::ECS::TaskSet",
                "arn:aws:ecs:us-east-2:111122223333:task-set/c/s/ecs-svc/1"
            ),
            &c
        ),
        Target::Untaggable(_)
    ));
}

fn cfg() -> EnforcerConfig {
    EnforcerConfig::from_env(|k| {
        Some(
            match k {
                "STACK_ID" => STACK_ID,
                "STACK_NAME" => "orderbroker",
                "COST_CENTER" => "TRD-4410",
                "CLUSTER_NAME" => "ob-Cluster-1",
                _ => return None,
            }
            .to_string(),
        )
    })
    .unwrap()
}

fn log_group(i: usize) -> String {
    format!("arn:aws:logs:us-east-2:111122223333:log-group:ob-lg-{i:02}")
}

fn summary(t: &str, id: &str) -> cfn::types::StackResourceSummary {
    cfn::types::StackResourceSummary::builder()
        .logical_resource_id(format!("L{id}"))
        .physical_resource_id(id)
        .resource_type(t)
        .resource_status(cfn::types::ResourceStatus::CreateComplete)
        .last_updated_timestamp(aws_smithy_types::DateTime::from_secs(0))
        .build()
}

struct Calls {
    tag_batches: Arc<Mutex<Vec<Vec<String>>>>,
}

/// 49 log groups (5 of them already compliant) + 1 task = 45 to fix; 3 untaggable resources.
fn clients(
    throttle_first: bool,
    fail_one: bool,
) -> (EnforcerClients, Calls, aws_smithy_mocks::Rule) {
    let page1: Vec<_> = (0..25)
        .map(|i| summary("AWS::Logs::LogGroup", &format!("ob-lg-{i:02}")))
        .collect();
    let mut page2: Vec<_> = (25..49)
        .map(|i| summary("AWS::Logs::LogGroup", &format!("ob-lg-{i:02}")))
        .collect();
    page2.push(summary(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "arn-less-policy",
    ));
    page2.push(summary(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "service/c/s|ecs:service:DesiredCount|ecs",
    ));
    page2.push(summary("Custom::TagPolicy", "tag-policy:TagPolicy"));
    let cfn_rules = vec![
        mock!(cfn::Client::list_stack_resources)
            .match_requests(|r| r.stack_name() == Some(STACK_ID) && r.next_token().is_none())
            .then_output(move || {
                cfn::operation::list_stack_resources::ListStackResourcesOutput::builder()
                    .set_stack_resource_summaries(Some(page1.clone()))
                    .next_token("page-2")
                    .build()
            }),
        mock!(cfn::Client::list_stack_resources)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(move || {
                cfn::operation::list_stack_resources::ListStackResourcesOutput::builder()
                    .set_stack_resource_summaries(Some(page2.clone()))
                    .build()
            }),
    ];
    let ecs_rules = vec![mock!(ecs::Client::list_tasks)
        .match_requests(|r| r.cluster() == Some("ob-Cluster-1"))
        .then_output(|| {
            ecs::operation::list_tasks::ListTasksOutput::builder()
                .task_arns("arn:aws:ecs:us-east-2:111122223333:task/ob-Cluster-1/abc")
                .build()
        })];
    let tag = |k: &str, v: &str| rgt::types::Tag::builder().key(k).value(v).build().unwrap();
    let compliant: Vec<_> = (0..5)
        .map(|i| {
            rgt::types::ResourceTagMapping::builder()
                .resource_arn(log_group(i))
                .tags(tag("CostCenter", "TRD-4410"))
                .tags(tag("Project", "TradingPlatform"))
                .tags(tag("Service", "OrderBroker"))
                .build()
        })
        .collect();
    // One resource carries a wrong Project value: it needs fixing too.
    let wrong = rgt::types::ResourceTagMapping::builder()
        .resource_arn(log_group(5))
        .tags(tag("Project", "Legacy"))
        .build();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let seen = batches.clone();
    let tag_resources = {
        let b = mock!(rgt::Client::tag_resources).match_requests(|r| {
            r.tags().is_some_and(|t| {
                t.get("CostCenter").map(String::as_str) == Some("TRD-4410")
                    && t.get("Project").map(String::as_str) == Some("TradingPlatform")
                    && t.get("Service").map(String::as_str) == Some("OrderBroker")
                    && t.len() == 3
            })
        });
        let ok = move |r: &rgt::operation::tag_resources::TagResourcesInput| {
            let arns = r.resource_arn_list().to_vec();
            assert!(!arns.is_empty() && arns.len() <= 20);
            seen.lock().unwrap().push(arns.clone());
            let mut out = rgt::operation::tag_resources::TagResourcesOutput::builder();
            if fail_one && arns.contains(&log_group(7)) {
                out = out.failed_resources_map(
                    log_group(7),
                    rgt::types::FailureInfo::builder()
                        .status_code(403)
                        .error_code(rgt::types::ErrorCode::InvalidParameterException)
                        .error_message("not authorised")
                        .build(),
                );
            }
            out.build()
        };
        if throttle_first {
            b.sequence()
                .error(|| {
                    rgt::operation::tag_resources::TagResourcesError::ThrottledException(
                        rgt::types::error::ThrottledException::builder()
                            .message("Rate exceeded")
                            .meta(
                                aws_smithy_types::error::ErrorMetadata::builder()
                                    .code("ThrottledException")
                                    .build(),
                            )
                            .build(),
                    )
                })
                .times(1)
                .output(|| rgt::operation::tag_resources::TagResourcesOutput::builder().build())
                .repeatedly()
                .build()
        } else {
            b.then_compute_output(ok)
        }
    };
    let rgt_rules = [
        mock!(rgt::Client::get_resources)
            .match_requests(|r| r.pagination_token().is_none())
            .then_output(move || {
                rgt::operation::get_resources::GetResourcesOutput::builder()
                    .set_resource_tag_mapping_list(Some(compliant.clone()))
                    .pagination_token("more")
                    .build()
            }),
        mock!(rgt::Client::get_resources)
            .match_requests(|r| r.pagination_token() == Some("more"))
            .then_output(move || {
                rgt::operation::get_resources::GetResourcesOutput::builder()
                    .resource_tag_mapping_list(wrong.clone())
                    .build()
            }),
    ];
    let tag_rule = tag_resources;
    let mut all_rgt: Vec<&aws_smithy_mocks::Rule> = rgt_rules.iter().collect();
    all_rgt.push(&tag_rule);
    let cw_rules = vec![mock!(cw::Client::put_metric_data)
        .match_requests(|r| r.namespace() == Some("OrderBroker/Tagging"))
        .then_output(|| cw::operation::put_metric_data::PutMetricDataOutput::builder().build())];
    // The scalable target: its ARN from DescribeScalableTargets, no tags yet, tagged once.
    let st_arn = "arn:aws:application-autoscaling:us-east-2:111122223333:scalable-target/0ec5a5d1e0a24b7c9bb2c8b3d2a1f0e9";
    let aas_rules = vec![
        mock!(aas::Client::describe_scalable_targets)
            .match_requests(|r| r.resource_ids() == ["service/c/s".to_string()])
            .then_output(move || {
                aas::operation::describe_scalable_targets::DescribeScalableTargetsOutput::builder()
                    .scalable_targets(
                        aas::types::ScalableTarget::builder()
                            .service_namespace(aas::types::ServiceNamespace::Ecs)
                            .resource_id("service/c/s")
                            .scalable_dimension(aas::types::ScalableDimension::EcsServiceDesiredCount)
                            .min_capacity(3)
                            .max_capacity(30)
                            .role_arn("arn:aws:iam::111122223333:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService")
                            .creation_time(aws_smithy_types::DateTime::from_secs(1_764_000_000))
                            .scalable_target_arn(st_arn)
                            .build()
                            .unwrap(),
                    )
                    .build()
            }),
        mock!(aas::Client::list_tags_for_resource)
            .match_requests(move |r| r.resource_arn() == Some(st_arn))
            .then_output(|| {
                aas::operation::list_tags_for_resource::ListTagsForResourceOutput::builder().build()
            }),
        mock!(aas::Client::tag_resource)
            .match_requests(move |r| {
                r.resource_arn() == Some(st_arn)
                    && r.tags().is_some_and(|t| {
                        t.len() == 3 && t.get("Project").map(String::as_str) == Some("TradingPlatform")
                    })
            })
            .then_output(|| aas::operation::tag_resource::TagResourceOutput::builder().build()),
    ];
    let clients = EnforcerClients {
        cloudformation: mock_client!(cfn, RuleMode::MatchAny, &cfn_rules),
        autoscaling: mock_client!(aas, RuleMode::MatchAny, &aas_rules),
        tagging: mock_client!(rgt, RuleMode::MatchAny, all_rgt, |c| c
            .retry_config(orderbroker::tagging::aws::tagging_retry())),
        ecs: mock_client!(ecs, RuleMode::MatchAny, &ecs_rules),
        cloudwatch: mock_client!(cw, RuleMode::MatchAny, &cw_rules),
    };
    (
        clients,
        Calls {
            tag_batches: batches,
        },
        tag_rule,
    )
}

#[tokio::test]
async fn forty_five_untagged_resources_take_three_tag_calls() {
    let (c, calls, rule) = clients(false, false);
    let r = enforce(&c, &cfg(), "TRD-4410").await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // 45 through the tagging API + the scalable target through Application Auto Scaling.
    assert_eq!(
        (r.compliant, r.fixed, r.failed, r.untaggable),
        (5, 46, 0, 2)
    );
    assert_eq!(rule.num_calls(), 3);
    let batches = calls.tag_batches.lock().unwrap().clone();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![20, 20, 5]
    );
    let all: Vec<String> = batches.concat();
    assert!(
        all.contains(&"arn:aws:ecs:us-east-2:111122223333:task/ob-Cluster-1/abc".to_string()),
        "run-time tasks are in the inventory"
    );
    assert!(all.contains(&log_group(5)), "a wrong value is corrected");
    assert!(
        !all.contains(&log_group(0)),
        "compliant resources are left alone"
    );
    assert_eq!(r.non_compliant(), 0);
}

#[tokio::test]
async fn partial_failures_are_reported_not_thrown() {
    let (c, _, _) = clients(false, true);
    let r = enforce(&c, &cfg(), "TRD-4410").await;
    assert_eq!((r.fixed, r.failed), (45, 1));
    assert!(r.failures[0].starts_with(&log_group(7)), "{:?}", r.failures);
    assert!(r.failures[0].contains("not authorised"));
    assert_eq!(r.non_compliant(), 1);
}

#[tokio::test]
async fn throttling_is_retried() {
    let (c, _, rule) = clients(true, false);
    let r = enforce(&c, &cfg(), "TRD-4410").await;
    assert_eq!(r.failed, 0, "{:?}", r.failures);
    assert_eq!(r.fixed, 46);
    assert_eq!(
        rule.num_calls(),
        4,
        "one throttled call, then the three batches"
    );
}

#[test]
fn malformed_properties_are_a_template_error() {
    let ok = parse_properties(
        &serde_json::json!({"ServiceToken": "arn", "CostCenter": "TRD-4410", "DeployNonce": "1"}),
    )
    .unwrap();
    assert_eq!(ok.cost_center, "TRD-4410");
    for bad in [
        serde_json::json!({"CostCenter": ""}),
        serde_json::json!({"DeployNonce": "1"}),
        serde_json::json!({"CostCenter": 12}),
    ] {
        assert!(parse_properties(&bad).is_err(), "{bad}");
    }
}

/// Answers one Custom::TagPolicy event through a local ResponseURL server; returns the body.
async fn answer(
    event_file: &str,
    clients: EnforcerClients,
    edit: impl Fn(&mut serde_json::Value),
) -> serde_json::Value {
    let ok: crate::support::Behaviour =
        Arc::new(|_: &str, _: usize| (200u16, String::new(), std::time::Duration::ZERO));
    let server = crate::support::serve(ok).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(event_file);
    let mut ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    ev["ResponseURL"] = serde_json::Value::from(format!("{}/r?X-Amz-Signature=s", server.url));
    ev["StackId"] = serde_json::Value::from(STACK_ID);
    edit(&mut ev);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    handle(
        ev,
        &reqwest::Client::new(),
        deadline,
        std::time::Duration::from_secs(5),
        move |req, _| handle_tag_policy(clients, Ok(cfg()), req),
    )
    .await
    .unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "exactly one answer");
    serde_json::from_str(&seen[0].body).unwrap()
}

#[tokio::test]
async fn the_tag_policy_answers_success_with_counts_even_when_tagging_fails() {
    let (c, _, _) = clients(false, true);
    let a = answer("cfn-create.json", c, |_| {}).await;
    assert_eq!(a["Status"], "SUCCESS");
    assert_eq!(a["PhysicalResourceId"], "tag-policy:TagPolicy");
    assert_eq!(
        (
            &a["Data"]["Compliant"],
            &a["Data"]["Fixed"],
            &a["Data"]["Failed"],
            &a["Data"]["Untaggable"]
        ),
        (
            &serde_json::json!(5),
            &serde_json::json!(45),
            &serde_json::json!(1),
            &serde_json::json!(2)
        )
    );
    assert!(a["Data"]["FirstFailures"]
        .as_str()
        .unwrap()
        .contains("not authorised"));
}

#[tokio::test]
async fn the_tag_policy_answers_success_when_aws_is_unreachable() {
    let failing_cfn = vec![mock!(cfn::Client::list_stack_resources).then_error(|| {
        cfn::operation::list_stack_resources::ListStackResourcesError::unhandled("connection reset")
    })];
    let (mut c, _, _) = clients(false, false);
    c.cloudformation = mock_client!(cfn, RuleMode::MatchAny, &failing_cfn);
    let a = answer("cfn-update.json", c, |_| {}).await;
    assert_eq!(a["Status"], "SUCCESS");
    assert_eq!(a["PhysicalResourceId"], "tag-policy:TagPolicy");
    assert!(
        a["Data"]["Errors"]
            .as_str()
            .unwrap()
            .contains("ListStackResources"),
        "{a}"
    );
}

#[tokio::test]
async fn malformed_tag_policy_properties_fail_the_deploy() {
    let (c, _, rule) = clients(false, false);
    let a = answer("cfn-create.json", c, |ev| {
        ev["ResourceProperties"]["CostCenter"] = "".into()
    })
    .await;
    assert_eq!(a["Status"], "FAILED");
    assert!(a["Reason"]
        .as_str()
        .unwrap()
        .contains("CostCenter is empty"));
    assert_eq!(rule.num_calls(), 0, "nothing tagged");
}

#[tokio::test]
async fn deleting_the_tag_policy_touches_nothing() {
    let (c, _, rule) = clients(false, false);
    let a = answer("cfn-delete.json", c, |_| {}).await;
    assert_eq!(a["Status"], "SUCCESS");
    assert_eq!(a["PhysicalResourceId"], "tag-policy:orderbroker");
    assert_eq!(rule.num_calls(), 0);
}
