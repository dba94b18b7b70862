//! The deployment watchdog: stops a CodeDeploy deployment whose replacement (green) tasks keep
//! failing in the phase no lifecycle hook covers.
//!
//! CodeDeploy can stay in Install while replacement tasks crash-loop, until the 60-minute Install
//! timeout (CircleCI-Public/aws-ecs-orb issue 134), or move on with a replacement task set whose
//! targets are unhealthy (aws/containers-roadmap issue 1941); only an alarm or a
//! `StopDeployment` ends it sooner (../shared/aws-facts.md). Two inputs:
//!
//! - **ECS Task State Change** events (EventBridge, `lastStatus` STOPPED, this cluster and
//!   service): the task is joined to the service's task sets by its task definition ARN (each
//!   deployment registers its own revision; ECS API `Task.taskDefinitionArn`,
//!   `TaskSet.taskDefinition`), and that task set's `externalId` is the CodeDeploy deployment id
//!   (ECS API `TaskSet.externalId`: "If an CodeDeploy deployment created a task set, the
//!   externalId parameter contains the CodeDeploy deployment ID"). Two things AWS does not
//!   document are NOT relied on: that a task-set task's `startedBy` is the task set's id, and that
//!   `ListTasks --service-name` lists task-set tasks (the stopped tasks are listed by task
//!   definition family instead). Two task sets running one revision cannot be told apart: logged,
//!   never acted on. Only non-transient stops count ([`classify`]); N counted stops of the green
//!   task set of a deployment in progress -> one `StopDeployment` with rollback.
//! - **every minute** (EventBridge Scheduler), while a deployment is in progress: green's target
//!   group must have a healthy target `GateReadinessSeconds` (the declared launch plus
//!   `NeverHealthySeconds`) after the replacement task set was created (`TaskSet.createdAt`: a
//!   clock no task replacement restarts); re-checked every [`RECHECK_SECONDS`]; and no hook's
//!   lifecycle event may run past `HookTimeoutSeconds` + [`HOOK_SILENCE_MARGIN_SECONDS`].
//!
//! This module is the pure part (event parsing, classification, decisions); [`aws`] is the edge.

pub mod aws;
pub mod lifecycle;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How often the scheduled check re-reads target health within one invocation.
pub const RECHECK_SECONDS: u32 = 10;
/// How long one scheduled invocation keeps re-checking (the function's timeout is 60 s).
pub const INVOCATION_SECONDS: u32 = 50;
/// Counted stops of green tasks that stop the deployment, unless `COUNTED_STOPS` says otherwise.
pub const COUNTED_STOPS_DEFAULT: u32 = 2;

/// Why an event cannot be acted on at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not an ECS Task State Change event: {0}")]
    NotATaskEvent(String),
    #[error("malformed ECS Task State Change event: {0}")]
    Malformed(String),
}

/// One container of a stopped task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerExit {
    pub name: String,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

/// The parts of a task state change the watchdog uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStopped {
    pub task_arn: String,
    pub cluster_arn: String,
    pub group: String,
    pub last_status: String,
    pub started_by: Option<String>,
    pub task_definition_arn: String,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// `detail.version`: grows with every change of the task.
    pub version: i64,
    pub containers: Vec<ContainerExit>,
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}

fn time(v: &serde_json::Value, key: &str) -> Result<Option<DateTime<Utc>>, EventError> {
    match v.get(key).and_then(|x| x.as_str()) {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| EventError::Malformed(format!("detail.{key}={s:?}: {e}"))),
    }
}

