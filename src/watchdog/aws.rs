//! The watchdog's AWS edge: ECS (DescribeServices, ListTasks, DescribeTasks), CodeDeploy
//! (ListDeployments, GetDeployment, StopDeployment on this deployment group only) and ELB
//! (DescribeTargetHealth). Every decision is in the parent module.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::DeploymentStatus;
use aws_sdk_ecs::types::DesiredStatus;
use chrono::Utc;
use serde::Serialize;

use crate::aws::{from_smithy, AwsError, AwsResultExt};
use crate::watchdog::lifecycle::{self, HookWatch};
use crate::watchdog::{
    classify, decide, health_verdict, join, nothing_to_count, parse_event, ContainerExit, Decision,
    DeploymentView, HealthVerdict, Join, StopClass, TaskSetView, TaskStopped,
    COUNTED_STOPS_DEFAULT, INVOCATION_SECONDS, RECHECK_SECONDS,
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("configuration: {0}")]
    Config(String),
    // Not transparent: the AwsError itself stays in the source chain (exit code 3).
    #[error("{0}")]
    Aws(#[from] AwsError),
}

/// The function's settings (environment).
#[derive(Debug, Clone)]
pub struct WatchdogConfig {
    pub cluster: String,
    pub service: String,
    pub application: String,
    pub deployment_group: String,
    pub never_healthy: chrono::Duration,
    pub counted_stops: u32,
    /// `GateReadinessSeconds`: green must have a healthy target this long after its task set
    /// was created.
    pub readiness: chrono::Duration,
    /// `HookTimeoutSeconds`: the gate functions' Lambda timeout (a hook's event running this
    /// plus [`crate::watchdog::HOOK_SILENCE_MARGIN_SECONDS`] means nothing will report).
    pub hook_timeout: chrono::Duration,
}

impl WatchdogConfig {
    /// Reads `CLUSTER`, `SERVICE_NAME`, `APPLICATION_NAME`, `DEPLOYMENT_GROUP`,
    /// `NEVER_HEALTHY_SECONDS`, `READINESS_SECONDS`, `HOOK_TIMEOUT_SECONDS` and the optional
    /// `COUNTED_STOPS`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, WatchdogError> {
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| WatchdogError::Config(format!("{k} is not set")))
        };
        let num = |k: &str, default: Option<u32>| -> Result<u32, WatchdogError> {
            match get(k).filter(|v| !v.trim().is_empty()) {
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| WatchdogError::Config(format!("{k}={v:?} is not a whole number"))),
                None => default.ok_or_else(|| WatchdogError::Config(format!("{k} is not set"))),
            }
        };
        let counted_stops = num("COUNTED_STOPS", Some(COUNTED_STOPS_DEFAULT))?;
        if counted_stops == 0 {
            return Err(WatchdogError::Config(
                "COUNTED_STOPS must be at least 1".into(),
            ));
        }
        Ok(WatchdogConfig {
            cluster: req("CLUSTER")?,
            service: req("SERVICE_NAME")?,
            application: req("APPLICATION_NAME")?,
            deployment_group: req("DEPLOYMENT_GROUP")?,
            never_healthy: chrono::Duration::seconds(i64::from(num(
                "NEVER_HEALTHY_SECONDS",
                None,
            )?)),
            counted_stops,
            readiness: chrono::Duration::seconds(i64::from(num("READINESS_SECONDS", None)?)),
            hook_timeout: chrono::Duration::seconds(i64::from(num("HOOK_TIMEOUT_SECONDS", None)?)),
        })
    }
}

/// The clients.
#[derive(Debug, Clone)]
pub struct WatchdogClients {
    pub ecs: aws_sdk_ecs::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

/// What this container has already handled: duplicate deliveries (same task, same
/// `detail.version`), older versions of a task arriving late, deployments it stopped.
/// Lambda may run events in several containers; the deployment's own status (GetDeployment)
/// is what keeps a second container from acting on a deployment already stopping.
#[derive(Debug, Default)]
pub struct Memory(Mutex<Seen>);

#[derive(Debug, Default)]
struct Seen {
    /// Newest `detail.version` handled per task.
    versions: BTreeMap<String, i64>,
    /// Deployments this container stopped.
    stopped: BTreeSet<String>,
}

impl Memory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// True the first time a task is seen at this version or a newer one.
    fn first_sight(&self, task: &str, version: i64) -> bool {
        let mut g = self.lock();
        if g.versions.get(task).is_some_and(|seen| *seen >= version) {
            return false;
        }
        g.versions.insert(task.to_string(), version);
        true
    }
    fn stopped(&self, deployment: &str) -> bool {
        self.lock().stopped.contains(deployment)
    }
    fn mark_stopped(&self, deployment: &str) {
        self.lock().stopped.insert(deployment.to_string());
    }
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub handled: String,
    pub detail: String,
    pub stopped_deployment: Option<String>,
}

