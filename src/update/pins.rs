//! The service's rollout properties held where the deployed stack has them (pure).
//!
//! A stack update must never change the CODE_DEPLOY service's task definition, network
//! configuration, platform version, capacity-provider strategy or container name and port:
//! ECS refuses them in UpdateService ("If the network configuration, platform version, task
//! definition, or load balancer need to be updated, create a new CodeDeploy deployment", ECS
//! API Reference, UpdateService) and the stack update fails (cloudformation-coverage-roadmap
//! issue 1529; aws-cdk issue 36012: a changed TaskDefinition value alone fails it). So on an
//! existing stack `make deploy` passes the `Pinned*` parameters: each holds the value the
//! deployed stack already gives the service, so CloudFormation sees no change there, while the
//! template's own values (its TaskDefinition resource, the outputs the AppSpec is built from)
//! take the change, and a rollout carries it (`orderbroker carry`).
//!
//! Pinned to what the stack gave the service, not to what runs: after a rollout the running
//! revision differs from the stack's, and sending it would itself be a TaskDefinition change.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cfn::resolve::ResolveError;
use crate::update::Side;

/// The pin parameters of template.yaml, in order.
pub const PIN_PARAMETERS: [&str; 9] = [
    "PinnedTaskDefinitionArn",
    "PinnedSubnetIds",
    "PinnedSecurityGroupIds",
    "PinnedAssignPublicIp",
    "PinnedPlatformVersion",
    "PinnedOnDemandBaseTasks",
    "PinnedSpotWeight",
    "PinnedContainerName",
    "PinnedContainerPort",
];

/// What cannot be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("the deployed template has no ECS service with the CODE_DEPLOY controller")]
    NoService,
    #[error("the deployed service {id}: {source}")]
    Resolve {
        id: String,
        #[source]
        source: ResolveError,
    },
    #[error("the deployed service's {what} is {value}, which the template's Pinned* parameters cannot hold ({why}); procedure: docs/stack-updates.md, 'When the pins cannot hold the deployed service'")]
    Shape {
        what: &'static str,
        value: String,
        why: &'static str,
    },
}

/// The deployed service's rollout properties as `Pinned*` parameter values.
pub fn pins(deployed: &Side<'_>) -> Result<Vec<(String, String)>, PinError> {
    let t = deployed.template;
    let svc = crate::update::serving(deployed)
        .services
        .into_iter()
        .next()
        .and_then(|id| t.resource(&id).map(|r| (id, r)))
        .ok_or(PinError::NoService)?;
    let (id, r) = svc;
    let props = deployed
        .parameters
        .resolve(t, r.properties())
        .map_err(|source| PinError::Resolve {
            id: id.clone(),
            source,
        })?;
    let text = |what: &'static str, v: Option<&Value>| -> Result<String, PinError> {
        match v {
            Some(Value::String(s)) if physical(t, s) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            other => Err(PinError::Shape {
                what,
                value: other.map_or("absent".to_string(), |v| v.to_string()),
                why: "not a value the stack knows",
            }),
        }
    };
    let list = |what: &'static str, v: Option<&Value>| -> Result<String, PinError> {
        let items = v.and_then(Value::as_array).ok_or(PinError::Shape {
            what,
            value: v.map_or("absent".to_string(), |v| v.to_string()),
            why: "not a list",
        })?;
        let texts: Vec<String> = items
            .iter()
            .map(|x| text(what, Some(x)))
            .collect::<Result<_, _>>()?;
        if texts.is_empty() || texts.iter().any(|s| s.contains(',')) {
            return Err(PinError::Shape {
                what,
                value: format!("{texts:?}"),
                why: "empty, or an item with a comma",
            });
        }
        Ok(texts.join(","))
    };
    let vpc = props
        .get("NetworkConfiguration")
        .and_then(|n| n.get("AwsvpcConfiguration"));
    let lbs = props
        .get("LoadBalancers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let [lb] = lbs.as_slice() else {
        return Err(PinError::Shape {
            what: "LoadBalancers",
            value: Value::Array(lbs.clone()).to_string(),
            why: "not exactly one load balancer",
        });
    };
    let (base, spot) = strategy(props.get("CapacityProviderStrategy"))?;
    let out = vec![
        text("TaskDefinition", props.get("TaskDefinition"))?,
        list("Subnets", vpc.and_then(|v| v.get("Subnets")))?,
        list("SecurityGroups", vpc.and_then(|v| v.get("SecurityGroups")))?,
        match vpc.and_then(|v| v.get("AssignPublicIp")) {
            // AssignPublicIp defaults to DISABLED (ECS API Reference, AwsVpcConfiguration).
            None => "DISABLED".to_string(),
            v => text("AssignPublicIp", v)?,
        },
        match props.get("PlatformVersion") {
            // PlatformVersion defaults to LATEST (ECS API Reference, CreateService).
            None => "LATEST".to_string(),
            v => text("PlatformVersion", v)?,
        },
        base,
        spot,
        text("LoadBalancers[].ContainerName", lb.get("ContainerName"))?,
        text("LoadBalancers[].ContainerPort", lb.get("ContainerPort"))?,
    ];
    Ok(PIN_PARAMETERS
        .iter()
        .map(|p| p.to_string())
        .zip(out)
        .collect())
}

/// A resolved value that is a real one: not a resource's logical id or `Id.Attribute` left
/// symbolic (the stack's physical ids were not given).
fn physical(t: &crate::cfn::template::Template, s: &str) -> bool {
    let id = s.split('.').next().unwrap_or(s);
    !s.is_empty() && !s.contains(crate::cfn::resolve::REPLACED) && t.resource(id).is_none()
}

/// The strategy the pins can hold: FARGATE with a base and weight 1, and optionally
/// FARGATE_SPOT with a weight (base 0 or absent).
fn strategy(v: Option<&Value>) -> Result<(String, String), PinError> {
    let bad = |why: &'static str| PinError::Shape {
        what: "CapacityProviderStrategy",
        value: v.map_or("absent".to_string(), |v| v.to_string()),
        why,
    };
    let items = v
        .and_then(Value::as_array)
        .ok_or_else(|| bad("not a list"))?;
    let field = |item: &Value, k: &str| item.get(k).map(crate::update::diff::scalar);
    let by: BTreeMap<String, &Value> = items
        .iter()
        .filter_map(|i| field(i, "CapacityProvider").map(|p| (p, i)))
        .collect();
    let fargate = by
        .get("FARGATE")
        .ok_or_else(|| bad("no FARGATE provider"))?;
    if field(fargate, "Weight").as_deref() != Some("1") || by.len() != items.len() {
        return Err(bad("FARGATE's weight is not 1, or a provider repeats"));
    }
    let base = field(fargate, "Base").unwrap_or_else(|| "0".into());
    let spot = match by.get("FARGATE_SPOT") {
        Some(s) if matches!(field(s, "Base").as_deref(), None | Some("0")) => {
            field(s, "Weight").unwrap_or_else(|| "0".into())
        }
        Some(_) => return Err(bad("FARGATE_SPOT has a base")),
        None => "0".into(),
    };
    if by.len() > 1 + usize::from(by.contains_key("FARGATE_SPOT")) {
        return Err(bad("a provider other than FARGATE and FARGATE_SPOT"));
    }
    Ok((base, spot))
}
