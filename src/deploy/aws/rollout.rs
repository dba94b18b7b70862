//! `deploy` and `carry`: pre-flight (image, no deployment in progress, spike window, Fargate
//! quota), then register the derived revision (the image on the stack's task definition),
//! create the deployment and, with `wait`, follow it. `carry` first reads what the PRIMARY task
//! set runs and deploys its image digest only when the stack's settings differ from it.

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

/// Pre-flight, register, create, and (with `wait`) follow: `req.image` with the settings of the
/// stack's task definition (the template's: the TaskDefinitionArn output), so every rollout
/// also carries what the last stack update changed there.
pub async fn deploy(
    c: &Clients,
    stack: &Stack,
    req: &DeployRequest,
    out: &mut dyn Progress,
) -> Result<Deployed, DeployError> {
    let description = format!("orderbroker deploy {}", req.image);
    // Boxed: the whole rollout future is large (a debug build's 2 MiB test threads overflow).
    Box::pin(roll_out(c, stack, req, &req.image, &description, out)).await
}

/// What `carry` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Carried {
    /// The running image, by digest (empty when nothing had to be carried).
    pub image: String,
    /// What differs between the PRIMARY task set and the stack's settings.
    pub differences: Vec<String>,
    /// The deployment that carries them; `None` when nothing differs.
    pub deployed: Option<Deployed>,
}

/// `carry`: the stack's settings (its TaskDefinition revision, network configuration, platform
/// version, capacity-provider strategy) rolled out with the image digest the PRIMARY task set
/// runs, through the same pre-flight, gates, alarms and watchdog as any deployment; nothing is
/// created when the PRIMARY task set already runs them (src/deploy/carry.rs).
pub async fn carry(
    c: &Clients,
    stack: &Stack,
    req: &DeployRequest,
    out: &mut dyn Progress,
) -> Result<Carried, DeployError> {
    use crate::deploy::carry::{differences, RunningSettings};
    let names = Names::from_stack(stack)?;
    if let Some((id, status)) = active_deployment(&c.codedeploy, &names).await? {
        return Err(DeployError::InProgress {
            id,
            status,
            group: names.group.clone(),
        });
    }
    let svc = service_state(&c.ecs, &names).await?;
    let primary = svc
        .task_sets()
        .iter()
        .find(|t| t.status() == Some("PRIMARY"))
        .cloned()
        .ok_or_else(|| {
            DeployError::Input(format!(
                "service {} has no PRIMARY task set: nothing runs to carry settings to",
                names.service
            ))
        })?;
    let running_arn = primary
        .task_definition()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DeployError::Response("the PRIMARY task set has no task definition".into()))?
        .to_string();
    let (running_td, _) = describe(&c.ecs, &running_arn).await?;
    let (wanted_td, _) = describe(&c.ecs, stack.output("TaskDefinitionArn")?).await?;
    let wanted =
        appspec::service_settings(&stack.outputs).map_err(|e| DeployError::Input(e.to_string()))?;
    let diff = differences(
        &running_td,
        &RunningSettings::of(&primary),
        &wanted_td,
        &wanted,
        &names.container,
    );
    if diff.is_empty() {
        out.line(&format!(
            "carry: the PRIMARY task set ({running_arn}) already runs the stack's settings: no deployment"
        ));
        return Ok(Carried {
            image: String::new(),
            differences: diff,
            deployed: None,
        });
    }
    let image = pinned_running_image(c, &names, &running_td, &running_arn).await?;
    for d in &diff {
        out.line(&format!("carry: {d}"));
    }
    let description =
        format!("orderbroker carry: the stack's settings with the running image {image}");
    // Boxed: the whole rollout future is large (a debug build's 2 MiB test threads overflow).
    let deployed = Box::pin(roll_out(c, stack, req, &image, &description, out)).await?;
    Ok(Carried {
        image,
        differences: diff,
        deployed: Some(deployed),
    })
}

/// The image the PRIMARY task set runs, pinned to the digest its tasks report
/// (`<registry>/<repository>@sha256:...`).
pub async fn running_image(c: &Clients, names: &Names) -> Result<String, DeployError> {
    let svc = service_state(&c.ecs, names).await?;
    let arn = primary_task_set(&svc)
        .map(|(td, _)| td)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            DeployError::Input(format!("service {} has no PRIMARY task set", names.service))
        })?;
    let (td, _) = describe(&c.ecs, &arn).await?;
    pinned_running_image(c, names, &td, &arn).await
}

