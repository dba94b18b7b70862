//! The AWS edge of `orderbroker deploy | rollback | status | preflight`: reads the stack, ECR,
//! ECS, Service Quotas, CloudWatch and CodeDeploy, and acts (register a revision, create or stop
//! a deployment) only after every pre-flight check passed. Deployments are tracked by id, never
//! guessed; names come from the stack outputs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::appspec::{self, StrategyItem};
use crate::calendar::Calendar;
use crate::deploy::{
    self, check_platform, check_quota, derive_task_definition, parse_image, parse_manifest, phase,
    platform_from_config, progress_lines, spike_window, split_alarms, status_line, window_refusal,
    ClassUsage, DeployError, Manifest, Outcome, Phase, Snapshot, TaskSetView, ACTIVE_STATUSES,
    MANIFEST_MEDIA_TYPES,
};
use crate::preflight::LiveState;
use crate::warmup::Settings;

/// The SDK clients the commands use (one SDK configuration).
#[derive(Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub quotas: aws_sdk_servicequotas::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// Fetches image config blobs from their presigned URL (never logged).
    pub http: reqwest::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Clients {
            cloudformation: aws_sdk_cloudformation::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            quotas: aws_sdk_servicequotas::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(sdk),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// Where progress goes: lines always; a rewritable status line on a terminal.
pub trait Progress: Send {
    fn line(&mut self, text: &str);
    fn status(&mut self, _text: &str) {}
}

/// Collects lines (tests, `--json`).
#[derive(Debug, Default)]
pub struct Lines(pub Vec<String>);

impl Progress for Lines {
    fn line(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
}

fn aws<E: std::error::Error + 'static>(op: &'static str) -> impl FnOnce(E) -> DeployError {
    move |e| DeployError::Aws(format!("{op}: {}", DisplayErrorContext(&e)))
}

/// A deployed stack: outputs and parameter values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stack {
    pub name: String,
    pub status: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

impl Stack {
    pub fn output(&self, name: &str) -> Result<&str, DeployError> {
        self.outputs
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                DeployError::Input(format!(
                    "stack {} has no {name} output: deploy the current template first (`make deploy`)",
                    self.name
                ))
            })
    }
}

/// Reads a stack; `Ok(None)` when it does not exist.
pub async fn read_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<Option<Stack>, DeployError> {
    let out = match cfn.describe_stacks().stack_name(name).send().await {
        Ok(o) => o,
        Err(e) => {
            let text = DisplayErrorContext(&e).to_string();
            if text.contains("does not exist") {
                return Ok(None);
            }
            if text.contains("credentials") || text.contains("Credentials") {
                return Err(DeployError::Aws(format!(
                    "no AWS credentials: set AWS_PROFILE or run `aws sso login` / `aws configure` ({text})"
                )));
            }
            return Err(DeployError::Aws(format!("DescribeStacks {name}: {text}")));
        }
    };
    let Some(s) = out.stacks().first() else {
        return Ok(None);
    };
    Ok(Some(Stack {
        name: name.to_string(),
        status: s
            .stack_status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect(),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.resolved_value()
                        .or(p.parameter_value())
                        .unwrap_or_default()
                        .to_string(),
                ))
            })
            .collect(),
    }))
}

/// A stack that must exist.
pub async fn require_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    region: &str,
) -> Result<Stack, DeployError> {
    read_stack(cfn, name).await?.ok_or_else(|| {
        DeployError::Input(format!(
            "stack {name} not found in {region}: deploy it with `make deploy`, or name another with --stack"
        ))
    })
}

/// Names every command needs, from the outputs.
#[derive(Debug, Clone)]
pub struct Names {
    pub cluster: String,
    pub service: String,
    pub application: String,
    pub group: String,
    pub container: String,
}

impl Names {
    pub fn from_stack(s: &Stack) -> Result<Self, DeployError> {
        Ok(Names {
            cluster: s.output("ClusterName")?.to_string(),
            service: s.output("ServiceName")?.to_string(),
            application: s.output("CodeDeployApplicationName")?.to_string(),
            group: s.output("DeploymentGroupName")?.to_string(),
            container: s.output("ContainerName")?.to_string(),
        })
    }

    /// CodeDeploy's target id of an ECS service.
    pub fn target_id(&self) -> String {
        format!("{}:{}", self.cluster, self.service)
    }
}

