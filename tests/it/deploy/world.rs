//! The mocked AWS world every deploy test runs against: ECR, ECS, CodeDeploy, Service Quotas,
//! CloudWatch, CloudFormation and Application Auto Scaling as aws-smithy-mocks rules.

use super::*;

/// How the mocked account behaves.
#[derive(Clone)]
pub(super) struct World {
    pub(super) manifest: (String, String),
    pub(super) active: Vec<String>,
    pub(super) desired: i32,
    pub(super) quota: f64,
    /// servicequotas:GetServiceQuota is denied (a missing permission).
    pub(super) quota_denied: bool,
    pub(super) usage: Option<f64>,
    /// Status sequence of GetDeployment per deployment id (the last repeats).
    pub(super) statuses: HashMap<String, Vec<&'static str>>,
    /// The rollback deployment id CodeDeploy reports for a deployment, once it ended.
    pub(super) rollback_of: HashMap<String, String>,
    pub(super) failed_event: Option<&'static str>,
    pub(super) group_alarms: Vec<&'static str>,
    pub(super) firing: Vec<&'static str>,
    /// Task definition of the PRIMARY task set, per DescribeServices call (the last repeats).
    pub(super) primary: Vec<&'static str>,
    pub(super) config_url: Option<String>,
    /// What CURRENT_TD (the PRIMARY task set's revision) describes as (default:
    /// `current_task_definition()`).
    pub(super) running_td: Option<ecs::types::TaskDefinition>,
    /// The image digest each RUNNING task of CURRENT_TD reports for the service container.
    pub(super) digests: Vec<Option<&'static str>>,
    /// The PRIMARY task set's capacity-provider base (the stack's output says 3).
    pub(super) running_base: i32,
    /// The deployed stack's processed template, parameters and physical ids, when a test
    /// plans a stack update against a real one (default: a one-topic stub and `stack()`'s).
    pub(super) deployed: Option<DeployedStack>,
}

/// What CloudFormation returns for a deployed stack (GetTemplate Processed, DescribeStacks
/// parameters, ListStackResources).
#[derive(Clone)]
pub(super) struct DeployedStack {
    pub(super) processed_template: String,
    pub(super) parameters: Vec<(String, String)>,
    pub(super) physical: Vec<(String, String)>,
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
            quota_denied: false,
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
            running_td: None,
            digests: vec![Some(DIGEST), Some(DIGEST)],
            running_base: 3,
            deployed: None,
        }
    }
}

pub(super) type Log<T> = Arc<Mutex<Vec<T>>>;

#[derive(Default, Clone)]
pub(super) struct Calls {
    pub(super) registered:
        Log<ecs::operation::register_task_definition::RegisterTaskDefinitionInput>,
    pub(super) created: Log<cd::operation::create_deployment::CreateDeploymentInput>,
    pub(super) stopped: Log<cd::operation::stop_deployment::StopDeploymentInput>,
    pub(super) polled: Log<String>,
}

