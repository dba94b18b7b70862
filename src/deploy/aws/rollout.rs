//! `deploy`: pre-flight (image, no deployment in progress, spike window, Fargate quota), then
//! register the derived revision, create the deployment and, with `wait`, follow it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    active_deployment, check_image, follow, primary_task_set, service_state, Clients, Names,
    Progress,
};
use crate::aws::stack::Stack;
use crate::aws::AwsResultExt;
use crate::calendar::Calendar;
use crate::deploy::appspec::{self, StrategyItem};
use crate::deploy::{
    self, check_quota, derive_task_definition, spike_window, split_alarms, window_refusal,
    ClassUsage, DeployError, Outcome,
};
use crate::warmup::Settings;

/// Reads the Fargate quotas and usage the peak needs and judges them ([`check_quota`]): both
/// task sets at `max_tasks` on top of what runs now (`running_now` of them this service's).
pub async fn quota_check(
    c: &Clients,
    max_tasks: u32,
    running_now: u32,
    vcpu: f64,
    strategy: &[crate::deploy::appspec::StrategyItem],
    now: DateTime<Utc>,
) -> Result<crate::deploy::QuotaReport, DeployError> {
    let spot_needed = deploy::peak_placement(max_tasks, running_now, strategy).spot > 0;
    let on_demand = ClassUsage {
        quota: quota_value(c, deploy::ON_DEMAND_QUOTA).await?,
        usage: usage(c, "Standard/OnDemand", now).await?,
    };
    let spot = if spot_needed {
        Some(ClassUsage {
            quota: quota_value(c, deploy::SPOT_QUOTA).await?,
            usage: usage(c, "Standard/Spot", now).await?,
        })
    } else {
        None
    };
    check_quota(max_tasks, running_now, vcpu, strategy, on_demand, spot)
}

async fn quota_value(c: &Clients, code: &str) -> Result<f64, DeployError> {
    c.quotas
        .get_service_quota()
        .service_code("fargate")
        .quota_code(code)
        .send()
        .await
        .aws("servicequotas:GetServiceQuota")?
        .quota
        .and_then(|q| q.value)
        .ok_or_else(|| DeployError::Response(format!("Service Quotas fargate/{code} has no value")))
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
    let series = crate::aws::cloudwatch::metric_series(
        &c.cloudwatch,
        vec![q],
        now - chrono::Duration::minutes(15),
        now,
    )
    .await?;
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
    /// Declared market events (the warm-up's overrides): their windows are spike windows too.
    pub events: Vec<crate::warmup::events::Event>,
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
            events: Vec::new(),
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
    match spike_window(
        &req.calendar,
        req.now,
        req.margin,
        &req.settings,
        &req.events,
    )
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
        .aws("ecs:DescribeTaskDefinition")?;
    let current = described
        .task_definition()
        .cloned()
        .ok_or_else(|| DeployError::Response("DescribeTaskDefinition returned nothing".into()))?;
    let vcpu =
        current
            .cpu()
            .and_then(deploy::task_vcpu)
            .ok_or_else(|| DeployError::TaskDefinition {
                arn: current_arn.clone(),
                why: "no task-level cpu".into(),
            })?;
    let running_now = u32::try_from(svc.desired_count()).unwrap_or(0);
    let max_tasks: u32 =
        match stack.parameters.get("MaxTasks") {
            Some(v) => v.trim().parse().map_err(|_| {
                DeployError::Input(format!("stack parameter MaxTasks={v:?} is not a number"))
            })?,
            None => return Err(DeployError::Input(
                "the stack has no MaxTasks parameter: the quota check needs the peak task count"
                    .into(),
            )),
        };
    match quota_check(c, max_tasks, running_now, vcpu, &strategy, req.now).await {
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
        .aws("codedeploy:CreateDeployment")?
        .deployment_id
        .ok_or_else(|| {
            DeployError::Response("CreateDeployment returned no deployment id".into())
        })?;
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
        .aws("ecs:RegisterTaskDefinition")?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| DeployError::Response("RegisterTaskDefinition returned no ARN".into()))
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
        .aws("codedeploy:GetDeploymentGroup")?;
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
            .aws("cloudwatch:DescribeAlarms")?
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
