//! Deployments of new OrderBroker versions through CodeDeploy, as plain decisions: which image
//! reference, whether the image has the platform, whether now is a spike window, whether the
//! Fargate quota holds a second (green) task set, the derived task-definition revision, what a
//! deployment's progress means, and which alarms a hotfix may ignore. The AWS calls are in
//! [`crate::deploy_aws`].

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::appspec::StrategyItem;
use crate::calendar::{local_date, Calendar, CalendarError};
use crate::warmup::{self, Settings, Window};

/// Why a deployment, rollback or stack update is refused or did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeployError {
    #[error("{0:?} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>); the task execution role pulls only from the stack's ECR repository")]
    NotEcrImage(String),
    #[error("image {image} not found in ECR ({why})")]
    ImageNotFound { image: String, why: String },
    #[error("image {image} has no linux/{wanted} platform (it has: {has}); build it for {arch} or deploy with --arch matching the image")]
    WrongPlatform {
        image: String,
        arch: String,
        wanted: String,
        has: String,
    },
    #[error("cannot read the manifest of {image}: {why}")]
    BadManifest { image: String, why: String },
    #[error("deployment {id} is already in progress ({status}) in deployment group {group}: wait for it (`orderbroker deploy --wait` shows it), or stop it with `orderbroker rollback --deployment {id}`")]
    InProgress {
        id: String,
        status: String,
        group: String,
    },
    /// Inside or near a spike window (`spike` = open | close; `detail` says when and why).
    #[error("{detail}")]
    SpikeWindow { spike: String, detail: String },
    #[error("Fargate {class} vCPU quota cannot hold the green task set: needs {needed} vCPU ({tasks} tasks x {task_vcpu} vCPU), quota {quota} - in use {usage} = {headroom} free; raise Service Quotas fargate/{code} or scale in first (--force skips this check)")]
    Quota {
        class: &'static str,
        code: &'static str,
        needed: f64,
        tasks: u32,
        task_vcpu: f64,
        quota: f64,
        usage: f64,
        headroom: f64,
    },
    #[error("cannot read Fargate {class} vCPU usage (CloudWatch AWS/Usage ResourceCount has no datapoint in the last 15 minutes): check CloudWatch access, or --force to skip the quota check")]
    UsageUnknown { class: &'static str },
    #[error("task definition {arn}: {why}")]
    TaskDefinition { arn: String, why: String },
    #[error("{0}")]
    Aws(String),
    #[error("{0}")]
    Input(String),
}

/// An image in ECR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry_id: String,
    pub region: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Parses `<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@sha256:...]` (no tag = `latest`,
/// as Docker reads it).
pub fn parse_image(uri: &str) -> Result<ImageRef, DeployError> {
    let bad = || DeployError::NotEcrImage(uri.to_string());
    let (host, rest) = uri.split_once('/').ok_or_else(bad)?;
    let labels: Vec<&str> = host.split('.').collect();
    let is_ecr = labels.len() >= 6
        && labels[1] == "dkr"
        && (labels[2] == "ecr" || labels[2] == "ecr-fips")
        && labels[0].len() == 12
        && labels[0].chars().all(|c| c.is_ascii_digit())
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
    if !is_ecr {
        return Err(bad());
    }
    let (repo, tag, digest) = if let Some((repo, digest)) = rest.split_once('@') {
        if !digest.starts_with("sha256:") || digest.len() != 71 {
            return Err(bad());
        }
        (repo, None, Some(digest.to_string()))
    } else {
        match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string()), None),
            _ => (rest, Some("latest".to_string()), None),
        }
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    };
    if !valid(repo) || tag.as_deref().is_some_and(str::is_empty) {
        return Err(bad());
    }
    Ok(ImageRef {
        registry_id: labels[0].to_string(),
        region: labels[3].to_string(),
        repository: repo.to_string(),
        tag,
        digest,
    })
}

/// One platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a manifest says about platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A multi-platform image (OCI index or Docker manifest list): its platforms.
    Index(Vec<Platform>),
    /// A single-platform image: the platform is in its config blob.
    Single { config_digest: String },
}