impl Outcome {
    fn nothing(handled: &str, detail: impl Into<String>) -> Self {
        Outcome {
            handled: handled.into(),
            detail: detail.into(),
            stopped_deployment: None,
        }
    }
}

/// Handles one invocation: an ECS Task State Change, or the scheduled check
/// (`{"trigger":"check"}`). A malformed event is logged and never acted on.
pub async fn handle(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    memory: &Memory,
    event: &serde_json::Value,
    deadline: Instant,
) -> Result<Outcome, WatchdogError> {
    if event.get("trigger").and_then(|t| t.as_str()) == Some("check") {
        return check(c, cfg, memory, deadline).await;
    }
    let t = match parse_event(event) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "event ignored");
            return Ok(Outcome::nothing("malformed", e.to_string()));
        }
    };
    on_stopped(c, cfg, memory, &t).await
}

/// One stopped task.
pub async fn on_stopped(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    memory: &Memory,
    t: &TaskStopped,
) -> Result<Outcome, WatchdogError> {
    let group = format!("service:{}", cfg.service);
    if t.last_status != "STOPPED"
        || t.group != group
        || !cluster_matches(&t.cluster_arn, &cfg.cluster)
    {
        return Ok(Outcome::nothing(
            "not ours",
            format!("{} {} in {}", t.group, t.last_status, t.cluster_arn),
        ));
    }
    if !memory.first_sight(&t.task_arn, t.version) {
        return Ok(Outcome::nothing(
            "duplicate",
            format!(
                "{} version {} already handled (or a newer one)",
                t.task_arn, t.version
            ),
        ));
    }
    let this = classify(t, cfg.never_healthy);
    let sets = task_sets(c, cfg).await?;
    let deployment = match join(t, &sets) {
        Join::Green { deployment, .. } => deployment,
        Join::Unmatched(why) => {
            tracing::info!(task = %t.task_arn, why = %why, "stopped task matches no deployment task set");
            return Ok(Outcome::nothing("unmatched", why));
        }
    };
    if memory.stopped(&deployment) {
        return Ok(Outcome::nothing("already stopped", deployment));
    }
    let view = deployment_view(c, &deployment).await?;
    if let Some(why) = nothing_to_count(&view, &this) {
        return Ok(Outcome::nothing(
            "no action",
            describe(&Decision::Nothing(why), &this),
        ));
    }
    let counted = counted_stops(c, cfg, t).await?;
    let d = decide(&view, &this, counted, cfg.counted_stops);
    act(c, memory, d, &this).await
}

fn describe(d: &Decision, this: &StopClass) -> String {
    let stop = match this {
        StopClass::Counted(w) => format!("counted: {w}"),
        StopClass::Ignored(w) => format!("ignored: {w}"),
    };
    match d {
        Decision::Nothing(w) => format!("{w} ({stop})"),
        Decision::Stop { why, .. } => format!("{why} ({stop})"),
    }
}

async fn act(
    c: &WatchdogClients,
    memory: &Memory,
    d: Decision,
    this: &StopClass,
) -> Result<Outcome, WatchdogError> {
    match d {
        Decision::Nothing(_) => Ok(Outcome::nothing("no action", describe(&d, this))),
        Decision::Stop { deployment, why } => {
            stop(c, memory, &deployment, &why).await?;
            Ok(Outcome {
                handled: "stopped".into(),
                detail: why,
                stopped_deployment: Some(deployment),
            })
        }
    }
}

async fn stop(
    c: &WatchdogClients,
    memory: &Memory,
    deployment: &str,
    why: &str,
) -> Result<(), WatchdogError> {
    tracing::warn!(
        deployment,
        why,
        "stopping the deployment with automatic rollback"
    );
    use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentError as E;
    let result = c
        .codedeploy
        .stop_deployment()
        .deployment_id(deployment)
        .auto_rollback_enabled(true)
        .send()
        .await;
    match result {
        Ok(_) => {}
        // Another invocation (or CodeDeploy itself) got there first: the deployment is done,
        // which is what this call wanted. Not an error, so no retry and no page.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(E::DeploymentAlreadyCompletedException(_))
            ) =>
        {
            tracing::info!(deployment, "deployment already completed");
        }
        Err(e) => {
            return Err(AwsError::new("codedeploy:StopDeployment", e)
                .on(deployment)
                .into())
        }
    }
    memory.mark_stopped(deployment);
    Ok(())
}

fn cluster_matches(arn: &str, cluster: &str) -> bool {
    arn == cluster || arn.rsplit('/').next() == Some(cluster)
}