/// Pre-flight: the image has a linux platform for `arch`.
pub async fn check_image(c: &Clients, uri: &str, arch: &str) -> Result<String, DeployError> {
    use aws_sdk_ecr::types::ImageIdentifier;
    let img = parse_image(uri)?;
    let id = ImageIdentifier::builder()
        .set_image_tag(img.tag.clone())
        .set_image_digest(img.digest.clone())
        .build();
    let out = c
        .ecr
        .batch_get_image()
        .registry_id(&img.registry_id)
        .repository_name(&img.repository)
        .image_ids(id)
        .set_accepted_media_types(Some(
            MANIFEST_MEDIA_TYPES.iter().map(|m| m.to_string()).collect(),
        ))
        .send()
        .await
        .map_err(|e| {
            let text = DisplayErrorContext(&e).to_string();
            if text.contains("RepositoryNotFound") {
                DeployError::ImageNotFound {
                    image: uri.to_string(),
                    why: format!("repository {} does not exist", img.repository),
                }
            } else {
                DeployError::Aws(format!("ecr:BatchGetImage {uri}: {text}"))
            }
        })?;
    let Some(image) = out.images().first() else {
        let why = out
            .failures()
            .first()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.failure_code().map(|c| c.as_str()).unwrap_or("?"),
                    f.failure_reason().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "no such tag or digest".into());
        return Err(DeployError::ImageNotFound {
            image: uri.to_string(),
            why,
        });
    };
    let bad = |why: String| DeployError::BadManifest {
        image: uri.to_string(),
        why,
    };
    let manifest = parse_manifest(
        image.image_manifest_media_type(),
        image.image_manifest().unwrap_or_default(),
    )
    .map_err(bad)?;
    let platforms = match manifest {
        Manifest::Index(p) => p,
        Manifest::Single { config_digest } => {
            let url = c
                .ecr
                .get_download_url_for_layer()
                .registry_id(&img.registry_id)
                .repository_name(&img.repository)
                .layer_digest(&config_digest)
                .send()
                .await
                .map_err(aws("ecr:GetDownloadUrlForLayer"))?
                .download_url
                .ok_or_else(|| bad("no download URL for the image config".into()))?;
            // The URL is presigned: it goes in no log and no error.
            let resp = c.http.get(url).send().await.map_err(|e| {
                bad(format!(
                    "fetching the image config failed: {}",
                    e.without_url()
                ))
            })?;
            if !resp.status().is_success() {
                return Err(bad(format!(
                    "fetching the image config answered HTTP {}",
                    resp.status().as_u16()
                )));
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| bad(format!("reading the image config: {}", e.without_url())))?;
            vec![platform_from_config(&body).map_err(bad)?]
        }
    };
    check_platform(uri, arch, &platforms)?;
    Ok(format!(
        "image {uri}: platforms {}",
        platforms
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The deployment holding the group, if any.
pub async fn active_deployment(
    cd: &aws_sdk_codedeploy::Client,
    names: &Names,
) -> Result<Option<(String, String)>, DeployError> {
    use aws_sdk_codedeploy::types::DeploymentStatus;
    let out = cd
        .list_deployments()
        .application_name(&names.application)
        .deployment_group_name(&names.group)
        .set_include_only_statuses(Some(
            ACTIVE_STATUSES
                .iter()
                .map(|s| DeploymentStatus::from(*s))
                .collect(),
        ))
        .send()
        .await
        .map_err(aws("codedeploy:ListDeployments"))?;
    let Some(id) = out.deployments().first() else {
        return Ok(None);
    };
    let status = cd
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .map_err(aws("codedeploy:GetDeployment"))?
        .deployment_info
        .and_then(|d| d.status)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "InProgress".into());
    Ok(Some((id.clone(), status)))
}

/// The service's desired count and current task definition.
pub async fn service_state(
    ecs: &aws_sdk_ecs::Client,
    names: &Names,
) -> Result<aws_sdk_ecs::types::Service, DeployError> {
    let out = ecs
        .describe_services()
        .cluster(&names.cluster)
        .services(&names.service)
        .send()
        .await
        .map_err(aws("ecs:DescribeServices"))?;
    out.services().first().cloned().ok_or_else(|| {
        DeployError::Input(format!(
            "service {} not found in cluster {}",
            names.service, names.cluster
        ))
    })
}

/// The PRIMARY (production) task set: its task definition and target group.
pub fn primary_task_set(svc: &aws_sdk_ecs::types::Service) -> Option<(String, Option<String>)> {
    svc.task_sets()
        .iter()
        .find(|t| t.status() == Some("PRIMARY"))
        .map(|t| {
            (
                t.task_definition().unwrap_or_default().to_string(),
                t.load_balancers()
                    .first()
                    .and_then(|l| l.target_group_arn())
                    .map(str::to_string),
            )
        })
}

async fn quota_value(c: &Clients, code: &str) -> Result<f64, DeployError> {
    c.quotas
        .get_service_quota()
        .service_code("fargate")
        .quota_code(code)
        .send()
        .await
        .map_err(aws("servicequotas:GetServiceQuota"))?
        .quota
        .and_then(|q| q.value)
        .ok_or_else(|| DeployError::Aws(format!("Service Quotas fargate/{code} has no value")))
}

async fn usage(c: &Clients, class: &str, now: DateTime<Utc>) -> Result<Option<f64>, DeployError> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    let q = MetricDataQuery::builder()
        .id("usage")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/Usage")
                        .metric_name("ResourceCount")
                        .dimensions(dim("Service", "Fargate"))
                        .dimensions(dim("Type", "Resource"))
                        .dimensions(dim("Resource", "vCPU"))
                        .dimensions(dim("Class", class))
                        .build(),
                )
                .period(60)
                .stat("Maximum")
                .build(),
        )
        .build();
    let series = crate::edge::metric_series(
        &c.cloudwatch,
        vec![q],
        now - chrono::Duration::minutes(15),
        now,
    )
    .await
    .map_err(DeployError::Aws)?;
    Ok(series.into_iter().max_by_key(|(t, _)| *t).map(|(_, v)| v))
}