/// The media types asked from ECR, so it returns a multi-platform index as it is.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Reads an image manifest (its media type from ECR, or from the document itself).
pub fn parse_manifest(media_type: Option<&str>, body: &str) -> Result<Manifest, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let media = media_type
        .map(str::to_string)
        .or_else(|| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_default();
    if let Some(list) = v["manifests"].as_array() {
        let platforms = list
            .iter()
            .filter_map(|m| {
                let p = &m["platform"];
                Some(Platform {
                    os: p["os"].as_str()?.to_string(),
                    architecture: p["architecture"].as_str()?.to_string(),
                    variant: p["variant"].as_str().map(str::to_string),
                })
            })
            // Attestation manifests (buildx provenance) say unknown/unknown: not a platform.
            .filter(|p| p.os != "unknown")
            .collect();
        return Ok(Manifest::Index(platforms));
    }
    if media.contains("manifest.v1+json") && media.contains("oci")
        || media.contains("manifest.v2+json")
        || v["config"].is_object()
    {
        let digest = v["config"]["digest"]
            .as_str()
            .ok_or("image manifest has no config.digest")?;
        return Ok(Manifest::Single {
            config_digest: digest.to_string(),
        });
    }
    Err(format!(
        "unsupported manifest media type {media:?} (schema 1 images cannot run on Fargate)"
    ))
}

/// The platform in an image config blob.
pub fn platform_from_config(body: &[u8]) -> Result<Platform, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("image config is not JSON: {e}"))?;
    Ok(Platform {
        os: v["os"]
            .as_str()
            .ok_or("image config has no os")?
            .to_string(),
        architecture: v["architecture"]
            .as_str()
            .ok_or("image config has no architecture")?
            .to_string(),
        variant: v["variant"].as_str().map(str::to_string),
    })
}

/// The OCI architecture name of an ECS `CpuArchitecture`.
pub fn oci_arch(cpu_architecture: &str) -> Result<&'static str, DeployError> {
    match cpu_architecture.to_ascii_uppercase().as_str() {
        "ARM64" => Ok("arm64"),
        "X86_64" => Ok("amd64"),
        other => Err(DeployError::Input(format!(
            "architecture {other:?} is not ARM64 or X86_64"
        ))),
    }
}

/// Refuses unless the image's platforms include linux/<arch> (ARM64 -> arm64, v8 or no variant).
pub fn check_platform(image: &str, arch: &str, platforms: &[Platform]) -> Result<(), DeployError> {
    let wanted = oci_arch(arch)?;
    let ok = platforms.iter().any(|p| {
        p.os == "linux"
            && p.architecture == wanted
            && (wanted != "arm64" || matches!(p.variant.as_deref(), None | Some("v8")))
    });
    if ok {
        return Ok(());
    }
    Err(DeployError::WrongPlatform {
        image: image.to_string(),
        arch: arch.to_ascii_uppercase(),
        wanted: wanted.to_string(),
        has: if platforms.is_empty() {
            "none".to_string()
        } else {
            platforms
                .iter()
                .map(Platform::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// The spike window a change starting now and lasting `span` would touch: the warm-up's windows,
/// from the capacity raise to the spike's end.
pub fn spike_window(
    calendar: &Calendar,
    now: DateTime<Utc>,
    span: Duration,
    settings: &Settings,
) -> Result<Option<Window>, CalendarError> {
    let end = now + span;
    let mut dates = vec![local_date(now)];
    if local_date(end) != dates[0] {
        dates.push(local_date(end));
    }
    for date in dates {
        if let Some(session) = calendar.session(date)? {
            for w in warmup::windows(&session, settings) {
                if now < w.spike_end && w.raise_at < end {
                    return Ok(Some(w));
                }
            }
        }
    }
    Ok(None)
}

/// The refusal for a window hit.
pub fn window_refusal(now: DateTime<Utc>, margin: Duration, w: &Window) -> DeployError {
    let tz = crate::calendar::EXCHANGE_TZ;
    let hm = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let spike = format!("{:?}", w.spike).to_lowercase();
    DeployError::SpikeWindow {
        detail: format!(
            "now ({} New York) is inside or within {} min of the {spike} spike window of {} ({}-{} New York, capacity raised from {}): deployments and stack updates stay out of the spike (a deployment doubles the tasks and moves traffic); wait until {}, or --force",
            hm(now),
            margin.num_minutes(),
            w.session,
            hm(w.spike_start),
            hm(w.spike_end),
            hm(w.raise_at),
            hm(w.spike_end)
        ),
        spike,
    }
}

/// The trading calendar and warm-up window settings a stack runs with (its `MarketClosures`,
/// `WarmupLeadMinutes`, `WarmupTaskStartSeconds` parameters; defaults where absent).
pub fn schedule_from_parameters(
    params: &std::collections::BTreeMap<String, String>,
) -> Result<(Calendar, Settings), DeployError> {
    let calendar = Calendar::new()
        .with_closures(params.get("MarketClosures").map_or("", String::as_str))
        .map_err(|e| DeployError::Input(format!("parameter MarketClosures: {e}")))?;
    let mut settings = Settings::default();
    let num = |name: &str, default: i64| -> Result<i64, DeployError> {
        match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| DeployError::Input(format!("parameter {name}={v:?} is not a number"))),
        }
    };
    settings.lead_minutes = num("WarmupLeadMinutes", settings.lead_minutes)?;
    settings.task_start_seconds = num("WarmupTaskStartSeconds", settings.task_start_seconds)?;
    Ok((calendar, settings))
}

/// Tasks of one task set per capacity provider, as ECS places them: `base` first, the rest by
/// weight (rounded up on each side: the check is conservative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub on_demand: u32,
    pub spot: u32,
}

pub fn place(tasks: u32, strategy: &[StrategyItem]) -> Placement {
    let base_od: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE")
        .map(|s| s.base)
        .sum();
    let base_spot: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE_SPOT")
        .map(|s| s.base)
        .sum();
    let w_od: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE")
        .map(|s| s.weight)
        .sum();
    let w_spot: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE_SPOT")
        .map(|s| s.weight)
        .sum();
    let od_base = base_od.min(tasks);
    let spot_base = base_spot.min(tasks - od_base);
    let rest = tasks - od_base - spot_base;
    let total_w = w_od + w_spot;
    if total_w == 0 {
        return Placement {
            on_demand: od_base + if w_spot == 0 { rest } else { 0 },
            spot: spot_base,
        };
    }
    let share = |w: u32| (u64::from(rest) * u64::from(w)).div_ceil(u64::from(total_w)) as u32;
    Placement {
        on_demand: od_base + share(w_od).min(rest),
        spot: spot_base + share(w_spot).min(rest),
    }
}

/// Quota and usage of one Fargate class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassUsage {
    pub quota: f64,
    pub usage: Option<f64>,
}

/// What the quota check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaReport {
    pub green_tasks: u32,
    pub task_vcpu: f64,
    pub placement: Placement,
    pub lines: Vec<String>,
}