async fn task_sets(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
) -> Result<Vec<TaskSetView>, WatchdogError> {
    let out = c
        .ecs
        .describe_services()
        .cluster(&cfg.cluster)
        .services(&cfg.service)
        .send()
        .await
        .aws("ecs:DescribeServices")
        .map_err(|e| e.on(cfg.service.clone()))?;
    Ok(out
        .services()
        .iter()
        .flat_map(|s| s.task_sets())
        .map(|ts| TaskSetView {
            id: ts.id().unwrap_or_default().to_string(),
            external_id: ts.external_id().map(str::to_string),
            task_definition: ts.task_definition().unwrap_or_default().to_string(),
            status: ts.status().unwrap_or_default().to_string(),
            target_group_arn: ts
                .load_balancers()
                .iter()
                .find_map(|lb| lb.target_group_arn().map(str::to_string)),
            created_at: ts.created_at().and_then(from_smithy),
        })
        .collect())
}

async fn deployment_view(c: &WatchdogClients, id: &str) -> Result<DeploymentView, WatchdogError> {
    let out = c
        .codedeploy
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .aws("codedeploy:GetDeployment")
        .map_err(|e| e.on(id))?;
    let info = out.deployment_info();
    Ok(DeploymentView {
        id: id.to_string(),
        status: info
            .and_then(|i| i.status())
            .map_or("Unknown", |s| s.as_str())
            .to_string(),
        stopping: info
            .and_then(|i| i.rollback_info())
            .and_then(|r| r.rollback_deployment_id())
            .is_some_and(|id| !id.is_empty()),
    })
}

fn task_view(t: &aws_sdk_ecs::types::Task) -> TaskStopped {
    TaskStopped {
        task_arn: t.task_arn().unwrap_or_default().to_string(),
        cluster_arn: t.cluster_arn().unwrap_or_default().to_string(),
        group: t.group().unwrap_or_default().to_string(),
        last_status: t.last_status().unwrap_or_default().to_string(),
        started_by: t.started_by().map(str::to_string),
        task_definition_arn: t.task_definition_arn().unwrap_or_default().to_string(),
        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: t.stopped_reason().map(str::to_string),
        started_at: t.started_at().and_then(from_smithy),
        stopped_at: t.stopped_at().and_then(from_smithy),
        version: t.version(),
        containers: t
            .containers()
            .iter()
            .map(|k| ContainerExit {
                name: k.name().unwrap_or_default().to_string(),
                exit_code: k.exit_code().map(i64::from),
                reason: k.reason().map(str::to_string),
            })
            .collect(),
    }
}

/// The service's stopped tasks of one task definition revision, described. ListTasks filters by
/// the revision's `family` ("Specifying a family limits the results to tasks that belong to
/// that family", ECS API reference) and desired status STOPPED (needed to see stopped tasks);
/// DescribeTasks (batches of 100) keeps this revision and this service's group.
/// Neither `startedBy` nor `serviceName` is relied on (what they return for task-set tasks is
/// not documented).
async fn stopped_tasks_of(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    task_definition: &str,
) -> Result<Vec<TaskStopped>, WatchdogError> {
    let family = family_of(task_definition);
    let arns: Vec<String> = c
        .ecs
        .list_tasks()
        .cluster(&cfg.cluster)
        .family(family)
        .desired_status(DesiredStatus::Stopped)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("ecs:ListTasks")?;
    let group = format!("service:{}", cfg.service);
    let mut out = Vec::new();
    for batch in arns.chunks(100) {
        let d = c
            .ecs
            .describe_tasks()
            .cluster(&cfg.cluster)
            .set_tasks(Some(batch.to_vec()))
            .send()
            .await
            .aws("ecs:DescribeTasks")?;
        out.extend(
            d.tasks()
                .iter()
                .map(task_view)
                .filter(|t| t.task_definition_arn == task_definition && t.group == group),
        );
    }
    Ok(out)
}

/// `arn:aws:ecs:region:account:task-definition/FAMILY:REVISION` -> FAMILY.
fn family_of(task_definition: &str) -> &str {
    let name = task_definition
        .rsplit('/')
        .next()
        .unwrap_or(task_definition);
    name.rsplit_once(':').map_or(name, |(family, _)| family)
}

/// Distinct green tasks stopped for counted causes, the event's own included (ECS keeps
/// stopped tasks listed for at least an hour: the count needs no state of its own).
async fn counted_stops(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    this: &TaskStopped,
) -> Result<usize, WatchdogError> {
    let stopped = stopped_tasks_of(c, cfg, &this.task_definition_arn).await?;
    let mut counted: BTreeSet<String> = stopped
        .iter()
        .filter(|t| t.last_status == "STOPPED" && classify(t, cfg.never_healthy).counted())
        .map(|t| t.task_arn.clone())
        .collect();
    counted.insert(this.task_arn.clone());
    Ok(counted.len())
}

