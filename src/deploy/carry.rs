//! What a settings rollout must carry (pure): the differences between what the PRIMARY task set
//! runs and what the stack sets, its image aside.
//!
//! After a stack update the template's settings sit in the stack's TaskDefinition revision and
//! outputs (src/update/pins.rs: the service itself keeps its deployed values). `orderbroker
//! carry` compares them with the PRIMARY task set and, when anything differs, deploys the
//! running image digest with the stack's settings; when nothing differs it creates no
//! deployment, so a re-run after a failed carry retries exactly what is still missing.

use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition, TaskSet};

use crate::deploy::appspec::{Network, ServiceSettings, StrategyItem};

/// What the PRIMARY task set runs besides its task definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunningSettings {
    pub network: Option<Network>,
    pub platform_version: Option<String>,
    pub strategy: Vec<StrategyItem>,
}

impl RunningSettings {
    /// From DescribeServices' task set.
    pub fn of(task_set: &TaskSet) -> Self {
        let network = task_set
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .map(|a| Network {
                subnets: a.subnets().to_vec(),
                security_groups: a.security_groups().to_vec(),
                assign_public_ip: a
                    .assign_public_ip()
                    .map_or("DISABLED".to_string(), |x| x.as_str().to_string()),
            });
        RunningSettings {
            network,
            platform_version: task_set.platform_version().map(str::to_string),
            strategy: task_set
                .capacity_provider_strategy()
                .iter()
                .map(|s| StrategyItem {
                    capacity_provider: s.capacity_provider().to_string(),
                    base: u32::try_from(s.base()).unwrap_or(0),
                    weight: u32::try_from(s.weight()).unwrap_or(0),
                })
                .collect(),
        }
    }
}