pub const ON_DEMAND_QUOTA: &str = "L-3032A538";
pub const SPOT_QUOTA: &str = "L-36FBB829";

/// Does the account's Fargate quota hold a full green task set (`green_tasks`, the service's
/// desired count) on top of what runs now?
pub fn check_quota(
    green_tasks: u32,
    task_vcpu: f64,
    strategy: &[StrategyItem],
    on_demand: ClassUsage,
    spot: Option<ClassUsage>,
) -> Result<QuotaReport, DeployError> {
    let placement = place(green_tasks, strategy);
    let mut lines = Vec::new();
    let classes = [
        (
            "On-Demand",
            ON_DEMAND_QUOTA,
            placement.on_demand,
            Some(on_demand),
        ),
        ("Spot", SPOT_QUOTA, placement.spot, spot),
    ];
    for (class, code, tasks, usage) in classes {
        if tasks == 0 {
            continue;
        }
        let Some(ClassUsage { quota, usage }) = usage else {
            return Err(DeployError::UsageUnknown { class });
        };
        let usage = usage.ok_or(DeployError::UsageUnknown { class })?;
        let needed = f64::from(tasks) * task_vcpu;
        let headroom = quota - usage;
        if needed > headroom {
            return Err(DeployError::Quota {
                class,
                code,
                needed,
                tasks,
                task_vcpu,
                quota,
                usage,
                headroom,
            });
        }
        lines.push(format!(
            "Fargate {class} vCPU: green needs {needed} ({tasks} x {task_vcpu}), quota {quota} - in use {usage} = {headroom} free"
        ));
    }
    Ok(QuotaReport {
        green_tasks,
        task_vcpu,
        placement,
        lines,
    })
}

/// vCPU of a task-definition `cpu` value (CPU units, or "2 vCPU").
pub fn task_vcpu(cpu: &str) -> Option<f64> {
    let t = cpu.trim();
    if let Some(v) = t.strip_suffix("vCPU").or_else(|| t.strip_suffix("vcpu")) {
        return v.trim().parse().ok();
    }
    t.parse::<f64>().ok().map(|units| units / 1024.0)
}