/// Reads an EventBridge event (shape: ECS developer guide, "Amazon ECS task state change
/// events").
pub fn parse_event(event: &serde_json::Value) -> Result<TaskStopped, EventError> {
    let source = event.get("source").and_then(|s| s.as_str()).unwrap_or("");
    let kind = event
        .get("detail-type")
        .and_then(|s| s.as_str())
        .unwrap_or("");
    if source != "aws.ecs" || kind != "ECS Task State Change" {
        return Err(EventError::NotATaskEvent(format!(
            "source {source:?}, detail-type {kind:?}"
        )));
    }
    let d = event
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| EventError::Malformed("no detail object".into()))?;
    let req = |key: &str| {
        text(d, key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EventError::Malformed(format!("detail.{key} is missing")))
    };
    let version = d
        .get("version")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| EventError::Malformed("detail.version is missing".into()))?;
    let containers = d
        .get("containers")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .map(|c| ContainerExit {
                    name: text(c, "name").unwrap_or_default(),
                    exit_code: c.get("exitCode").and_then(|x| x.as_i64()),
                    reason: text(c, "reason"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(TaskStopped {
        task_arn: req("taskArn")?,
        cluster_arn: req("clusterArn")?,
        group: req("group")?,
        last_status: req("lastStatus")?,
        started_by: text(d, "startedBy"),
        task_definition_arn: req("taskDefinitionArn")?,
        stop_code: text(d, "stopCode"),
        stopped_reason: text(d, "stoppedReason"),
        started_at: time(d, "startedAt")?,
        stopped_at: time(d, "stoppedAt")?,
        version,
        containers,
    })
}

/// Whether a stop says the new version is bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", content = "why", rename_all = "lowercase")]
pub enum StopClass {
    Counted(String),
    Ignored(String),
}

impl StopClass {
    pub fn counted(&self) -> bool {
        matches!(self, StopClass::Counted(_))
    }
}

/// Pull failures that mean the image or its platform does not exist (not a throttled or
/// transient pull): the `CannotPullContainerError` texts of the ECS troubleshooting guide.
const MISSING_IMAGE: [&str; 5] = [
    "not found",
    "manifest unknown",
    "does not contain descriptor matching platform",
    "no matching manifest",
    "repository does not exist",
];
/// Transient pull texts: never counted even when a missing-image text also appears.
const TRANSIENT_PULL: [&str; 5] = [
    "toomanyrequests",
    "rate exceeded",
    "i/o timeout",
    "context deadline exceeded",
    "connection reset",
];

/// Classifies one stopped task (pure). `never_healthy` is `NeverHealthySeconds`: a health-check
/// stop counts only for a task that ran at least that long (no healthy start is cut off).
pub fn classify(t: &TaskStopped, never_healthy: chrono::Duration) -> StopClass {
    let reason = t.stopped_reason.clone().unwrap_or_default();
    let lower = reason.to_lowercase();
    let all_reasons = t
        .containers
        .iter()
        .filter_map(|c| c.reason.as_deref())
        .chain(std::iter::once(reason.as_str()))
        .collect::<Vec<_>>()
        .join(" | ")
        .to_lowercase();
    match t.stop_code.as_deref() {
        Some("TaskFailedToStart") => {
            if TRANSIENT_PULL.iter().any(|p| all_reasons.contains(p)) {
                StopClass::Ignored(format!("transient start failure: {reason}"))
            } else if all_reasons.contains("cannotpullcontainererror")
                && MISSING_IMAGE.iter().any(|p| all_reasons.contains(p))
            {
                StopClass::Counted(format!("image or platform missing: {reason}"))
            } else {
                StopClass::Ignored(format!("start failure not known to be permanent: {reason}"))
            }
        }
        Some("EssentialContainerExited") => {
            match t
                .containers
                .iter()
                .find(|c| c.exit_code.is_some_and(|code| code != 0))
            {
                Some(c) => StopClass::Counted(format!(
                    "essential container {} exited with code {}",
                    c.name,
                    c.exit_code.unwrap_or_default()
                )),
                None => StopClass::Ignored("essential container exited with code 0".into()),
            }
        }
        Some("ServiceSchedulerInitiated") => {
            let health = lower.contains("failed elb health checks")
                || lower.contains("failed container health checks");
            if !health {
                // Scale-in, task-set deletion (the rollback's own) and infrastructure
                // replacements share the stop code and differ only in the reason.
                return StopClass::Ignored(format!("scheduler stop, not for health: {reason}"));
            }
            let ran = match (t.started_at, t.stopped_at) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            match ran {
                Some(ran) if ran >= never_healthy => StopClass::Counted(format!(
                    "{reason} after {} s running (NeverHealthySeconds {})",
                    ran.num_seconds(),
                    never_healthy.num_seconds()
                )),
                Some(ran) => StopClass::Ignored(format!(
                    "health-check stop after only {} s running, before NeverHealthySeconds: {reason}",
                    ran.num_seconds()
                )),
                None => StopClass::Ignored(format!(
                    "health-check stop of a task that never reached RUNNING: {reason}"
                )),
            }
        }
        Some(code @ ("SpotInterruption" | "TerminationNotice" | "UserInitiated")) => {
            StopClass::Ignored(format!("{code}: not the version's fault"))
        }
        other => StopClass::Ignored(format!("stop code {other:?}: not counted")),
    }
}

/// A task set as the watchdog needs it (from `DescribeServices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSetView {
    pub id: String,
    pub external_id: Option<String>,
    pub task_definition: String,
    pub status: String,
    pub target_group_arn: Option<String>,
    /// `TaskSet.createdAt`.
    pub created_at: Option<DateTime<Utc>>,
}

/// A deployment as the watchdog needs it (from `GetDeployment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    /// A rollback already under way: `rollbackInfo.rollbackDeploymentId` names one ("The ID of
    /// the deployment rollback", CodeDeploy API `RollbackInfo`). Not the mere presence of
    /// `rollbackInfo` or `errorInformation`: when CodeDeploy fills those on a deployment that is
    /// not rolling back is not documented, and a wrong "already stopping" would silence the
    /// watchdog. A second StopDeployment is harmless (DeploymentAlreadyCompletedException).
    pub stopping: bool,
}

