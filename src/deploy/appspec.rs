//! The ECS AppSpec of a CodeDeploy deployment, from the stack's outputs.
//!
//! It always carries the capacity-provider strategy (CodeDeploy drops the service's strategy when
//! the AppSpec omits it), the network configuration and platform version the template sets (the
//! Service* outputs: a stack update cannot change them on a CODE_DEPLOY service, a deployment
//! does; CodeDeploy User Guide, AppSpec 'resources' section for Amazon ECS: "All or none of the
//! settings under NetworkConfiguration must be specified"; without PlatformVersion "LATEST is used
//! by default") and the deployment gates (the `CodeDeployHook_*` validator functions).

use std::collections::BTreeMap;

use crate::gates::hook::Listener;

use serde::{Deserialize, Serialize};

/// What can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppSpecError {
    #[error("stack output {0} is missing (deploy the current template first)")]
    MissingOutput(&'static str),
    #[error("stack output {name} is not valid: {why}")]
    BadOutput { name: &'static str, why: String },
    #[error("{0:?} is not a task-definition ARN (arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>)")]
    BadTaskDefinition(String),
    #[error("FARGATE_SPOT supports only X86_64: the service's strategy has a Spot share and the task definition is ARM64")]
    SpotWithArm64,
    #[error("outputs file is neither `aws cloudformation describe-stacks` output nor a {{key: value}} map: {0}")]
    BadOutputsFile(String),
}

/// One capacity provider of the strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StrategyItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub base: u32,
    pub weight: u32,
}

/// Reads stack outputs from `aws cloudformation describe-stacks` JSON or a plain map.
pub fn parse_outputs(text: &str) -> Result<BTreeMap<String, String>, AppSpecError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| AppSpecError::BadOutputsFile(e.to_string()))?;
    if let Some(outputs) = v
        .get("Stacks")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("Outputs"))
        .and_then(|o| o.as_array())
    {
        return Ok(outputs
            .iter()
            .filter_map(|o| {
                Some((
                    o.get("OutputKey")?.as_str()?.to_string(),
                    o.get("OutputValue")?.as_str()?.to_string(),
                ))
            })
            .collect());
    }
    match v.as_object() {
        Some(m) if m.values().all(|x| x.is_string()) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()),
        _ => Err(AppSpecError::BadOutputsFile(
            "expected Stacks[0].Outputs or an object of strings".into(),
        )),
    }
}

#[derive(Debug, Serialize)]
struct Doc {
    version: f64,
    #[serde(rename = "Resources")]
    resources: Vec<TargetServiceEntry>,
    #[serde(rename = "Hooks")]
    hooks: Vec<BTreeMap<&'static str, String>>,
}

#[derive(Debug, Serialize)]
struct TargetServiceEntry {
    #[serde(rename = "TargetService")]
    target_service: TargetService,
}

#[derive(Debug, Serialize)]
struct TargetService {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Properties")]
    properties: Properties,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Properties {
    task_definition: String,
    load_balancer_info: LoadBalancerInfo,
    platform_version: String,
    network_configuration: NetworkConfiguration,
    capacity_provider_strategy: Vec<StrategyItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkConfiguration {
    awsvpc_configuration: Network,
}

/// The service's awsvpc settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: String,
}

/// What every deployment gives the service besides the task definition, as the template sets
/// it (the stack outputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    pub network: Network,
    pub platform_version: String,
    pub strategy: Vec<StrategyItem>,
}

fn id_list(
    outputs: &BTreeMap<String, String>,
    name: &'static str,
    prefix: &str,
) -> Result<Vec<String>, AppSpecError> {
    let items: Vec<String> = output(outputs, name)?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    match items
        .iter()
        .find(|s| !s.starts_with(prefix) || s.len() <= prefix.len())
    {
        Some(bad) => Err(AppSpecError::BadOutput {
            name,
            why: format!("{bad:?} is not a {prefix}... id"),
        }),
        None => Ok(items),
    }
}

/// The service settings from the stack outputs (ServiceSubnetIds, ServiceSecurityGroupIds,
/// ServiceAssignPublicIp, ServicePlatformVersion, CapacityProviderStrategy).
pub fn service_settings(
    outputs: &BTreeMap<String, String>,
) -> Result<ServiceSettings, AppSpecError> {
    let assign_public_ip = output(outputs, "ServiceAssignPublicIp")?.to_string();
    if !matches!(assign_public_ip.as_str(), "ENABLED" | "DISABLED") {
        return Err(AppSpecError::BadOutput {
            name: "ServiceAssignPublicIp",
            why: format!("{assign_public_ip:?} is neither ENABLED nor DISABLED"),
        });
    }
    Ok(ServiceSettings {
        network: Network {
            subnets: id_list(outputs, "ServiceSubnetIds", "subnet-")?,
            security_groups: id_list(outputs, "ServiceSecurityGroupIds", "sg-")?,
            assign_public_ip,
        },
        platform_version: output(outputs, "ServicePlatformVersion")?.to_string(),
        strategy: strategy(outputs)?,
    })
}