/// Every difference a rollout must carry, in words; empty: nothing to carry.
pub fn differences(
    running_td: &TaskDefinition,
    running: &RunningSettings,
    wanted_td: &TaskDefinition,
    wanted: &ServiceSettings,
    container: &str,
) -> Vec<String> {
    let mut out = task_definition_differences(running_td, wanted_td, container);
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    match &running.network {
        Some(n) => {
            if sorted(&n.subnets) != sorted(&wanted.network.subnets) {
                out.push(format!(
                    "subnets {} -> {}",
                    n.subnets.join(","),
                    wanted.network.subnets.join(",")
                ));
            }
            if sorted(&n.security_groups) != sorted(&wanted.network.security_groups) {
                out.push(format!(
                    "security groups {} -> {}",
                    n.security_groups.join(","),
                    wanted.network.security_groups.join(",")
                ));
            }
            if n.assign_public_ip != wanted.network.assign_public_ip {
                out.push(format!(
                    "public IP {} -> {}",
                    n.assign_public_ip, wanted.network.assign_public_ip
                ));
            }
        }
        None => out.push("network configuration (the task set reports none)".into()),
    }
    // LATEST is whatever Fargate's latest is when tasks start (ECS Developer Guide, "Fargate
    // platform versions"): a task set that reports a concrete version satisfies it. Assumption
    // (not verified): a task set created with LATEST reports the version it resolved to.
    match (&running.platform_version, wanted.platform_version.as_str()) {
        (_, "LATEST") => {}
        (Some(r), w) if r == w => {}
        (r, w) => out.push(format!(
            "platform version {} -> {w}",
            r.as_deref().unwrap_or("(none)")
        )),
    }
    // Assumption (not verified): a task set reports the strategy's base as the AppSpec gave it
    // (a task set that reported 0 would make every run carry once more, harmlessly).
    let key = |s: &[StrategyItem]| {
        let mut v: Vec<(String, u32, u32)> = s
            .iter()
            .map(|i| (i.capacity_provider.clone(), i.base, i.weight))
            .collect();
        v.sort();
        v
    };
    if key(&running.strategy) != key(&wanted.strategy) {
        let show = |s: &[StrategyItem]| {
            s.iter()
                .map(|i| {
                    format!(
                        "{} base {} weight {}",
                        i.capacity_provider, i.base, i.weight
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "capacity-provider strategy [{}] -> [{}]",
            show(&running.strategy),
            show(&wanted.strategy)
        ));
    }
    out
}

/// The task-definition settings that differ, the service container's image left out (the
/// rollout keeps the running one).
pub fn task_definition_differences(
    running: &TaskDefinition,
    wanted: &TaskDefinition,
    container: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, differs: bool| {
        if differs {
            out.push(format!("task definition {name}"));
        }
    };
    field("cpu", running.cpu() != wanted.cpu());
    field("memory", running.memory() != wanted.memory());
    field(
        "runtime platform",
        running.runtime_platform() != wanted.runtime_platform(),
    );
    field(
        "task role",
        running.task_role_arn() != wanted.task_role_arn(),
    );
    field(
        "execution role",
        running.execution_role_arn() != wanted.execution_role_arn(),
    );
    field("volumes", running.volumes() != wanted.volumes());
    field(
        "network mode",
        running.network_mode() != wanted.network_mode(),
    );
    field(
        "ephemeral storage",
        running.ephemeral_storage() != wanted.ephemeral_storage(),
    );
    field(
        "requires compatibilities",
        running.requires_compatibilities() != wanted.requires_compatibilities(),
    );
    field("pid mode", running.pid_mode() != wanted.pid_mode());
    field("ipc mode", running.ipc_mode() != wanted.ipc_mode());
    field(
        "placement constraints",
        running.placement_constraints() != wanted.placement_constraints(),
    );
    let name = |d: &ContainerDefinition| d.name().unwrap_or_default().to_string();
    let mut names: Vec<String> = running
        .container_definitions()
        .iter()
        .chain(wanted.container_definitions())
        .map(name)
        .collect();
    names.sort();
    names.dedup();
    for n in names {
        let find = |td: &TaskDefinition| {
            td.container_definitions()
                .iter()
                .find(|d| name(d) == n)
                .cloned()
        };
        match (find(running), find(wanted)) {
            (Some(mut r), Some(mut w)) => {
                if n == container {
                    r.image = None;
                    w.image = None;
                }
                out.extend(
                    container_differences(&r, &w)
                        .into_iter()
                        .map(|f| format!("container {n} {f}")),
                );
            }
            (None, Some(_)) => out.push(format!("container {n} added")),
            (Some(_), None) => out.push(format!("container {n} removed")),
            (None, None) => {}
        }
    }
    out
}

fn container_differences(r: &ContainerDefinition, w: &ContainerDefinition) -> Vec<String> {
    let sorted_env = |d: &ContainerDefinition| {
        let mut v: Vec<(String, String)> = d
            .environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap_or_default().to_string(),
                    kv.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let checks: [(&str, bool); 16] = [
        ("image", r.image() != w.image()),
        ("environment", sorted_env(r) != sorted_env(w)),
        ("stop timeout", r.stop_timeout() != w.stop_timeout()),
        ("start timeout", r.start_timeout() != w.start_timeout()),
        ("health check", r.health_check() != w.health_check()),
        ("port mappings", r.port_mappings() != w.port_mappings()),
        (
            "log configuration",
            r.log_configuration() != w.log_configuration(),
        ),
        ("ulimits", r.ulimits() != w.ulimits()),
        ("mount points", r.mount_points() != w.mount_points()),
        (
            "read-only root filesystem",
            r.readonly_root_filesystem() != w.readonly_root_filesystem(),
        ),
        ("essential", r.essential() != w.essential()),
        ("secrets", r.secrets() != w.secrets()),
        ("command", r.command() != w.command()),
        ("entry point", r.entry_point() != w.entry_point()),
        ("cpu", r.cpu() != w.cpu()),
        (
            "memory",
            r.memory() != w.memory() || r.memory_reservation() != w.memory_reservation(),
        ),
    ];
    let mut out: Vec<String> = checks
        .iter()
        .filter(|(_, d)| *d)
        .map(|(n, _)| n.to_string())
        .collect();
    if out.is_empty() {
        let mut r = r.clone();
        let mut w = w.clone();
        // Compared above (order-free for the environment).
        r.environment = None;
        w.environment = None;
        if r != w {
            out.push("other settings".into());
        }
    }
    out
}

/// The running image pinned to its digest: `<registry>/<repository>@<digest>` from the task
/// definition's image reference (a tag or a digest) and the digest the tasks report.
pub fn digest_image(running_uri: &str, digest: &str) -> Result<String, crate::deploy::DeployError> {
    let img = crate::deploy::parse_image(running_uri)?;
    if !digest.starts_with("sha256:") || digest.len() != 71 {
        return Err(crate::deploy::DeployError::Response(format!(
            "{digest:?} is not an image digest (sha256:<64 hex>)"
        )));
    }
    let host = running_uri.split('/').next().unwrap_or_default();
    Ok(format!("{host}/{}@{digest}", img.repository))
}

/// The one digest the running tasks report for the service container (DescribeTasks
/// `containers[].imageDigest`). ECS resolves an image tag to one digest so that "all tasks in a
/// service always run identical container images" (ECS API Reference, ContainerImage; the
/// Developer Guide's "Container image resolution"); that it holds for a CODE_DEPLOY task set is
/// an assumption, so two digests, or none, is refused rather than guessed.
pub fn one_digest(
    digests: &[(String, Option<String>)],
) -> Result<String, crate::deploy::DeployError> {
    let mut seen: Vec<&str> = digests.iter().filter_map(|(_, d)| d.as_deref()).collect();
    seen.sort();
    seen.dedup();
    match seen.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(crate::deploy::DeployError::Response(format!(
            "none of the {} running task(s) of the PRIMARY task set reports an image digest",
            digests.len()
        ))),
        many => Err(crate::deploy::DeployError::Response(format!(
            "the PRIMARY task set's tasks run different image digests ({}): deploy one version with `orderbroker deploy --image <uri>@<digest>`",
            many.join(", ")
        ))),
    }
}