pub(super) fn clients(w: World, calls: &Calls) -> Clients {
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
    let running_td = w.running_td.clone();
    let running_base = w.running_base;
    let digests = w.digests.clone();
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
                                    // What the stack's Service* outputs say, as ECS reports
                                    // a task set created from them.
                                    .network_configuration(
                                        ecs::types::NetworkConfiguration::builder()
                                            .awsvpc_configuration(
                                                ecs::types::AwsVpcConfiguration::builder()
                                                    .subnets("subnet-0a1b2c3d4e5f60003")
                                                    .subnets("subnet-0a1b2c3d4e5f60001")
                                                    .subnets("subnet-0a1b2c3d4e5f60002")
                                                    .security_groups("sg-0a1b2c3d4e5f60010")
                                                    .assign_public_ip(
                                                        ecs::types::AssignPublicIp::Disabled,
                                                    )
                                                    .build()
                                                    .unwrap(),
                                            )
                                            .build(),
                                    )
                                    .platform_version("1.4.0")
                                    .capacity_provider_strategy(
                                        ecs::types::CapacityProviderStrategyItem::builder()
                                            .capacity_provider("FARGATE")
                                            .base(running_base)
                                            .weight(1)
                                            .build()
                                            .unwrap(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
        mock!(ecs::Client::describe_task_definition)
            .match_requests(|r| {
                matches!(r.task_definition(), Some(CURRENT_TD) | Some(STACK_TD))
                    && r.include() == [ecs::types::TaskDefinitionField::Tags]
            })
            .then_compute_output(move |r| {
                let td = match (r.task_definition(), &running_td) {
                    (Some(STACK_TD), _) => stack_task_definition(),
                    (_, Some(td)) => td.clone(),
                    _ => current_task_definition(),
                };
                ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput::builder()
                    .task_definition(td)
                    .tags(
                        ecs::types::Tag::builder()
                            .key("Project")
                            .value("TradingPlatform")
                            .build(),
                    )
                    .build()
            }),
        mock!(ecs::Client::list_tasks)
            .match_requests(|r| {
                r.family() == Some("orderbroker-TaskDefinition-Xy12")
                    && r.desired_status() == Some(&ecs::types::DesiredStatus::Running)
            })
            .then_compute_output({
                let n = digests.len();
                move |_| {
                    ecs::operation::list_tasks::ListTasksOutput::builder()
                        .set_task_arns(Some((0..n).map(|i| format!("arn:task/{i}")).collect()))
                        .build()
                }
            }),
        mock!(ecs::Client::describe_tasks).then_compute_output(move |r| {
            let tasks = r
                .tasks()
                .iter()
                .map(|arn| {
                    let i: usize = arn.rsplit('/').next().unwrap().parse().unwrap();
                    ecs::types::Task::builder()
                        .task_arn(arn)
                        .task_definition_arn(CURRENT_TD)
                        .last_status("RUNNING")
                        .containers(
                            ecs::types::Container::builder()
                                .name("orderbroker")
                                .set_image_digest(digests[i].map(str::to_string))
                                .build(),
                        )
                        .build()
                })
                .collect();
            ecs::operation::describe_tasks::DescribeTasksOutput::builder()
                .set_tasks(Some(tasks))
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
    let sq_rules = vec![if w.quota_denied {
        mock!(sq::Client::get_service_quota).then_error(|| {
            sq::operation::get_service_quota::GetServiceQuotaError::AccessDeniedException(
                sq::types::error::AccessDeniedException::builder()
                    .message("not authorized to perform: servicequotas:GetServiceQuota")
                    .build(),
            )
        })
    } else {
        mock!(sq::Client::get_service_quota)
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
            })
    }];

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

    let deployed = w.deployed.clone();
    let physical: Vec<(String, String)> = match &deployed {
        Some(d) => d.physical.clone(),
        None => vec![
            ("BlueTargetGroup".into(), "arn:tg/blue".into()),
            ("TaskDefinition".into(), "arn:td:1".into()),
        ],
    };
    let body = deployed.as_ref().map_or(
        "{\"Resources\": {\"X\": {\"Type\": \"AWS::SNS::Topic\"}}}".to_string(),
        |d| d.processed_template.clone(),
    );
    let parameters: Vec<(String, String)> = match &deployed {
        Some(d) => d.parameters.clone(),
        None => stack().parameters.into_iter().collect(),
    };
    let cfn_rules: Vec<Rule> = vec![
        mock!(cfn::Client::list_stack_resources)
            .match_requests(|r| r.stack_name() == Some("orderbroker"))
            .then_compute_output(move |_| {
                let res = |id: &str, phys: &str| {
                    cfn::types::StackResourceSummary::builder()
                        .logical_resource_id(id)
                        .resource_type("AWS::CloudFormation::Stack")
                        .physical_resource_id(phys)
                        .resource_status(cfn::types::ResourceStatus::UpdateComplete)
                        .last_updated_timestamp(SmithyTime::from_secs(0))
                        .build()
                };
                cfn::operation::list_stack_resources::ListStackResourcesOutput::builder()
                    .set_stack_resource_summaries(Some(
                        physical.iter().map(|(id, p)| res(id, p)).collect(),
                    ))
                    .build()
            }),
        mock!(cfn::Client::get_template)
            .match_requests(|r| r.template_stage() == Some(&cfn::types::TemplateStage::Processed))
            .then_compute_output(move |_| {
                cfn::operation::get_template::GetTemplateOutput::builder()
                    .template_body(body.clone())
                    .build()
            }),
        mock!(cfn::Client::describe_stacks)
            .match_requests(|r| r.stack_name() == Some("orderbroker"))
            .then_compute_output(move |_| {
                let s = stack();
                cfn::operation::describe_stacks::DescribeStacksOutput::builder()
                    .stacks(
                        cfn::types::Stack::builder()
                            .stack_name("orderbroker")
                            .stack_status(cfn::types::StackStatus::UpdateComplete)
                            .creation_time(SmithyTime::from_secs(0))
                            .set_outputs(Some(
                                s.outputs
                                    .iter()
                                    .map(|(k, v)| {
                                        cfn::types::Output::builder()
                                            .output_key(k)
                                            .output_value(v)
                                            .build()
                                    })
                                    .collect(),
                            ))
                            .set_parameters(Some(
                                parameters
                                    .iter()
                                    .map(|(k, v)| {
                                        cfn::types::Parameter::builder()
                                            .parameter_key(k)
                                            .parameter_value(v)
                                            .build()
                                    })
                                    .collect(),
                            ))
                            .build(),
                    )
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
        // One of the warm-up's prefix with a schedule the view cannot read (set by hand).
        aas::types::ScheduledAction::builder()
            .scheduled_action_name("warmup-by-hand")
            .scheduled_action_arn(
                "arn:aws:autoscaling:us-east-2:111122223333:scheduledAction:x:warmup-by-hand",
            )
            .service_namespace(aas::types::ServiceNamespace::Ecs)
            .schedule("cron(0 9 ? * MON-FRI *)")
            .resource_id(resource)
            .creation_time(SmithyTime::from_secs(0))
            .build()
            .unwrap(),
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

pub(super) fn request(now: DateTime<Utc>) -> DeployRequest {
    DeployRequest {
        poll: Duration::ZERO,
        timeout: Duration::from_secs(30),
        ..DeployRequest::new(IMAGE.into(), now, Calendar::new(), Settings::default())
    }
}

/// Monday 2026-11-30, 11:00 New York: a trading day, outside the spike windows.
pub(super) fn eleven() -> DateTime<Utc> {
    ny("2026-11-30", "11:00")
}

pub(super) async fn run(
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