fn strategy(outputs: &BTreeMap<String, String>) -> Result<Vec<StrategyItem>, AppSpecError> {
    let strategy: Vec<StrategyItem> =
        serde_json::from_str(output(outputs, "CapacityProviderStrategy")?).map_err(|e| {
            AppSpecError::BadOutput {
                name: "CapacityProviderStrategy",
                why: e.to_string(),
            }
        })?;
    if strategy.is_empty() {
        return Err(AppSpecError::BadOutput {
            name: "CapacityProviderStrategy",
            why: "empty".into(),
        });
    }
    // The service runs on Fargate: its strategy names only the Fargate capacity providers.
    if let Some(other) = strategy
        .iter()
        .find(|s| !matches!(s.capacity_provider.as_str(), "FARGATE" | "FARGATE_SPOT"))
    {
        return Err(AppSpecError::BadOutput {
            name: "CapacityProviderStrategy",
            why: format!(
                "{:?} is not a Fargate capacity provider (FARGATE, FARGATE_SPOT)",
                other.capacity_provider
            ),
        });
    }
    Ok(strategy)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LoadBalancerInfo {
    container_name: String,
    container_port: u16,
}

fn output<'a>(
    o: &'a BTreeMap<String, String>,
    name: &'static str,
) -> Result<&'a str, AppSpecError> {
    o.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or(AppSpecError::MissingOutput(name))
}

fn valid_task_definition(arn: &str) -> bool {
    let p: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6
        && p[0] == "arn"
        && p[1].starts_with("aws")
        && p[2] == "ecs"
        && p[5].starts_with("task-definition/")
        && arn
            .rsplit(':')
            .next()
            .and_then(|rev| rev.parse::<u32>().ok())
            // Revisions start at 1 (ECS RegisterTaskDefinition): `:0` names nothing.
            .is_some_and(|rev| rev >= 1)
}

/// Where the gates run, in lifecycle order: the test-listener gate once test traffic reaches
/// green (AfterAllowTestTraffic) and again just before production moves (BeforeAllowTraffic),
/// the production-listener gate once production has moved (AfterAllowTraffic). The rehearsal
/// runs the same placement.
pub fn hook_placement() -> Vec<(&'static str, Listener)> {
    vec![
        ("AfterAllowTestTraffic", Listener::Test),
        ("BeforeAllowTraffic", Listener::Test),
        ("AfterAllowTraffic", Listener::Production),
    ]
}

/// The AppSpec (YAML) for deploying `task_definition`, whose CPU architecture is `arch`.
pub fn render(
    outputs: &BTreeMap<String, String>,
    task_definition: &str,
    arch: &str,
) -> Result<String, AppSpecError> {
    if !valid_task_definition(task_definition) {
        return Err(AppSpecError::BadTaskDefinition(task_definition.to_string()));
    }
    if !matches!(arch, "ARM64" | "X86_64") {
        return Err(AppSpecError::BadOutput {
            name: "CpuArchitecture",
            why: format!("{arch:?} is neither ARM64 nor X86_64"),
        });
    }
    let container_name = output(outputs, "ContainerName")?.to_string();
    let port_text = output(outputs, "ContainerPort")?;
    let container_port = port_text
        .parse::<u16>()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| AppSpecError::BadOutput {
            name: "ContainerPort",
            why: format!("{port_text:?} is not a port (1-65535)"),
        })?;
    let settings = service_settings(outputs)?;
    let strategy = settings.strategy.clone();
    let spot = strategy
        .iter()
        .any(|s| s.capacity_provider == "FARGATE_SPOT" && s.weight > 0);
    if spot && arch.eq_ignore_ascii_case("ARM64") {
        return Err(AppSpecError::SpotWithArm64);
    }
    let test_hook = output(outputs, "TestTrafficHookFunctionName")?.to_string();
    let prod_hook = output(outputs, "ProductionTrafficHookFunctionName")?.to_string();
    let doc = Doc {
        version: 0.0,
        resources: vec![TargetServiceEntry {
            target_service: TargetService {
                kind: "AWS::ECS::Service",
                properties: Properties {
                    task_definition: task_definition.to_string(),
                    load_balancer_info: LoadBalancerInfo {
                        container_name,
                        container_port,
                    },
                    platform_version: settings.platform_version,
                    network_configuration: NetworkConfiguration {
                        awsvpc_configuration: settings.network,
                    },
                    capacity_provider_strategy: strategy,
                },
            },
        }],
        hooks: hook_placement()
            .into_iter()
            .map(|(event, listener)| {
                let function = match listener {
                    Listener::Test => test_hook.clone(),
                    Listener::Production => prod_hook.clone(),
                };
                BTreeMap::from([(event, function)])
            })
            .collect(),
    };
    serde_norway::to_string(&doc).map_err(|e| AppSpecError::BadOutput {
        name: "CapacityProviderStrategy",
        why: e.to_string(),
    })
}