/// The scheduled check: while a deployment of the group is in progress, green's target group
/// must have a healthy target NeverHealthySeconds after its first task reached RUNNING, and no
/// hook's lifecycle event may run past HookTimeoutSeconds + the margin. Re-checks every
/// RECHECK_SECONDS while waiting, and wakes at a hook's deadline if it falls inside the
/// invocation, until INVOCATION_SECONDS have passed or the deadline is near.
pub async fn check(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    memory: &Memory,
    deadline: Instant,
) -> Result<Outcome, WatchdogError> {
    let started = Instant::now();
    let until = (started + Duration::from_secs(u64::from(INVOCATION_SECONDS))).min(
        deadline
            .checked_sub(Duration::from_secs(5))
            .unwrap_or(started),
    );
    let mut hooks = HookWatch::default();
    loop {
        let outcome = check_once(c, cfg, memory, &mut hooks).await?;
        if outcome.stopped_deployment.is_some() {
            return Ok(outcome);
        }
        let recheck = Instant::now() + Duration::from_secs(u64::from(RECHECK_SECONDS));
        let next = match (outcome.handled == "waiting", hooks.due_instant()) {
            (true, Some(due)) => Some(recheck.min(due)),
            (true, None) => Some(recheck),
            (false, due) => due,
        };
        match next.filter(|n| *n < until) {
            Some(n) => tokio::time::sleep_until(tokio::time::Instant::from_std(n)).await,
            None => return Ok(outcome),
        }
    }
}

/// Stops the deployment whose hook went silent ([`lifecycle::silent_hook`]).
async fn silent_hook(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    memory: &Memory,
    deployment: &str,
    w: &mut HookWatch,
) -> Result<Option<Outcome>, WatchdogError> {
    let Some(why) = lifecycle::silent_hook(&c.codedeploy, cfg.hook_timeout, deployment, w).await?
    else {
        return Ok(None);
    };
    stop(c, memory, deployment, &why).await?;
    Ok(Some(Outcome {
        handled: "stopped".into(),
        detail: why,
        stopped_deployment: Some(deployment.to_string()),
    }))
}

/// One pass of the scheduled check.
pub async fn check_once(
    c: &WatchdogClients,
    cfg: &WatchdogConfig,
    memory: &Memory,
    hooks: &mut HookWatch,
) -> Result<Outcome, WatchdogError> {
    let in_progress: Vec<String> = c
        .codedeploy
        .list_deployments()
        .application_name(&cfg.application)
        .deployment_group_name(&cfg.deployment_group)
        .include_only_statuses(DeploymentStatus::InProgress)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("codedeploy:ListDeployments")?;
    let Some(deployment) = in_progress.first() else {
        return Ok(Outcome::nothing("idle", "no deployment in progress"));
    };
    if memory.stopped(deployment) {
        return Ok(Outcome::nothing("already stopped", deployment.clone()));
    }
    let view = deployment_view(c, deployment).await?;
    if view.status != "InProgress" || view.stopping {
        return Ok(Outcome::nothing(
            "no action",
            format!(
                "{deployment} is {} (stopping: {})",
                view.status, view.stopping
            ),
        ));
    }
    if let Some(stopped) = silent_hook(c, cfg, memory, deployment, hooks).await? {
        return Ok(stopped);
    }
    let sets = task_sets(c, cfg).await?;
    let Some(green) = sets
        .iter()
        .find(|s| s.external_id.as_deref() == Some(deployment.as_str()))
    else {
        return Ok(Outcome::nothing(
            "waiting",
            format!("{deployment} has no replacement task set yet"),
        ));
    };
    let Some(tg) = green.target_group_arn.as_deref() else {
        return Ok(Outcome::nothing(
            "no action",
            format!("task set {} has no target group", green.id),
        ));
    };
    // The gates' own reader of target health (one DescribeTargetHealth edge for both).
    let healthy = crate::gates::aws::read_targets(&c.elb, tg)
        .await?
        .iter()
        .filter(|t| t.state == "healthy")
        .count();
    match health_verdict(Utc::now(), green.created_at, healthy, cfg.readiness) {
        HealthVerdict::Healthy => Ok(Outcome::nothing(
            "healthy",
            format!("{healthy} healthy green target(s)"),
        )),
        HealthVerdict::Waiting(w) => Ok(Outcome::nothing("waiting", w)),
        HealthVerdict::NeverHealthy(why) => {
            stop(c, memory, deployment, &why).await?;
            Ok(Outcome {
                handled: "stopped".into(),
                detail: why,
                stopped_deployment: Some(deployment.clone()),
            })
        }
    }
}