/// The new revision: the current one with `container`'s image and the CPU architecture replaced,
/// nothing else changed.
pub fn derive_task_definition(
    current: &aws_sdk_ecs::types::TaskDefinition,
    container: &str,
    image: &str,
    arch: &str,
) -> Result<aws_sdk_ecs::types::TaskDefinition, DeployError> {
    use aws_sdk_ecs::types::{CpuArchitecture, OsFamily, RuntimePlatform};
    let arn = current.task_definition_arn().unwrap_or("?").to_string();
    let mut next = current.clone();
    let defs = next.container_definitions.get_or_insert_with(Vec::new);
    let names: Vec<String> = defs
        .iter()
        .filter_map(|d| d.name().map(str::to_string))
        .collect();
    let def = defs
        .iter_mut()
        .find(|d| d.name() == Some(container))
        .ok_or_else(|| DeployError::TaskDefinition {
            arn: arn.clone(),
            why: format!(
                "no container named {container:?} (it has {}); the stack's ContainerName output names the one behind the load balancer",
                names.join(", ")
            ),
        })?;
    def.image = Some(image.to_string());
    oci_arch(arch)?;
    let os = current
        .runtime_platform()
        .and_then(|p| p.operating_system_family().cloned())
        .unwrap_or(OsFamily::Linux);
    next.runtime_platform = Some(
        RuntimePlatform::builder()
            .cpu_architecture(CpuArchitecture::from(arch.to_ascii_uppercase().as_str()))
            .operating_system_family(os)
            .build(),
    );
    Ok(next)
}