/// What the event joined to the service says (pure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "join", content = "detail", rename_all = "snake_case")]
pub enum Join {
    /// The task belongs to this task set, whose externalId is this deployment.
    Green {
        task_set: String,
        deployment: String,
    },
    /// Logged, never acted on.
    Unmatched(String),
}

/// Joins a stopped task to the service's task sets by task definition ARN (pure). `startedBy`
/// is not read: that it equals the task set's id is not documented.
pub fn join(t: &TaskStopped, task_sets: &[TaskSetView]) -> Join {
    let td = &t.task_definition_arn;
    let sets: Vec<&TaskSetView> = task_sets
        .iter()
        .filter(|s| s.task_definition == *td)
        .collect();
    let set = match sets.as_slice() {
        [] => {
            return Join::Unmatched(format!(
                "no task set of the service runs {td} (gone, or not a task-set task)"
            ))
        }
        [one] => *one,
        many => {
            return Join::Unmatched(format!(
                "{} task sets run {td}: the task cannot be told to one",
                many.len()
            ))
        }
    };
    match set.external_id.as_deref().filter(|id| !id.is_empty()) {
        Some(d) => Join::Green {
            task_set: set.id.clone(),
            deployment: d.to_string(),
        },
        None => Join::Unmatched(format!(
            "task set {} has no externalId (deployment id)",
            set.id
        )),
    }
}

/// The decision for one stopped task (pure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "detail", rename_all = "snake_case")]
pub enum Decision {
    /// Stop this deployment with rollback (why).
    Stop { deployment: String, why: String },
    /// Nothing to do (why).
    Nothing(String),
}

/// Decides after a counted stop: the deployment must be in progress and not already stopping,
/// and `counted` (distinct green tasks stopped for counted causes, this one included) must reach
/// `n`.
pub fn decide(deployment: &DeploymentView, this: &StopClass, counted: usize, n: u32) -> Decision {
    if let Some(why) = nothing_to_count(deployment, this) {
        return Decision::Nothing(why);
    }
    if counted < n as usize {
        return Decision::Nothing(format!(
            "{counted} of {n} counted stops of the green task set"
        ));
    }
    Decision::Stop {
        deployment: deployment.id.clone(),
        why: format!("{counted} green tasks stopped for non-transient causes (threshold {n})"),
    }
}

