//! `orderbroker deploy` and `rollback` against mocked SDK clients (aws-smithy-mocks): the
//! pre-flight refusals write nothing; a good run registers exactly the derived revision, creates
//! one deployment with the full AppSpec, and follows it by id (and its rollback by id).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudwatch as cw;
use aws_sdk_codedeploy as cd;
use aws_sdk_ecr as ecr;
use aws_sdk_ecs as ecs;
use aws_sdk_servicequotas as sq;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use orderbroker::aws::stack::Stack;
use orderbroker::calendar::{local_instant, Calendar};
use orderbroker::deploy::aws::{deploy, rollback, Clients, DeployRequest, Lines};
use orderbroker::deploy::{DeployError, Outcome};
use orderbroker::warmup::Settings;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ny(date: &str, hm: &str) -> DateTime<Utc> {
    local_instant(
        NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        NaiveTime::parse_from_str(hm, "%H:%M").unwrap(),
    )
    .unwrap()
}

/// The deployed stack, as `aws cloudformation describe-stacks` prints it.
fn stack() -> Stack {
    let text =
        std::fs::read_to_string(root().join("events/describe-stacks-deployed.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let params = v["Stacks"][0]["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["ParameterKey"].as_str().unwrap().to_string(),
                p["ParameterValue"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Stack {
        name: "orderbroker".into(),
        status: "UPDATE_COMPLETE".into(),
        outputs: orderbroker::deploy::appspec::parse_outputs(&text).unwrap(),
        parameters: params,
    }
}

const IMAGE: &str = "111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.2";
const CURRENT_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition-Xy12:7";
const NEW_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition-Xy12:8";
const APP: &str = "orderbroker-CodeDeployApplication-1A2B3C4D5E6F";
const GROUP: &str = "orderbroker-DeploymentGroup-7G8H9I0J1K2L";
const TARGET: &str = "orderbroker-Cluster-AbCdEf123456:orderbroker-Service-GhIjKl789012";

fn index_manifest(archs: &[&str]) -> String {
    let mut m: Vec<serde_json::Value> = archs
        .iter()
        .map(|a| {
            serde_json::json!({"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{}", "1".repeat(64)), "size": 1000,
                "platform": {"architecture": a, "os": "linux"}})
        })
        .collect();
    // buildx attestation manifest: not a platform.
    m.push(
        serde_json::json!({"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "2".repeat(64)), "size": 800,
        "platform": {"architecture": "unknown", "os": "unknown"}}),
    );
    serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":m})
        .to_string()
}

/// The current revision, as DescribeTaskDefinition returns it.
fn current_task_definition() -> ecs::types::TaskDefinition {
    use ecs::types::*;
    TaskDefinition::builder()
        .task_definition_arn(CURRENT_TD)
        .family("orderbroker-TaskDefinition-Xy12")
        .revision(7)
        .task_role_arn("arn:aws:iam::111122223333:role/orderbroker-TaskRole-1")
        .execution_role_arn("arn:aws:iam::111122223333:role/orderbroker-TaskExecutionRole-1")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("2048")
        .memory("4096")
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .volumes(Volume::builder().name("tmp").build())
        .container_definitions(
            ContainerDefinition::builder()
                .name("orderbroker")
                .image("111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.1")
                .essential(true)
                .readonly_root_filesystem(true)
                .stop_timeout(120)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .environment(
                    KeyValuePair::builder()
                        .name("METRICS_STACK")
                        .value("orderbroker")
                        .build(),
                )
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("log-router")
                .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
                .essential(false)
                .build(),
        )
        .build()
}

/// How the mocked account behaves.
#[derive(Clone)]
struct World {
    manifest: (String, String),
    active: Vec<String>,
    desired: i32,
    quota: f64,
    usage: Option<f64>,
    /// Status sequence of GetDeployment per deployment id (the last repeats).
    statuses: HashMap<String, Vec<&'static str>>,
    /// The rollback deployment id CodeDeploy reports for a deployment, once it ended.
    rollback_of: HashMap<String, String>,
    failed_event: Option<&'static str>,
    group_alarms: Vec<&'static str>,
    firing: Vec<&'static str>,
    /// Task definition of the PRIMARY task set, per DescribeServices call (the last repeats).
    primary: Vec<&'static str>,
    config_url: Option<String>,
}

impl Default for World {
    fn default() -> Self {
        World {
            manifest: (
                "application/vnd.oci.image.index.v1+json".into(),
                index_manifest(&["amd64", "arm64"]),
            ),
            active: Vec::new(),
            desired: 6,
            quota: 400.0,
            usage: Some(120.0),
            statuses: HashMap::from([(
                "d-NEW".to_string(),
                vec!["Created", "InProgress", "InProgress", "Succeeded"],
            )]),
            rollback_of: HashMap::new(),
            failed_event: None,
            group_alarms: vec!["ob-5xx", "ob-p99", "ob-heap"],
            firing: Vec::new(),
            primary: vec![CURRENT_TD],
            config_url: None,
        }
    }
}

type Log<T> = Arc<Mutex<Vec<T>>>;

#[derive(Default, Clone)]
struct Calls {
    registered: Log<ecs::operation::register_task_definition::RegisterTaskDefinitionInput>,
    created: Log<cd::operation::create_deployment::CreateDeploymentInput>,
    stopped: Log<cd::operation::stop_deployment::StopDeploymentInput>,
    polled: Log<String>,
}

fn clients(w: World, calls: &Calls) -> Clients {
    let ecr_rules = {
        let (media, body) = w.manifest.clone();
        let url = w.config_url.clone();
        vec![
            mock!(ecr::Client::batch_get_image)
                .match_requests(|r| {
                    r.repository_name() == Some("orderbroker")
                        && r.registry_id() == Some("111122223333")
                        && r.accepted_media_types()
                            .contains(&"application/vnd.oci.image.index.v1+json".to_string())
                })
                .then_compute_output(move |r| {
                    let tag = r.image_ids()[0].image_tag().unwrap_or_default().to_string();
                    let b = ecr::operation::batch_get_image::BatchGetImageOutput::builder();
                    if tag == "missing" {
                        return b
                            .failures(
                                ecr::types::ImageFailure::builder()
                                    .failure_code(ecr::types::ImageFailureCode::ImageNotFound)
                                    .failure_reason("Requested image not found")
                                    .build(),
                            )
                            .build();
                    }
                    b.images(
                        ecr::types::Image::builder()
                            .repository_name("orderbroker")
                            .image_manifest(body.clone())
                            .image_manifest_media_type(media.clone())
                            .build(),
                    )
                    .build()
                }),
            mock!(ecr::Client::get_download_url_for_layer).then_compute_output(move |_| {
                ecr::operation::get_download_url_for_layer::GetDownloadUrlForLayerOutput::builder()
                    .set_download_url(url.clone())
                    .build()
            }),
        ]
    };

    let mut cd_rules: Vec<Rule> = Vec::new();
    let active = w.active.clone();
    cd_rules.push(
        mock!(cd::Client::list_deployments)
            .match_requests(|r| {
                r.application_name() == Some(APP)
                    && r.deployment_group_name() == Some(GROUP)
                    && r.include_only_statuses().len() == 5
            })
            .then_compute_output(move |_| {
                cd::operation::list_deployments::ListDeploymentsOutput::builder()
                    .set_deployments(Some(active.clone()))
                    .build()
            }),
    );
    let created = calls.created.clone();
    cd_rules.push(
        mock!(cd::Client::create_deployment).then_compute_output(move |r| {
            created.lock().unwrap().push(r.clone());
            cd::operation::create_deployment::CreateDeploymentOutput::builder()
                .deployment_id("d-NEW")
                .build()
        }),
    );
    let stopped = calls.stopped.clone();
    cd_rules.push(
        mock!(cd::Client::stop_deployment).then_compute_output(move |r| {
            stopped.lock().unwrap().push(r.clone());
            cd::operation::stop_deployment::StopDeploymentOutput::builder()
                .status(cd::types::StopStatus::Pending)
                .status_message("Stop is pending")
                .build()
        }),
    );
    let counters: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let statuses = w.statuses.clone();
    let rollback_of = w.rollback_of.clone();
    let polled = calls.polled.clone();
    let failed_event = w.failed_event;
    cd_rules.push(
        mock!(cd::Client::get_deployment).then_compute_output(move |r| {
            let id = r.deployment_id().unwrap().to_string();
            polled.lock().unwrap().push(id.clone());
            let seq = statuses.get(&id).cloned().unwrap_or(vec!["InProgress"]);
            let mut c = counters.lock().unwrap();
            let n = c.entry(id.clone()).or_insert(0);
            let status = seq[(*n).min(seq.len() - 1)];
            *n += 1;
            let mut info = cd::types::DeploymentInfo::builder()
                .deployment_id(&id)
                .status(cd::types::DeploymentStatus::from(status))
                .auto_rollback_configuration(
                    cd::types::AutoRollbackConfiguration::builder()
                        .enabled(true)
                        .build(),
                );
            if status == "Failed" || status == "Stopped" {
                if let Some(e) = failed_event {
                    info = info.error_information(
                        cd::types::ErrorInformation::builder()
                            .code(cd::types::ErrorCode::HookExecutionFailure)
                            .message(format!(
                                "lifecycle event {e} hook failed: 3 synthetic orders answered 500"
                            ))
                            .build(),
                    );
                }
                if let Some(rb) = rollback_of.get(&id) {
                    info = info.rollback_info(
                        cd::types::RollbackInfo::builder()
                            .rollback_deployment_id(rb)
                            .rollback_message(format!(
                                "Deployment {id} failed; rolled back by {rb}"
                            ))
                            .build(),
                    );
                }
            }
            cd::operation::get_deployment::GetDeploymentOutput::builder()
                .deployment_info(info.build())
                .build()
        }),
    );
    cd_rules.push(
        mock!(cd::Client::get_deployment_target)
            .match_requests(|r| r.target_id() == Some(TARGET))
            .then_compute_output(move |r| {
                let failed = failed_event;
                let id = r.deployment_id().unwrap_or_default();
                let ev = |n: &str, s: &str| {
                    cd::types::LifecycleEvent::builder()
                        .lifecycle_event_name(n)
                        .status(cd::types::LifecycleEventStatus::from(s))
                        .build()
                };
                let events = vec![
                    ev("BeforeInstall", "Succeeded"),
                    ev("Install", "Succeeded"),
                    ev(
                        "AfterAllowTestTraffic",
                        if failed.is_some() && id == "d-NEW" {
                            "Failed"
                        } else {
                            "Succeeded"
                        },
                    ),
                    ev("AllowTraffic", "Pending"),
                ];
                let set = |label: &str, id: &str, weight: f64| {
                    cd::types::EcsTaskSet::builder()
                        .identifer(id)
                        .task_set_label(cd::types::TargetLabel::from(label))
                        .traffic_weight(weight)
                        .desired_count(6)
                        .running_count(6)
                        .target_group(
                            cd::types::TargetGroupInfo::builder()
                                .name(format!("orderb-{label}"))
                                .build(),
                        )
                        .build()
                };
                cd::operation::get_deployment_target::GetDeploymentTargetOutput::builder()
                    .deployment_target(
                        cd::types::DeploymentTarget::builder()
                            .ecs_target(
                                cd::types::EcsTarget::builder()
                                    .target_id(TARGET)
                                    .set_lifecycle_events(Some(events))
                                    .task_sets_info(set("Blue", "ecs-svc/1111", 100.0))
                                    .task_sets_info(set("Green", "ecs-svc/2222", 0.0))
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
    );
    let alarms = w.group_alarms.clone();
    cd_rules.push(
        mock!(cd::Client::get_deployment_group).then_compute_output(move |_| {
            cd::operation::get_deployment_group::GetDeploymentGroupOutput::builder()
                .deployment_group_info(
                    cd::types::DeploymentGroupInfo::builder()
                        .alarm_configuration(
                            cd::types::AlarmConfiguration::builder()
                                .enabled(true)
                                .set_alarms(Some(
                                    alarms
                                        .iter()
                                        .map(|a| cd::types::Alarm::builder().name(*a).build())
                                        .collect(),
                                ))
                                .build(),
                        )
                        .build(),
                )
                .build()
        }),
    );

    let desired = w.desired;
    let primary = w.primary.clone();
    let svc_calls: Arc<Mutex<usize>> = Arc::default();
    let registered = calls.registered.clone();
    let ecs_rules = vec![
        mock!(ecs::Client::describe_services)
            .match_requests(|r| r.cluster() == Some("orderbroker-Cluster-AbCdEf123456"))
            .then_compute_output(move |_| {
                let mut n = svc_calls.lock().unwrap();
                let td = primary[(*n).min(primary.len() - 1)];
                *n += 1;
                ecs::operation::describe_services::DescribeServicesOutput::builder()
                    .services(
                        ecs::types::Service::builder()
                            .service_name("orderbroker-Service-GhIjKl789012")
                            .desired_count(desired)
                            .running_count(desired)
                            .task_definition(td)
                            .task_sets(
                                ecs::types::TaskSet::builder()
                                    .id("ecs-svc/1111")
                                    .status("PRIMARY")
                                    .task_definition(td)
                                    .load_balancers(
                                        ecs::types::LoadBalancer::builder()
                                            .target_group_arn("arn:tg/blue")
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
        mock!(ecs::Client::describe_task_definition)
            .match_requests(|r| {
                r.task_definition() == Some(CURRENT_TD)
                    && r.include() == [ecs::types::TaskDefinitionField::Tags]
            })
            .then_output(|| {
                ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput::builder()
                    .task_definition(current_task_definition())
                    .tags(
                        ecs::types::Tag::builder()
                            .key("Project")
                            .value("TradingPlatform")
                            .build(),
                    )
                    .build()
            }),
        mock!(ecs::Client::register_task_definition).then_compute_output(move |r| {
            registered.lock().unwrap().push(r.clone());
            ecs::operation::register_task_definition::RegisterTaskDefinitionOutput::builder()
                .task_definition(
                    ecs::types::TaskDefinition::builder()
                        .task_definition_arn(NEW_TD)
                        .build(),
                )
                .build()
        }),
        mock!(ecs::Client::describe_task_sets)
            .match_requests(|r| r.task_sets() == ["ecs-svc/1111".to_string()])
            .then_output(|| {
                ecs::operation::describe_task_sets::DescribeTaskSetsOutput::builder()
                    .task_sets(
                        ecs::types::TaskSet::builder()
                            .id("ecs-svc/1111")
                            .task_definition(CURRENT_TD)
                            .build(),
                    )
                    .build()
            }),
    ];

    let quota = w.quota;
    let sq_rules = vec![mock!(sq::Client::get_service_quota)
        .match_requests(|r| r.service_code() == Some("fargate"))
        .then_compute_output(move |r| {
            sq::operation::get_service_quota::GetServiceQuotaOutput::builder()
                .quota(
                    sq::types::ServiceQuota::builder()
                        .set_quota_code(r.quota_code().map(str::to_string))
                        .value(quota)
                        .build(),
                )
                .build()
        })];

    let usage = w.usage;
    let firing = w.firing.clone();
    let cw_rules = vec![
        mock!(cw::Client::get_metric_data)
            .match_requests(|r| {
                let m = r.metric_data_queries()[0]
                    .metric_stat()
                    .and_then(|s| s.metric())
                    .unwrap();
                m.namespace() == Some("AWS/Usage")
                    && m.dimensions().iter().any(|d| {
                        d.name() == Some("Class") && d.value() == Some("Standard/OnDemand")
                    })
            })
            .then_compute_output(move |_| {
                let mut r = cw::types::MetricDataResult::builder().id("usage");
                if let Some(u) = usage {
                    r = r.timestamps(SmithyTime::from_secs(1_795_000_000)).values(u);
                }
                cw::operation::get_metric_data::GetMetricDataOutput::builder()
                    .metric_data_results(r.build())
                    .build()
            }),
        mock!(cw::Client::describe_alarms)
            .match_requests(|r| r.state_value() == Some(&cw::types::StateValue::Alarm))
            .then_compute_output(move |_| {
                cw::operation::describe_alarms::DescribeAlarmsOutput::builder()
                    .set_metric_alarms(Some(
                        firing
                            .iter()
                            .map(|a| cw::types::MetricAlarm::builder().alarm_name(*a).build())
                            .collect(),
                    ))
                    .build()
            }),
    ];

    let cfn_rules: Vec<Rule> = vec![
        mock!(cfn::Client::list_stack_resources)
            .match_requests(|r| r.stack_name() == Some("orderbroker"))
            .then_output(|| {
                let res = |id: &str, ty: &str, phys: &str| {
                    cfn::types::StackResourceSummary::builder()
                        .logical_resource_id(id)
                        .resource_type(ty)
                        .physical_resource_id(phys)
                        .resource_status(cfn::types::ResourceStatus::UpdateComplete)
                        .last_updated_timestamp(SmithyTime::from_secs(0))
                        .build()
                };
                cfn::operation::list_stack_resources::ListStackResourcesOutput::builder()
                    .stack_resource_summaries(res(
                        "BlueTargetGroup",
                        "AWS::ElasticLoadBalancingV2::TargetGroup",
                        "arn:tg/blue",
                    ))
                    .stack_resource_summaries(res(
                        "TaskDefinition",
                        "AWS::ECS::TaskDefinition",
                        "arn:td:1",
                    ))
                    .build()
            }),
        mock!(cfn::Client::get_template)
            .match_requests(|r| r.template_stage() == Some(&cfn::types::TemplateStage::Original))
            .then_output(|| {
                cfn::operation::get_template::GetTemplateOutput::builder()
                    .template_body("Resources:\n  X:\n    Type: AWS::SNS::Topic\n")
                    .build()
            }),
    ];
    use aws_sdk_applicationautoscaling as aas;
    let resource = "service/orderbroker-Cluster-AbCdEf123456/orderbroker-Service-GhIjKl789012";
    let scheduled = |name: &str, at: &str, min: i32| {
        aas::types::ScheduledAction::builder()
            .scheduled_action_name(name)
            .scheduled_action_arn(format!(
                "arn:aws:autoscaling:us-east-2:111122223333:scheduledAction:x:{name}"
            ))
            .service_namespace(aas::types::ServiceNamespace::Ecs)
            .schedule(format!("at({at})"))
            .timezone("America/New_York")
            .resource_id(resource)
            .scalable_target_action(
                aas::types::ScalableTargetAction::builder()
                    .min_capacity(min)
                    .build(),
            )
            .creation_time(SmithyTime::from_secs(0))
            .build()
            .unwrap()
    };
    let actions = vec![
        scheduled("warmup-2026-11-30-close-raise", "2026-11-30T15:17:00", 12),
        scheduled("someone-elses-action", "2026-11-30T10:05:00", 4),
        scheduled("warmup-2026-11-30-open-raise", "2026-11-30T09:17:00", 9),
        scheduled("warmup-2026-11-30-open-restore", "2026-11-30T10:00:00", 3),
    ];
    let aas_rules: Vec<Rule> = vec![
        mock!(aas::Client::describe_scalable_targets)
            .match_requests(move |r| r.resource_ids() == [resource.to_string()])
            .then_output(move || {
                aas::operation::describe_scalable_targets::DescribeScalableTargetsOutput::builder()
                    .scalable_targets(
                        aas::types::ScalableTarget::builder()
                            .service_namespace(aas::types::ServiceNamespace::Ecs)
                            .resource_id(resource)
                            .scalable_dimension(
                                aas::types::ScalableDimension::EcsServiceDesiredCount,
                            )
                            .min_capacity(9)
                            .max_capacity(30)
                            .role_arn("arn:aws:iam::111122223333:role/x")
                            .creation_time(SmithyTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            }),
        mock!(aas::Client::describe_scheduled_actions)
            .match_requests(move |r| r.resource_id() == Some(resource))
            .then_output(move || {
                aas::operation::describe_scheduled_actions::DescribeScheduledActionsOutput::builder(
                )
                .set_scheduled_actions(Some(actions.clone()))
                .build()
            }),
    ];
    Clients {
        cloudformation: mock_client!(cfn, RuleMode::MatchAny, &cfn_rules),
        ecr: mock_client!(ecr, RuleMode::MatchAny, &ecr_rules),
        ecs: mock_client!(ecs, RuleMode::MatchAny, &ecs_rules),
        codedeploy: mock_client!(cd, RuleMode::MatchAny, &cd_rules),
        quotas: mock_client!(sq, RuleMode::MatchAny, &sq_rules),
        cloudwatch: mock_client!(cw, RuleMode::MatchAny, &cw_rules),
        autoscaling: mock_client!(
            aws_sdk_applicationautoscaling,
            RuleMode::MatchAny,
            &aas_rules
        ),
        http: reqwest::Client::new(),
    }
}

fn request(now: DateTime<Utc>) -> DeployRequest {
    DeployRequest {
        poll: Duration::ZERO,
        timeout: Duration::from_secs(30),
        ..DeployRequest::new(IMAGE.into(), now, Calendar::new(), Settings::default())
    }
}

/// Monday 2026-11-30, 11:00 New York: a trading day, outside the spike windows.
fn eleven() -> DateTime<Utc> {
    ny("2026-11-30", "11:00")
}

async fn run(
    w: World,
    req: DeployRequest,
) -> (
    Result<orderbroker::deploy::aws::Deployed, DeployError>,
    Calls,
    Vec<String>,
) {
    let calls = Calls::default();
    let c = clients(w, &calls);
    let mut out = Lines::default();
    let r = deploy(&c, &stack(), &req, &mut out).await;
    (r, calls, out.0)
}

#[tokio::test]
async fn a_good_deployment_registers_the_derived_revision_and_follows_it_to_success() {
    let (r, calls, lines) = run(World::default(), request(eleven())).await;
    let d = r.unwrap();
    assert_eq!(d.task_definition, NEW_TD);
    assert_eq!(d.deployment_id, "d-NEW");
    assert_eq!(
        d.outcome,
        Some(Outcome::Succeeded {
            deployment_id: "d-NEW".into()
        })
    );

    // Exactly one revision, equal to the current one but for the image and the architecture.
    let reg = calls.registered.lock().unwrap();
    assert_eq!(reg.len(), 1);
    let cur = current_task_definition();
    let r = &reg[0];
    assert_eq!(r.family(), cur.family());
    assert_eq!(r.task_role_arn(), cur.task_role_arn());
    assert_eq!(r.execution_role_arn(), cur.execution_role_arn());
    assert_eq!(r.network_mode(), cur.network_mode());
    assert_eq!(r.cpu(), Some("2048"));
    assert_eq!(r.memory(), Some("4096"));
    assert_eq!(r.volumes(), cur.volumes());
    assert_eq!(r.requires_compatibilities(), cur.requires_compatibilities());
    assert_eq!(
        r.runtime_platform(),
        cur.runtime_platform(),
        "ARM64 stays ARM64"
    );
    assert_eq!(r.tags().len(), 1, "the revision keeps the tags");
    let defs = r.container_definitions();
    assert_eq!(defs.len(), 2);
    assert_eq!(defs[0].image(), Some(IMAGE));
    let mut expected = cur.container_definitions()[0].clone();
    expected.image = Some(IMAGE.into());
    assert_eq!(
        defs[0], expected,
        "only the image of the service container changed"
    );
    assert_eq!(
        defs[1],
        cur.container_definitions()[1],
        "sidecars untouched"
    );

    // One deployment, with the AppSpec naming the new revision, the strategy and the gates.
    let created = calls.created.lock().unwrap();
    assert_eq!(created.len(), 1);
    let c = &created[0];
    assert_eq!(c.application_name(), Some(APP));
    assert_eq!(c.deployment_group_name(), Some(GROUP));
    assert_eq!(
        c.deployment_config_name(),
        None,
        "the group's canary config"
    );
    assert!(c.override_alarm_configuration().is_none());
    let appspec = c
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|a| a.content())
        .unwrap();
    assert!(appspec.contains(NEW_TD));
    assert!(appspec.contains("CapacityProvider: FARGATE"));
    assert!(appspec.contains("AfterAllowTestTraffic: CodeDeployHook_orderbroker-test"));

    // Followed by id until it succeeded, with lifecycle events and traffic shown.
    let polled = calls.polled.lock().unwrap();
    assert!(polled.iter().all(|id| id == "d-NEW"));
    assert_eq!(polled.len(), 4, "Created, InProgress x2, Succeeded");
    let text = lines.join("\n");
    assert!(text.contains("pre-flight: image"), "{text}");
    assert!(text.contains("linux/arm64"), "{text}");
    assert!(
        text.contains("Fargate On-Demand vCPU: green needs 12 (6 x 2)"),
        "{text}"
    );
    assert!(
        text.contains("d-NEW: AfterAllowTestTraffic Succeeded"),
        "{text}"
    );
    assert!(
        text.contains("d-NEW: traffic Blue 100% (6/6 running, orderb-Blue)"),
        "{text}"
    );
    assert!(text.contains("d-NEW: deployment Succeeded"), "{text}");
}

#[tokio::test]
async fn a_failed_deployment_without_rollback_ends_with_the_reason() {
    let w = World {
        statuses: HashMap::from([("d-NEW".to_string(), vec!["InProgress", "Failed"])]),
        failed_event: Some("AfterAllowTestTraffic"),
        ..World::default()
    };
    let (r, _calls, _) = run(w, request(eleven())).await;
    match r.unwrap().outcome.unwrap() {
        Outcome::Failed {
            deployment_id,
            status,
            reason,
        } => {
            assert_eq!(deployment_id, "d-NEW");
            assert_eq!(status, "Failed");
            assert!(
                reason.contains("lifecycle event AfterAllowTestTraffic failed"),
                "{reason}"
            );
            assert!(
                reason.contains("3 synthetic orders answered 500"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rolled_back_deployment_is_followed_through_its_rollback_id() {
    let w = World {
        statuses: HashMap::from([
            ("d-NEW".to_string(), vec!["InProgress", "Failed"]),
            (
                "d-ROLLBACK".to_string(),
                vec!["Created", "InProgress", "Succeeded"],
            ),
        ]),
        rollback_of: HashMap::from([("d-NEW".to_string(), "d-ROLLBACK".to_string())]),
        failed_event: Some("AfterAllowTestTraffic"),
        ..World::default()
    };
    let (r, calls, lines) = run(w, request(eleven())).await;
    let outcome = r.unwrap().outcome.unwrap();
    assert!(
        !outcome.succeeded(),
        "a rollback is a failed deployment: exit 1"
    );
    match &outcome {
        Outcome::RolledBack {
            deployment_id,
            reason,
            rollback_id,
            rollback_status,
        } => {
            assert_eq!(deployment_id, "d-NEW");
            assert_eq!(rollback_id, "d-ROLLBACK");
            assert_eq!(rollback_status, "Succeeded");
            assert!(reason.contains("AfterAllowTestTraffic"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(outcome
        .describe()
        .contains("the previous version holds all traffic"));
    let polled = calls.polled.lock().unwrap();
    assert_eq!(
        polled.iter().filter(|i| *i == "d-ROLLBACK").count(),
        3,
        "the rollback is followed by its own id to the end"
    );
    let text = lines.join("\n");
    assert!(
        text.contains("following rollback deployment d-ROLLBACK"),
        "{text}"
    );
    assert!(text.contains("d-ROLLBACK: deployment Succeeded"), "{text}");
}

#[tokio::test]
async fn a_second_deployment_while_one_is_in_progress_is_refused_before_any_write() {
    let w = World {
        active: vec!["d-RUNNING".into()],
        statuses: HashMap::from([("d-RUNNING".to_string(), vec!["InProgress"])]),
        ..World::default()
    };
    let (r, calls, _) = run(w, request(eleven())).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, DeployError::InProgress { id, status, .. } if id == "d-RUNNING" && status == "InProgress")
    );
    let text = e.to_string();
    assert!(
        text.contains("orderbroker rollback --deployment d-RUNNING"),
        "{text}"
    );
    assert!(calls.registered.lock().unwrap().is_empty());
    assert!(calls.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_window_guard_refuses_near_the_open_and_the_close_unless_forced() {
    // Raise at 09:17 New York, margin 20 min: 08:56 is fine, 08:58 is refused; 09:45 refused;
    // 15:00 refused (close raise 15:17); 13:00 fine; 16:20 fine.
    for (hm, refused) in [
        ("08:56", false),
        ("08:58", true),
        ("09:45", true),
        ("13:00", false),
        ("15:00", true),
        ("16:20", false),
    ] {
        let (r, calls, _) = run(World::default(), request(ny("2026-11-30", hm))).await;
        match (r, refused) {
            (Err(DeployError::SpikeWindow { spike, .. }), true) => {
                assert!(spike == "open" || spike == "close");
                assert!(calls.created.lock().unwrap().is_empty(), "{hm}");
            }
            (Ok(_), false) => {}
            (other, _) => panic!("{hm}: {other:?}"),
        }
    }
    // The day after Thanksgiving closes at 13:00: its close window is 12:17-13:15.
    let (r, _, _) = run(World::default(), request(ny("2026-11-27", "12:30"))).await;
    assert!(matches!(r, Err(DeployError::SpikeWindow { .. })), "{r:?}");
    // A holiday has no windows.
    let (r, _, _) = run(World::default(), request(ny("2026-11-26", "09:30"))).await;
    assert!(r.is_ok(), "{r:?}");
    // --force deploys, saying so.
    let mut req = request(ny("2026-11-30", "09:45"));
    req.force = true;
    let (r, calls, lines) = run(World::default(), req).await;
    assert!(r.is_ok());
    assert_eq!(calls.created.lock().unwrap().len(), 1);
    assert!(lines
        .iter()
        .any(|l| l.contains("--force: deploying despite")));
}

#[tokio::test]
async fn an_image_without_the_platform_is_refused_before_any_write() {
    let w = World {
        manifest: (
            "application/vnd.oci.image.index.v1+json".into(),
            index_manifest(&["amd64"]),
        ),
        ..World::default()
    };
    let (r, calls, _) = run(w.clone(), request(eleven())).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, DeployError::WrongPlatform { wanted, has, .. } if wanted == "arm64" && has == "linux/amd64"),
        "{e}"
    );
    assert!(calls.registered.lock().unwrap().is_empty());
    // The same image is fine for X86_64 (the stack's strategy has no Spot share).
    let mut req = request(eleven());
    req.arch = Some("X86_64".into());
    let (r, calls, _) = run(w, req).await;
    r.unwrap();
    let platform = calls.registered.lock().unwrap()[0]
        .runtime_platform()
        .cloned()
        .unwrap();
    assert_eq!(
        platform.cpu_architecture(),
        Some(&ecs::types::CpuArchitecture::X8664)
    );
    // A tag that does not exist.
    let mut req = request(eleven());
    req.image = IMAGE.replace("1.4.2", "missing");
    let (r, _, _) = run(World::default(), req).await;
    assert!(matches!(r, Err(DeployError::ImageNotFound { .. })), "{r:?}");
    // Not ECR.
    let mut req = request(eleven());
    req.image = "docker.io/library/orderbroker:1".into();
    let (r, _, _) = run(World::default(), req).await;
    assert!(matches!(r, Err(DeployError::NotEcrImage(_))), "{r:?}");
}

#[tokio::test]
async fn a_single_platform_image_is_checked_through_its_config_blob() {
    use crate::support::{serve, Behaviour};
    for (arch, ok) in [("arm64", true), ("amd64", false)] {
        let body = format!(r#"{{"architecture":"{arch}","os":"linux","config":{{}}}}"#);
        let b: Behaviour = Arc::new(move |_, _| (200, body.clone(), Duration::ZERO));
        let server = serve(b).await;
        let manifest = serde_json::json!({"schemaVersion":2,
            "mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,
                "digest":format!("sha256:{}", "3".repeat(64))},
            "layers":[]})
        .to_string();
        let w = World {
            manifest: (
                "application/vnd.docker.distribution.manifest.v2+json".into(),
                manifest,
            ),
            config_url: Some(format!("{}/blob?X-Amz-Signature=secret", server.url)),
            ..World::default()
        };
        let (r, _, _) = run(w, request(eleven())).await;
        match (r, ok) {
            (Ok(_), true) => {}
            (Err(e @ DeployError::WrongPlatform { .. }), false) => {
                assert!(!e.to_string().contains("secret"), "never the presigned URL");
            }
            (other, _) => panic!("{arch}: {other:?}"),
        }
        assert_eq!(server.seen.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn the_quota_check_refuses_a_green_task_set_that_does_not_fit() {
    // desired 6 x 2 vCPU = 12 needed; quota 130 - usage 120 = 10 free.
    let w = World {
        quota: 130.0,
        ..World::default()
    };
    let (r, calls, _) = run(w.clone(), request(eleven())).await;
    match r {
        Err(DeployError::Quota {
            needed,
            headroom,
            code,
            ..
        }) => {
            assert_eq!(needed, 12.0);
            assert_eq!(headroom, 10.0);
            assert_eq!(code, "L-3032A538");
        }
        other => panic!("{other:?}"),
    }
    assert!(calls.registered.lock().unwrap().is_empty());
    // No usage datapoint: refused as unknown, not assumed zero.
    let w2 = World {
        usage: None,
        ..World::default()
    };
    let (r, _, _) = run(w2, request(eleven())).await;
    assert!(matches!(r, Err(DeployError::UsageUnknown { .. })), "{r:?}");
    // --force goes past it, saying so.
    let mut req = request(eleven());
    req.force = true;
    let (r, _, lines) = run(w, req).await;
    assert!(r.is_ok());
    assert!(lines
        .iter()
        .any(|l| l.contains("--force") && l.contains("L-3032A538")));
}

#[tokio::test]
async fn override_alarms_ignores_only_the_firing_alarms_and_says_so() {
    let w = World {
        firing: vec!["ob-5xx"],
        ..World::default()
    };
    let mut req = request(eleven());
    req.override_alarms = true;
    req.wait = false;
    let (r, calls, lines) = run(w, req).await;
    assert!(
        r.unwrap().outcome.is_none(),
        "no --wait: created, not followed"
    );
    let created = calls.created.lock().unwrap();
    let cfg = created[0].override_alarm_configuration().unwrap();
    assert!(cfg.enabled());
    let names: Vec<&str> = cfg.alarms().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["ob-p99", "ob-heap"]);
    let loud = lines
        .iter()
        .find(|l| l.starts_with("!!! --override-alarms"))
        .unwrap();
    assert!(
        loud.contains("IGNORES 1 firing") && loud.contains("ob-5xx"),
        "{loud}"
    );
    assert!(calls.polled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rollback_stops_with_automatic_rollback_and_waits_for_the_old_version() {
    let w = World {
        active: vec!["d-NEW".into()],
        statuses: HashMap::from([
            (
                "d-NEW".to_string(),
                vec!["InProgress", "InProgress", "Stopped"],
            ),
            ("d-ROLLBACK".to_string(), vec!["InProgress", "Succeeded"]),
        ]),
        rollback_of: HashMap::from([("d-NEW".to_string(), "d-ROLLBACK".to_string())]),
        // The green revision is PRIMARY until the rollback moves production back.
        primary: vec![NEW_TD, NEW_TD, CURRENT_TD],
        ..World::default()
    };
    let calls = Calls::default();
    let c = clients(w, &calls);
    let mut out = Lines::default();
    let r = rollback(
        &c,
        &stack(),
        None,
        Duration::ZERO,
        Duration::from_secs(30),
        &mut out,
    )
    .await
    .unwrap();
    let stopped = calls.stopped.lock().unwrap();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].deployment_id(), Some("d-NEW"));
    assert_eq!(stopped[0].auto_rollback_enabled(), Some(true));
    assert!(
        matches!(&r.outcome, Outcome::RolledBack { rollback_id, rollback_status, .. } if rollback_id == "d-ROLLBACK" && rollback_status == "Succeeded")
    );
    assert_eq!(r.previous_task_definition.as_deref(), Some(CURRENT_TD));
    assert_eq!(r.serving_task_definition.as_deref(), Some(CURRENT_TD));
    assert!(r.holds_all_traffic);
}

#[tokio::test]
async fn rollback_with_nothing_in_progress_says_so() {
    let calls = Calls::default();
    let c = clients(World::default(), &calls);
    let mut out = Lines::default();
    let e = rollback(
        &c,
        &stack(),
        None,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut out,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no deployment in progress"), "{e}");
    assert!(calls.stopped.lock().unwrap().is_empty());
}

#[tokio::test]
async fn status_reads_the_service_bounds_and_only_the_warm_ups_own_actions() {
    let w = World {
        active: vec!["d-NEW".into()],
        ..World::default()
    };
    let calls = Calls::default();
    let c = clients(w, &calls);
    let mut s = stack();
    s.outputs
        .insert("BlueTargetGroupArn".into(), "arn:tg/blue".into());
    let v = orderbroker::deploy::aws::status(&c, &s, ny("2026-11-30", "09:25"), "warmup")
        .await
        .unwrap();
    assert_eq!(v.deployment.as_ref().unwrap().deployment_id, "d-NEW");
    assert_eq!(v.deployment.as_ref().unwrap().task_sets.len(), 2);
    assert_eq!(
        (v.running, v.desired, v.min, v.max),
        (6, 6, Some(9), Some(30))
    );
    assert_eq!(v.task_sets[0].colour, "blue");
    assert_eq!(v.task_sets[0].status, "PRIMARY");
    let names: Vec<&str> = v.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "warmup-2026-11-30-open-raise",
            "warmup-2026-11-30-open-restore",
            "warmup-2026-11-30-close-raise"
        ],
        "own actions only, in time order"
    );
    assert_eq!(
        v.next_action.as_ref().unwrap().name,
        "warmup-2026-11-30-open-restore"
    );
    assert_eq!(
        v.next_action.as_ref().unwrap().at,
        ny("2026-11-30", "10:00")
    );
}

#[test]
fn status_shows_the_deployment_task_sets_bounds_and_the_next_warm_up_action() {
    use orderbroker::deploy::status::{
        parse_at, render_status, PlannedAction, StatusView, TaskSetState,
    };
    // at() schedules are New York wall clock: 09:17 is 14:17Z in winter, 13:17Z in summer.
    let winter = parse_at("at(2026-11-30T09:17:00)", Some("America/New_York")).unwrap();
    assert_eq!(winter, ny("2026-11-30", "09:17"));
    assert_eq!(winter.format("%H:%M").to_string(), "14:17");
    let summer = parse_at("at(2026-06-01T09:17:00)", Some("America/New_York")).unwrap();
    assert_eq!(summer.format("%H:%M").to_string(), "13:17");
    assert!(parse_at("cron(0 9 * * ? *)", None).is_none());

    let action = |name: &str, at: DateTime<Utc>, min: i32| PlannedAction {
        name: name.into(),
        at,
        min_capacity: Some(min),
        max_capacity: None,
    };
    let done = action("warmup-2026-11-30-open-raise", ny("2026-11-30", "09:17"), 9);
    let next = action(
        "warmup-2026-11-30-open-restore",
        ny("2026-11-30", "10:00"),
        3,
    );
    let v = StatusView {
        stack: "orderbroker".into(),
        deployment: None,
        running: 9,
        desired: 9,
        pending: 0,
        task_sets: vec![TaskSetState {
            colour: "green".into(),
            status: "PRIMARY".into(),
            task_definition: CURRENT_TD.into(),
            running: 9,
            desired: 9,
            target_group: "arn:tg/blue".into(),
        }],
        min: Some(9),
        max: Some(30),
        actions: vec![done, next.clone()],
        next_action: Some(next),
    };
    let text = render_status(&v, ny("2026-11-30", "09:25"));
    assert!(text.contains("deployment: none in progress"), "{text}");
    assert!(
        text.contains("running 9 / desired 9 (pending 0); min 9 max 30"),
        "{text}"
    );
    assert!(
        text.contains(&format!("green task set PRIMARY {CURRENT_TD} running 9/9")),
        "{text}"
    );
    assert!(
        text.contains("  done  Mon 2026-11-30 09:17 New York (14:17Z)  min 9"),
        "{text}"
    );
    assert!(
        text.contains("next -> Mon 2026-11-30 10:00 New York (15:00Z)  min 3"),
        "{text}"
    );
    assert!(text.contains("next: warmup-2026-11-30-open-restore at Mon 2026-11-30 10:00 New York (15:00Z) (in 35 min)"), "{text}");
}

#[tokio::test]
async fn preflight_reads_which_target_group_serves_production_and_the_deployed_template() {
    let calls = Calls::default();
    let c = clients(World::default(), &calls);
    let live = orderbroker::preflight::aws::live_state(&c, &stack())
        .await
        .unwrap();
    assert_eq!(live.production_target_group.as_deref(), Some("arn:tg/blue"));
    assert_eq!(live.service_task_definition.as_deref(), Some(CURRENT_TD));
    assert_eq!(live.physical["BlueTargetGroup"], "arn:tg/blue");
    assert_eq!(live.physical["TaskDefinition"], "arn:td:1");
    let body = orderbroker::aws::stack::deployed_template(&c.cloudformation, "orderbroker")
        .await
        .unwrap();
    assert!(orderbroker::cfn::template::Template::parse(&body)
        .unwrap()
        .resource("X")
        .is_some());
}