/// One look at a deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub deployment_id: String,
    pub status: String,
    /// Lifecycle events in order, with their status.
    pub events: Vec<(String, String)>,
    /// Task sets: label (Blue/Green), traffic %, running/desired.
    pub task_sets: Vec<TaskSetView>,
    pub error: Option<String>,
    pub rollback_id: Option<String>,
    pub rollback_message: Option<String>,
    pub auto_rollback: bool,
    /// When CodeDeploy created and completed it.
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Start and end of each lifecycle event (for phase timings).
    pub event_times: Vec<EventTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventTime {
    pub name: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl EventTime {
    pub fn seconds(&self) -> Option<f64> {
        Some((self.end? - self.start?).num_milliseconds() as f64 / 1000.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskSetView {
    /// ECS task-set id.
    pub id: String,
    pub label: String,
    pub traffic: f64,
    pub running: i64,
    pub desired: i64,
    pub target_group: String,
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Phase {
    Running,
    Succeeded,
    /// Failed or stopped; a rollback may follow.
    Ended,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "Succeeded" => Phase::Succeeded,
        "Failed" | "Stopped" => Phase::Ended,
        _ => Phase::Running,
    }
}

/// Statuses of a deployment that still holds the deployment group.
pub const ACTIVE_STATUSES: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

/// What changed between two looks, as lines for the operator.
pub fn progress_lines(prev: Option<&Snapshot>, next: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let id = &next.deployment_id;
    if prev.is_none_or(|p| p.status != next.status) {
        out.push(format!("{id}: deployment {}", next.status));
    }
    for (name, status) in &next.events {
        let before = prev.and_then(|p| p.events.iter().find(|(n, _)| n == name).map(|(_, s)| s));
        if before != Some(status) && status != "Pending" {
            out.push(format!("{id}: {name} {status}"));
        }
    }
    let traffic = |s: &Snapshot| {
        s.task_sets
            .iter()
            .map(|t| {
                format!(
                    "{} {}% ({}/{} running, {})",
                    t.label, t.traffic, t.running, t.desired, t.target_group
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let now = traffic(next);
    if !now.is_empty() && prev.is_none_or(|p| traffic(p) != now) {
        out.push(format!("{id}: traffic {now}"));
    }
    if let Some(e) = &next.error {
        if prev.is_none_or(|p| p.error.as_ref() != Some(e)) {
            out.push(format!("{id}: error: {e}"));
        }
    }
    out
}

/// The one-line summary a terminal shows while waiting.
pub fn status_line(s: &Snapshot, elapsed: std::time::Duration) -> String {
    let current = s
        .events
        .iter()
        .find(|(_, st)| st == "InProgress")
        .map(|(n, _)| n.as_str())
        .unwrap_or("-");
    let green = s
        .task_sets
        .iter()
        .find(|t| t.label == "Green")
        .map(|t| format!("green {}%", t.traffic))
        .unwrap_or_default();
    format!(
        "[{:>4}s] {} {} {} {}",
        elapsed.as_secs(),
        s.deployment_id,
        s.status,
        current,
        green
    )
}

/// The reason a failed deployment gives.
pub fn failure_reason(s: &Snapshot) -> String {
    let failed_event = s
        .events
        .iter()
        .find(|(_, st)| st == "Failed")
        .map(|(n, _)| format!("lifecycle event {n} failed"));
    let parts: Vec<String> = [failed_event, s.error.clone(), s.rollback_message.clone()]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        return format!("deployment {}", s.status);
    }
    parts.join("; ").chars().take(2000).collect()
}

/// How a followed deployment ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Outcome {
    Succeeded {
        deployment_id: String,
    },
    /// Failed or stopped with no rollback deployment.
    Failed {
        deployment_id: String,
        status: String,
        reason: String,
    },
    /// Failed or stopped, and CodeDeploy rolled back through `rollback_id`.
    RolledBack {
        deployment_id: String,
        reason: String,
        rollback_id: String,
        rollback_status: String,
    },
    /// The wait ran out; the deployment goes on.
    TimedOut {
        deployment_id: String,
        status: String,
    },
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Succeeded { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Succeeded { deployment_id } => {
                format!("deployment {deployment_id} succeeded: the new version holds all traffic")
            }
            Outcome::Failed {
                deployment_id,
                status,
                reason,
            } => format!("deployment {deployment_id} {status}: {reason}"),
            Outcome::RolledBack {
                deployment_id,
                reason,
                rollback_id,
                rollback_status,
            } => format!(
                "deployment {deployment_id} rolled back ({reason}); rollback deployment {rollback_id} {rollback_status}{}",
                if rollback_status == "Succeeded" {
                    ": the previous version holds all traffic"
                } else {
                    ": CHECK THE SERVICE, the rollback did not complete"
                }
            ),
            Outcome::TimedOut {
                deployment_id,
                status,
            } => format!(
                "stopped waiting; deployment {deployment_id} is still {status} (follow it with `orderbroker status`)"
            ),
        }
    }
}

/// For `--override-alarms`: the deployment group's alarms that are not firing now stay armed;
/// the firing ones are ignored for this deployment. Returns (kept, ignored).
pub fn split_alarms(group_alarms: &[String], firing: &[String]) -> (Vec<String>, Vec<String>) {
    group_alarms
        .iter()
        .cloned()
        .partition(|a| !firing.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(od_base: u32, od_w: u32, spot_w: u32) -> Vec<StrategyItem> {
        let mut s = vec![StrategyItem {
            capacity_provider: "FARGATE".into(),
            base: od_base,
            weight: od_w,
        }];
        if spot_w > 0 {
            s.push(StrategyItem {
                capacity_provider: "FARGATE_SPOT".into(),
                base: 0,
                weight: spot_w,
            });
        }
        s
    }

    #[test]
    fn placement_follows_base_then_weight() {
        assert_eq!(
            place(6, &strategy(3, 1, 0)),
            Placement {
                on_demand: 6,
                spot: 0
            }
        );
        assert_eq!(
            place(7, &strategy(3, 1, 1)),
            Placement {
                on_demand: 5,
                spot: 2
            }
        );
        assert_eq!(
            place(2, &strategy(3, 1, 3)),
            Placement {
                on_demand: 2,
                spot: 0
            }
        );
    }

    #[test]
    fn vcpu_of_cpu_values() {
        assert_eq!(task_vcpu("2048"), Some(2.0));
        assert_eq!(task_vcpu("1 vCPU"), Some(1.0));
        assert_eq!(task_vcpu("lots"), None);
    }

    #[test]
    fn image_uris() {
        let i =
            parse_image("123456789012.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.2").unwrap();
        assert_eq!(i.registry_id, "123456789012");
        assert_eq!(i.region, "us-east-2");
        assert_eq!(i.repository, "orderbroker");
        assert_eq!(i.tag.as_deref(), Some("1.4.2"));
        let d = format!(
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/team/orderbroker@sha256:{}",
            "a".repeat(64)
        );
        let i = parse_image(&d).unwrap();
        assert_eq!(i.repository, "team/orderbroker");
        assert!(i.digest.is_some() && i.tag.is_none());
        for bad in [
            "docker.io/library/nginx:1",
            "nginx",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/x@sha256:short",
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/x:",
        ] {
            assert!(parse_image(bad).is_err(), "{bad}");
        }
    }
}