/// What `deploy` is asked to do.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub image: String,
    pub arch: Option<String>,
    pub config: Option<String>,
    pub wait: bool,
    pub force: bool,
    pub override_alarms: bool,
    pub now: DateTime<Utc>,
    pub calendar: Calendar,
    pub settings: Settings,
    /// The window check covers [now, now + margin]: how long traffic takes to move.
    pub margin: chrono::Duration,
    pub poll: Duration,
    pub timeout: Duration,
}

impl DeployRequest {
    /// `deploy --wait --image <image>` with the CLI's defaults: the stack's architecture and
    /// deployment config, 20-minute window margin, 5 s polls, 60-minute wait.
    pub fn new(image: String, now: DateTime<Utc>, calendar: Calendar, settings: Settings) -> Self {
        DeployRequest {
            image,
            arch: None,
            config: None,
            wait: true,
            force: false,
            override_alarms: false,
            now,
            calendar,
            settings,
            margin: chrono::Duration::minutes(20),
            poll: Duration::from_secs(5),
            timeout: Duration::from_secs(60 * 60),
        }
    }
}

/// What `deploy` did.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub task_definition: String,
    pub deployment_id: String,
    pub outcome: Option<Outcome>,
}

/// Pre-flight, register, create, and (with `wait`) follow.
pub async fn deploy(
    c: &Clients,
    stack: &Stack,
    req: &DeployRequest,
    out: &mut dyn Progress,
) -> Result<Deployed, DeployError> {
    let names = Names::from_stack(stack)?;
    let arch = match &req.arch {
        Some(a) => a.to_ascii_uppercase(),
        None => stack.output("CpuArchitecture")?.to_string(),
    };
    deploy::oci_arch(&arch)?;
    let strategy: Vec<StrategyItem> =
        serde_json::from_str(stack.output("CapacityProviderStrategy")?).map_err(|e| {
            DeployError::Input(format!("stack output CapacityProviderStrategy: {e}"))
        })?;

    // Pre-flight: nothing is written before all of these pass.
    out.line(&format!(
        "pre-flight: {}",
        check_image(c, &req.image, &arch).await?
    ));
    if let Some((id, status)) = active_deployment(&c.codedeploy, &names).await? {
        return Err(DeployError::InProgress {
            id,
            status,
            group: names.group.clone(),
        });
    }
    out.line("pre-flight: no deployment in progress");
    match spike_window(&req.calendar, req.now, req.margin, &req.settings)
        .map_err(|e| DeployError::Input(e.to_string()))?
    {
        Some(w) if !req.force => return Err(window_refusal(req.now, req.margin, &w)),
        Some(w) => out.line(&format!(
            "pre-flight: --force: deploying despite: {}",
            window_refusal(req.now, req.margin, &w)
        )),
        None => out.line("pre-flight: outside the spike windows"),
    }
    let svc = service_state(&c.ecs, &names).await?;
    let current_arn = primary_task_set(&svc)
        .map(|(td, _)| td)
        .filter(|t| !t.is_empty())
        .or_else(|| svc.task_definition().map(str::to_string))
        .ok_or_else(|| DeployError::Input("the service has no task definition".into()))?;
    let described = c
        .ecs
        .describe_task_definition()
        .task_definition(&current_arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(aws("ecs:DescribeTaskDefinition"))?;
    let current = described
        .task_definition()
        .cloned()
        .ok_or_else(|| DeployError::Aws("DescribeTaskDefinition returned nothing".into()))?;
    let vcpu =
        current
            .cpu()
            .and_then(deploy::task_vcpu)
            .ok_or_else(|| DeployError::TaskDefinition {
                arn: current_arn.clone(),
                why: "no task-level cpu".into(),
            })?;
    let green = u32::try_from(svc.desired_count()).unwrap_or(0).max(1);
    let spot_needed = deploy::place(green, &strategy).spot > 0;
    let on_demand = ClassUsage {
        quota: quota_value(c, deploy::ON_DEMAND_QUOTA).await?,
        usage: usage(c, "Standard/OnDemand", req.now).await?,
    };
    let spot = if spot_needed {
        Some(ClassUsage {
            quota: quota_value(c, deploy::SPOT_QUOTA).await?,
            usage: usage(c, "Standard/Spot", req.now).await?,
        })
    } else {
        None
    };
    match check_quota(green, vcpu, &strategy, on_demand, spot) {
        Ok(q) => q
            .lines
            .iter()
            .for_each(|l| out.line(&format!("pre-flight: {l}"))),
        Err(e) if req.force => out.line(&format!("pre-flight: --force: deploying despite: {e}")),
        Err(e) => return Err(e),
    }

    // Register the derived revision.
    let next = derive_task_definition(&current, &names.container, &req.image, &arch)?;
    let registered = register(&c.ecs, &next, described.tags()).await?;
    out.line(&format!(
        "registered {registered} (from {current_arn}: image of {} and CPU architecture {arch}; nothing else changed)",
        names.container
    ));
    let appspec = appspec::render(&stack.outputs, &registered, &arch)
        .map_err(|e| DeployError::Input(e.to_string()))?;

    let mut create = c
        .codedeploy
        .create_deployment()
        .application_name(&names.application)
        .deployment_group_name(&names.group)
        .description(format!("orderbroker deploy {}", req.image))
        .revision(
            aws_sdk_codedeploy::types::RevisionLocation::builder()
                .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::AppSpecContent)
                .app_spec_content(
                    aws_sdk_codedeploy::types::AppSpecContent::builder()
                        .content(&appspec)
                        .build(),
                )
                .build(),
        )
        .set_deployment_config_name(req.config.clone());
    if req.override_alarms {
        let (override_cfg, text) = alarm_override(c, &names).await?;
        out.line(&text);
        create = create.override_alarm_configuration(override_cfg);
    }
    let id = create
        .send()
        .await
        .map_err(aws("codedeploy:CreateDeployment"))?
        .deployment_id
        .ok_or_else(|| DeployError::Aws("CreateDeployment returned no deployment id".into()))?;
    out.line(&format!(
        "created deployment {id} ({} / {}{})",
        names.application,
        names.group,
        req.config
            .as_deref()
            .map(|c| format!(", config {c}"))
            .unwrap_or_default()
    ));
    let outcome = if req.wait {
        Some(
            follow(
                &c.codedeploy,
                &id,
                &names.target_id(),
                req.poll,
                req.timeout,
                out,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(Deployed {
        task_definition: registered,
        deployment_id: id,
        outcome,
    })
}

async fn register(
    ecs: &aws_sdk_ecs::Client,
    td: &aws_sdk_ecs::types::TaskDefinition,
    tags: &[aws_sdk_ecs::types::Tag],
) -> Result<String, DeployError> {
    let out = ecs
        .register_task_definition()
        .set_family(td.family.clone())
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_container_definitions(td.container_definitions.clone())
        .set_volumes(td.volumes.clone())
        .set_placement_constraints(td.placement_constraints.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
        .set_pid_mode(td.pid_mode.clone())
        .set_ipc_mode(td.ipc_mode.clone())
        .set_proxy_configuration(td.proxy_configuration.clone())
        // inferenceAccelerators: Elastic Inference is retired and never ran on Fargate.
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .set_enable_fault_injection(td.enable_fault_injection)
        .send()
        .await
        .map_err(aws("ecs:RegisterTaskDefinition"))?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| DeployError::Aws("RegisterTaskDefinition returned no ARN".into()))
}

/// `--override-alarms`: keep the group's alarms that are quiet, ignore the firing ones.
async fn alarm_override(
    c: &Clients,
    names: &Names,
) -> Result<(aws_sdk_codedeploy::types::AlarmConfiguration, String), DeployError> {
    use aws_sdk_codedeploy::types::{Alarm, AlarmConfiguration};
    let group = c
        .codedeploy
        .get_deployment_group()
        .application_name(&names.application)
        .deployment_group_name(&names.group)
        .send()
        .await
        .map_err(aws("codedeploy:GetDeploymentGroup"))?;
    let alarms: Vec<String> = group
        .deployment_group_info()
        .and_then(|g| g.alarm_configuration())
        .map(|a| {
            a.alarms()
                .iter()
                .filter_map(|x| x.name().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let firing: Vec<String> = if alarms.is_empty() {
        Vec::new()
    } else {
        c.cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(alarms.clone()))
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .send()
            .await
            .map_err(aws("cloudwatch:DescribeAlarms"))?
            .metric_alarms()
            .iter()
            .filter_map(|a| a.alarm_name().map(str::to_string))
            .collect()
    };
    let (kept, ignored) = split_alarms(&alarms, &firing);
    let cfg = AlarmConfiguration::builder()
        .enabled(!kept.is_empty())
        .set_alarms(Some(
            kept.iter()
                .map(|n| Alarm::builder().name(n).build())
                .collect(),
        ))
        .build();
    let text = format!(
        "!!! --override-alarms: this deployment IGNORES {} firing deployment-group alarm(s) [{}] and keeps {} armed [{}]. A bad version will not be rolled back by the ignored alarms.",
        ignored.len(),
        ignored.join(", "),
        kept.len(),
        kept.join(", ")
    );
    Ok((cfg, text))
}

/// One look at a deployment and its ECS target.
pub async fn snapshot(
    cd: &aws_sdk_codedeploy::Client,
    id: &str,
    target_id: &str,
) -> Result<Snapshot, DeployError> {
    let info = cd
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .map_err(aws("codedeploy:GetDeployment"))?
        .deployment_info
        .ok_or_else(|| DeployError::Aws(format!("deployment {id} not found")))?;
    let mut s = Snapshot {
        deployment_id: id.to_string(),
        status: info
            .status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        error: info.error_information().and_then(|e| {
            e.message()
                .map(|m| format!("{}: {m}", e.code().map(|c| c.as_str()).unwrap_or("error")))
        }),
        rollback_id: info
            .rollback_info()
            .and_then(|r| r.rollback_deployment_id())
            .map(str::to_string),
        rollback_message: info
            .rollback_info()
            .and_then(|r| r.rollback_message())
            .map(str::to_string),
        auto_rollback: info
            .auto_rollback_configuration()
            .is_some_and(|a| a.enabled()),
        created_at: info.create_time().and_then(crate::edge::from_smithy),
        completed_at: info.complete_time().and_then(crate::edge::from_smithy),
        ..Snapshot::default()
    };
    // The target appears once the deployment starts; before that there is nothing to show.
    if let Ok(t) = cd
        .get_deployment_target()
        .deployment_id(id)
        .target_id(target_id)
        .send()
        .await
    {
        if let Some(ecs) = t.deployment_target().and_then(|t| t.ecs_target()) {
            s.events = ecs
                .lifecycle_events()
                .iter()
                .map(|e| {
                    (
                        e.lifecycle_event_name().unwrap_or_default().to_string(),
                        e.status()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            s.event_times = ecs
                .lifecycle_events()
                .iter()
                .map(|e| crate::deploy::EventTime {
                    name: e.lifecycle_event_name().unwrap_or_default().to_string(),
                    start: e.start_time().and_then(crate::edge::from_smithy),
                    end: e.end_time().and_then(crate::edge::from_smithy),
                })
                .collect();
            s.task_sets = ecs
                .task_sets_info()
                .iter()
                .map(|t| TaskSetView {
                    id: t.identifer().unwrap_or_default().to_string(),
                    label: t
                        .task_set_label()
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default(),
                    traffic: t.traffic_weight(),
                    running: t.running_count(),
                    desired: t.desired_count(),
                    target_group: t
                        .target_group()
                        .and_then(|g| g.name())
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect();
        }
    }
    Ok(s)
}

/// Polls one deployment until it ends or `until` passes.
async fn watch(
    cd: &aws_sdk_codedeploy::Client,
    id: &str,
    target_id: &str,
    poll: Duration,
    until: Instant,
    started: Instant,
    out: &mut dyn Progress,
) -> Result<(Snapshot, bool), DeployError> {
    let mut prev: Option<Snapshot> = None;
    loop {
        let s = snapshot(cd, id, target_id).await?;
        for l in progress_lines(prev.as_ref(), &s) {
            out.line(&l);
        }
        out.status(&status_line(&s, started.elapsed()));
        if phase(&s.status) != Phase::Running {
            return Ok((s, true));
        }
        if Instant::now() >= until {
            return Ok((s, false));
        }
        prev = Some(s);
        tokio::time::sleep(poll).await;
    }
}

/// Follows a deployment by id, and its rollback deployment by id when one starts.
pub async fn follow(
    cd: &aws_sdk_codedeploy::Client,
    id: &str,
    target_id: &str,
    poll: Duration,
    timeout: Duration,
    out: &mut dyn Progress,
) -> Result<Outcome, DeployError> {
    let started = Instant::now();
    let until = started + timeout;
    let (mut s, ended) = watch(cd, id, target_id, poll, until, started, out).await?;
    if !ended {
        return Ok(Outcome::TimedOut {
            deployment_id: id.to_string(),
            status: s.status,
        });
    }
    if phase(&s.status) == Phase::Succeeded {
        return Ok(Outcome::Succeeded {
            deployment_id: id.to_string(),
        });
    }
    // CodeDeploy names the rollback deployment shortly after the failure.
    let mut tries = 0;
    while s.rollback_id.is_none() && s.auto_rollback && tries < 12 && Instant::now() < until {
        tokio::time::sleep(poll).await;
        s = snapshot(cd, id, target_id).await?;
        tries += 1;
    }
    let reason = deploy::failure_reason(&s);
    let Some(rollback_id) = s.rollback_id.clone() else {
        return Ok(Outcome::Failed {
            deployment_id: id.to_string(),
            status: s.status,
            reason,
        });
    };
    out.line(&format!(
        "{id}: {} ({reason}); following rollback deployment {rollback_id}",
        s.status
    ));
    let (r, ended) = watch(cd, &rollback_id, target_id, poll, until, started, out).await?;
    Ok(Outcome::RolledBack {
        deployment_id: id.to_string(),
        reason,
        rollback_id,
        rollback_status: if ended {
            r.status
        } else {
            format!("{} (still running when the wait ended)", r.status)
        },
    })
}

/// What `rollback` found.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    pub outcome: Outcome,
    pub serving_task_definition: Option<String>,
    pub previous_task_definition: Option<String>,
    pub holds_all_traffic: bool,
}

/// Stops a deployment with automatic rollback, follows it, and waits until the previous
/// version's task set is the PRIMARY (production) one again.
pub async fn rollback(
    c: &Clients,
    stack: &Stack,
    deployment: Option<String>,
    poll: Duration,
    timeout: Duration,
    out: &mut dyn Progress,
) -> Result<RolledBack, DeployError> {
    let names = Names::from_stack(stack)?;
    let id = match deployment {
        Some(id) => id,
        None => active_deployment(&c.codedeploy, &names)
            .await?
            .map(|(id, _)| id)
            .ok_or_else(|| {
                DeployError::Input(format!(
                    "no deployment in progress in {}: nothing to roll back (name one with --deployment)",
                    names.group
                ))
            })?,
    };
    // The blue (previous) task set's revision, before anything moves.
    let before = snapshot(&c.codedeploy, &id, &names.target_id()).await?;
    if phase(&before.status) != Phase::Running {
        return Err(DeployError::Input(format!(
            "deployment {id} is {}: only a deployment in progress can be stopped",
            before.status
        )));
    }
    let previous = previous_task_definition(c, &names, &before).await?;
    let stopped = c
        .codedeploy
        .stop_deployment()
        .deployment_id(&id)
        .auto_rollback_enabled(true)
        .send()
        .await
        .map_err(aws("codedeploy:StopDeployment"))?;
    out.line(&format!(
        "stop requested for {id} with automatic rollback: {} {}",
        stopped.status().map(|s| s.as_str()).unwrap_or(""),
        stopped.status_message().unwrap_or("")
    ));
    let started = Instant::now();
    let outcome = follow(&c.codedeploy, &id, &names.target_id(), poll, timeout, out).await?;
    // The old version holds all traffic when its task set is PRIMARY again.
    let mut serving = None;
    let holds = loop {
        let svc = service_state(&c.ecs, &names).await?;
        serving = primary_task_set(&svc).map(|(td, _)| td).or(serving);
        let holds = match (&serving, &previous) {
            (Some(s), Some(p)) => s == p,
            (Some(_), None) => svc.task_sets().len() == 1,
            _ => false,
        };
        if holds || started.elapsed() >= timeout {
            break holds;
        }
        tokio::time::sleep(poll).await;
    };
    Ok(RolledBack {
        outcome,
        serving_task_definition: serving,
        previous_task_definition: previous,
        holds_all_traffic: holds,
    })
}

/// The revision of the deployment's blue (previous) task set.
async fn previous_task_definition(
    c: &Clients,
    names: &Names,
    deployment: &Snapshot,
) -> Result<Option<String>, DeployError> {
    let Some(blue) = deployment
        .task_sets
        .iter()
        .find(|t| t.label == "Blue" && !t.id.is_empty())
    else {
        return Ok(None);
    };
    let sets = c
        .ecs
        .describe_task_sets()
        .cluster(&names.cluster)
        .service(&names.service)
        .task_sets(&blue.id)
        .send()
        .await
        .map_err(aws("ecs:DescribeTaskSets"))?;
    Ok(sets
        .task_sets()
        .first()
        .and_then(|s| s.task_definition())
        .map(str::to_string))
}

/// `status`: the deployment in progress, the task sets, the scaling bounds and the warm-up plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusView {
    pub stack: String,
    pub deployment: Option<Snapshot>,
    pub running: i32,
    pub desired: i32,
    pub pending: i32,
    pub task_sets: Vec<TaskSetState>,
    pub min: Option<i32>,
    pub max: Option<i32>,
    pub actions: Vec<PlannedAction>,
    pub next_action: Option<PlannedAction>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskSetState {
    /// `blue` or `green`: which of the stack's target groups it serves from (the template's
    /// names; CodeDeploy swaps which one production uses on every deployment).
    pub colour: String,
    pub status: String,
    pub task_definition: String,
    pub running: i32,
    pub desired: i32,
    pub target_group: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    pub name: String,
    pub at: DateTime<Utc>,
    pub min_capacity: Option<i32>,
    pub max_capacity: Option<i32>,
}

/// Reads an `at(YYYY-MM-DDTHH:MM:SS)` schedule in its time zone (UTC when none).
pub fn parse_at(schedule: &str, timezone: Option<&str>) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let inner = schedule.strip_prefix("at(")?.strip_suffix(')')?;
    let local = chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S").ok()?;
    let tz: chrono_tz::Tz = timezone.unwrap_or("UTC").parse().ok()?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub async fn status(
    c: &Clients,
    stack: &Stack,
    now: DateTime<Utc>,
    action_prefix: &str,
) -> Result<StatusView, DeployError> {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let names = Names::from_stack(stack)?;
    let mut v = StatusView {
        stack: stack.name.clone(),
        ..StatusView::default()
    };
    if let Some((id, _)) = active_deployment(&c.codedeploy, &names).await? {
        v.deployment = Some(snapshot(&c.codedeploy, &id, &names.target_id()).await?);
    }
    let svc = service_state(&c.ecs, &names).await?;
    v.running = svc.running_count();
    v.desired = svc.desired_count();
    v.pending = svc.pending_count();
    let colour = |tg: &str| {
        if stack.outputs.get("BlueTargetGroupArn").map(String::as_str) == Some(tg) {
            "blue"
        } else if stack.outputs.get("GreenTargetGroupArn").map(String::as_str) == Some(tg) {
            "green"
        } else {
            "?"
        }
    };
    v.task_sets = svc
        .task_sets()
        .iter()
        .map(|t| {
            let tg = t
                .load_balancers()
                .first()
                .and_then(|l| l.target_group_arn())
                .unwrap_or_default()
                .to_string();
            TaskSetState {
                colour: colour(&tg).to_string(),
                status: t.status().unwrap_or_default().to_string(),
                task_definition: t.task_definition().unwrap_or_default().to_string(),
                running: t.running_count(),
                desired: t.computed_desired_count(),
                target_group: tg,
            }
        })
        .collect();
    let resource = stack.output("ScalableTargetResourceId")?.to_string();
    let targets = c
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource)
        .send()
        .await
        .map_err(aws("application-autoscaling:DescribeScalableTargets"))?;
    if let Some(t) = targets.scalable_targets().first() {
        v.min = Some(t.min_capacity());
        v.max = Some(t.max_capacity());
    }
    let mut token = None;
    loop {
        let page = c
            .autoscaling
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(aws("application-autoscaling:DescribeScheduledActions"))?;
        for a in page.scheduled_actions() {
            if !a.scheduled_action_name().starts_with(action_prefix) {
                continue;
            }
            if let Some(at) = parse_at(a.schedule(), a.timezone()) {
                v.actions.push(PlannedAction {
                    name: a.scheduled_action_name().to_string(),
                    at,
                    min_capacity: a.scalable_target_action().and_then(|x| x.min_capacity()),
                    max_capacity: a.scalable_target_action().and_then(|x| x.max_capacity()),
                });
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    v.actions.sort_by_key(|a| a.at);
    v.next_action = v.actions.iter().find(|a| a.at > now).cloned();
    Ok(v)
}

/// The live state preflight compares with the template.
pub async fn live_state(c: &Clients, stack: &Stack) -> Result<LiveState, DeployError> {
    let names = Names::from_stack(stack)?;
    let resources = crate::tag_enforcer_aws::list_stack_resources(&c.cloudformation, &stack.name)
        .await
        .map_err(DeployError::Aws)?;
    let svc = service_state(&c.ecs, &names).await?;
    let primary = primary_task_set(&svc);
    Ok(LiveState {
        production_target_group: primary.as_ref().and_then(|(_, tg)| tg.clone()),
        service_task_definition: primary.map(|(td, _)| td),
        physical: resources
            .into_iter()
            .map(|r| (r.logical_id, r.physical_id))
            .collect(),
    })
}

/// The deployed template as it was submitted (the SAM form).
pub async fn deployed_template(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<String, DeployError> {
    cfn.get_template()
        .stack_name(stack)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await
        .map_err(aws("cloudformation:GetTemplate"))?
        .template_body
        .ok_or_else(|| DeployError::Aws(format!("stack {stack} returned no template body")))
}

/// `status` for a person: one block per topic, times in New York and UTC.
pub fn render_status(v: &StatusView, now: DateTime<Utc>) -> String {
    use std::fmt::Write;
    let tz = crate::calendar::EXCHANGE_TZ;
    let when = |t: DateTime<Utc>| {
        format!(
            "{} New York ({})",
            t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M"),
            t.format("%H:%MZ")
        )
    };
    let mut s = String::new();
    let _ = writeln!(s, "stack {}", v.stack);
    match &v.deployment {
        None => {
            let _ = writeln!(s, "deployment: none in progress");
        }
        Some(d) => {
            let _ = writeln!(s, "deployment: {} {}", d.deployment_id, d.status);
            for (name, st) in &d.events {
                let _ = writeln!(s, "  {name:<22} {st}");
            }
            for t in &d.task_sets {
                let _ = writeln!(
                    s,
                    "  {:<5} traffic {:>5.1}%  running {}/{}  {}",
                    t.label, t.traffic, t.running, t.desired, t.target_group
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "service: running {} / desired {} (pending {}); min {} max {}",
        v.running,
        v.desired,
        v.pending,
        v.min.map_or("?".into(), |m| m.to_string()),
        v.max.map_or("?".into(), |m| m.to_string())
    );
    for t in &v.task_sets {
        let _ = writeln!(
            s,
            "  {:<5} task set {:<7} {} running {}/{} -> {}",
            t.colour, t.status, t.task_definition, t.running, t.desired, t.target_group
        );
    }
    if v.actions.is_empty() {
        let _ = writeln!(
            s,
            "warm-up: NO scheduled actions (run the market-warmup function; see README)"
        );
    } else {
        let _ = writeln!(s, "warm-up: {} scheduled actions", v.actions.len());
        for a in &v.actions {
            let mark = if v.next_action.as_ref() == Some(a) {
                "next ->"
            } else if a.at <= now {
                "  done "
            } else {
                "       "
            };
            let _ = writeln!(
                s,
                "  {mark} {}  min {}  {}",
                when(a.at),
                a.min_capacity.map_or("-".into(), |m| m.to_string()),
                a.name
            );
        }
    }
    match &v.next_action {
        Some(a) => {
            let _ = writeln!(
                s,
                "next: {} at {} (in {} min)",
                a.name,
                when(a.at),
                (a.at - now).num_minutes()
            );
        }
        None => {
            let _ = writeln!(s, "next: nothing planned");
        }
    }
    s
}