async fn pinned_running_image(
    c: &Clients,
    names: &Names,
    td: &aws_sdk_ecs::types::TaskDefinition,
    td_arn: &str,
) -> Result<String, DeployError> {
    use crate::deploy::carry::{digest_image, one_digest};
    let uri = td
        .container_definitions()
        .iter()
        .find(|d| d.name() == Some(names.container.as_str()))
        .and_then(|d| d.image())
        .ok_or_else(|| DeployError::TaskDefinition {
            arn: td_arn.to_string(),
            why: format!("no container {} with an image", names.container),
        })?;
    let digests = running_digests(c, names, td, td_arn).await?;
    digest_image(uri, &one_digest(&digests)?)
}

/// The image digests the PRIMARY task set's running tasks report for the service container:
/// its family's RUNNING tasks (ListTasks by family, the SDK's paginator), those of its revision.
async fn running_digests(
    c: &Clients,
    names: &Names,
    td: &aws_sdk_ecs::types::TaskDefinition,
    td_arn: &str,
) -> Result<Vec<(String, Option<String>)>, DeployError> {
    let family = td
        .family()
        .ok_or_else(|| DeployError::Response(format!("{td_arn} has no family")))?;
    let mut pages = c
        .ecs
        .list_tasks()
        .cluster(&names.cluster)
        .family(family)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        arns.extend(page.aws("ecs:ListTasks")?.task_arns().iter().cloned());
    }
    let mut out = Vec::new();
    // DescribeTasks takes at most 100 tasks (ECS API Reference, DescribeTasks).
    for chunk in arns.chunks(100) {
        let described = c
            .ecs
            .describe_tasks()
            .cluster(&names.cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .aws("ecs:DescribeTasks")?;
        for t in described.tasks() {
            if t.task_definition_arn() != Some(td_arn) || t.last_status() != Some("RUNNING") {
                continue;
            }
            let digest = t
                .containers()
                .iter()
                .find(|x| x.name() == Some(names.container.as_str()))
                .and_then(|x| x.image_digest())
                .map(str::to_string);
            out.push((t.task_arn().unwrap_or_default().to_string(), digest));
        }
    }
    if out.is_empty() {
        return Err(DeployError::Response(format!(
            "no RUNNING task of {td_arn} in cluster {}: the running image cannot be read",
            names.cluster
        )));
    }
    Ok(out)
}

async fn describe(
    ecs: &aws_sdk_ecs::Client,
    arn: &str,
) -> Result<
    (
        aws_sdk_ecs::types::TaskDefinition,
        Vec<aws_sdk_ecs::types::Tag>,
    ),
    DeployError,
> {
    let described = ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .aws("ecs:DescribeTaskDefinition")?;
    let td = described
        .task_definition()
        .cloned()
        .ok_or_else(|| DeployError::Response("DescribeTaskDefinition returned nothing".into()))?;
    Ok((td, described.tags().to_vec()))
}

/// The pre-flight, the derived revision (`image` on the stack's task definition), the
/// deployment and, with `wait`, following it.
async fn roll_out(
    c: &Clients,
    stack: &Stack,
    req: &DeployRequest,
    image: &str,
    description: &str,
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
        check_image(c, image, &arch).await?
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
    // The template's settings: the stack's TaskDefinition revision (a stack update registers a
    // new one with every change; the service keeps running its own until this deployment).
    let base_arn = stack.output("TaskDefinitionArn")?.to_string();
    let (base, tags) = describe(&c.ecs, &base_arn).await?;
    let vcpu =
        base.cpu()
            .and_then(deploy::task_vcpu)
            .ok_or_else(|| DeployError::TaskDefinition {
                arn: base_arn.clone(),
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
    let running = primary_task_set(&svc).map(|(td, _)| td).unwrap_or_default();

    // Register the derived revision.
    let next = derive_task_definition(&base, &names.container, image, &arch)?;
    let registered = register(&c.ecs, &next, &tags).await?;
    out.line(&format!(
        "registered {registered} (the stack's {base_arn} with image {image} for {} and CPU architecture {arch}; the service runs {running})",
        names.container
    ));
    let appspec = appspec::render(&stack.outputs, &registered, &arch)
        .map_err(|e| DeployError::Input(e.to_string()))?;

    let mut create = c
        .codedeploy
        .create_deployment()
        .application_name(&names.application)
        .deployment_group_name(&names.group)
        .description(description)
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