/// Why no count of stops can lead to a stop (so the stopped tasks need not be read): the
/// deployment is not in progress, is already stopping, or this stop is not counted.
pub fn nothing_to_count(deployment: &DeploymentView, this: &StopClass) -> Option<String> {
    if deployment.status != "InProgress" {
        return Some(format!(
            "deployment {} is {}: nothing to stop",
            deployment.id, deployment.status
        ));
    }
    if deployment.stopping {
        return Some(format!(
            "deployment {} is already stopping or rolling back",
            deployment.id
        ));
    }
    if !this.counted() {
        return Some("this stop is not counted".into());
    }
    None
}

/// The scheduled check's verdict (pure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", content = "detail", rename_all = "snake_case")]
pub enum HealthVerdict {
    Healthy,
    /// Still inside GateReadinessSeconds of the task set's creation.
    Waiting(String),
    NeverHealthy(String),
}

/// Green must have a healthy target `budget` (GateReadinessSeconds) after its task set was
/// created (`created`).
pub fn health_verdict(
    now: DateTime<Utc>,
    created: Option<DateTime<Utc>>,
    healthy_targets: usize,
    budget: chrono::Duration,
) -> HealthVerdict {
    if healthy_targets > 0 {
        return HealthVerdict::Healthy;
    }
    let Some(created) = created else {
        return HealthVerdict::Waiting("the replacement task set has no creation time yet".into());
    };
    let waited = now - created;
    if waited >= budget {
        HealthVerdict::NeverHealthy(format!(
            "no healthy green target {} s after the replacement task set was created (GateReadinessSeconds {})",
            waited.num_seconds(),
            budget.num_seconds()
        ))
    } else {
        HealthVerdict::Waiting(format!(
            "{} s of {} s since the replacement task set was created",
            waited.num_seconds(),
            budget.num_seconds()
        ))
    }
}

/// How long past HookTimeoutSeconds a hook's lifecycle event may stay InProgress before the
/// hook counts as silent: by then its function has ended (the Lambda timeout is
/// HookTimeoutSeconds, its status call included) and, with no retries, nothing will report.
pub const HOOK_SILENCE_MARGIN_SECONDS: i64 = 60;

/// One lifecycle event of the deployment's ECS target (`BatchGetDeploymentTargets`,
/// `ecsTarget.lifecycleEvents[]`: `lifecycleEventName`, `startTime`, `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleView {
    pub name: String,
    pub status: String,
    pub start: Option<DateTime<Utc>>,
}

/// Whether a hook has gone silent (pure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "hooks", content = "detail", rename_all = "snake_case")]
pub enum HookVerdict {
    /// A hook's event has run HookTimeoutSeconds + the margin: stop the deployment (why).
    Silent(String),
    /// None has; the earliest instant one could (a hook event in progress), if any.
    Waiting(Option<DateTime<Utc>>),
}

/// Judges the lifecycle events of the deployment: only the events that run a hook (`hooks`, the
/// AppSpec's placement) count; Install and AllowTraffic legitimately run long (the canary).
pub fn hook_verdict(
    events: &[LifecycleView],
    hooks: &[&str],
    now: DateTime<Utc>,
    hook_timeout: chrono::Duration,
) -> HookVerdict {
    let limit = hook_timeout + chrono::Duration::seconds(HOOK_SILENCE_MARGIN_SECONDS);
    let mut next: Option<DateTime<Utc>> = None;
    for e in events
        .iter()
        .filter(|e| e.status == "InProgress" && hooks.contains(&e.name.as_str()))
    {
        let Some(start) = e.start else { continue };
        let due = start + limit;
        if now >= due {
            return HookVerdict::Silent(format!(
                "lifecycle event {} has been InProgress for {} s (HookTimeoutSeconds {} + {HOOK_SILENCE_MARGIN_SECONDS} s): its hook never reported",
                e.name,
                (now - start).num_seconds(),
                hook_timeout.num_seconds()
            ));
        }
        next = Some(next.map_or(due, |n| n.min(due)));
    }
    HookVerdict::Waiting(next)
}
