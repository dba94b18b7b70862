//! The run-time half of the tagging policy: which of the stack's resources need which tags.
//!
//! The inventory comes from CloudFormation (`ListStackResources`: every resource the stack made,
//! tagged or not) plus what the stack creates at run time (the service's tasks); it is never
//! found through the `aws:cloudformation:stack-name` tag, which is exactly what untagged
//! resources lack. Each resource is mapped to the ARN the tagging APIs take, or counted as
//! untaggable (types no API tags, e.g. ECS task sets, listener rules' policies); a scalable
//! target is named by its service namespace, resource id and dimension, whose ARN only
//! Application Auto Scaling returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::aws::stack::StackResource;
use crate::tagging::types::{type_rule, RuntimeArn};
use crate::tagging::REQUIRED_TAGS;

/// Partition, region and account of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnContext {
    pub partition: String,
    pub region: String,
    pub account: String,
    /// The stack's CodeDeploy application (deployment-group ARNs include it).
    pub codedeploy_application: Option<String>,
}

impl ArnContext {
    /// From a stack id `arn:aws:cloudformation:us-east-2:111122223333:stack/name/uuid`.
    pub fn from_stack_id(stack_id: &str) -> Option<Self> {
        let p: Vec<&str> = stack_id.splitn(6, ':').collect();
        (p.len() == 6 && p[0] == "arn" && p[2] == "cloudformation").then(|| ArnContext {
            partition: p[1].to_string(),
            region: p[3].to_string(),
            account: p[4].to_string(),
            codedeploy_application: None,
        })
    }
}

/// Where a resource stands for tagging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Arn(String),
    /// Resolved and tagged through Application Auto Scaling (physical id
    /// `resource-id|dimension|namespace`).
    ScalableTarget {
        namespace: String,
        resource_id: String,
        dimension: String,
    },
    Untaggable(String),
}

/// The ARN the tagging APIs take for a resource, or why it has none ([`types::TYPES`]).
pub fn target(r: &StackResource, c: &ArnContext) -> Target {
    let id = r.physical_id.as_str();
    let rule = type_rule(&r.resource_type);
    let untaggable = |why: &str| Target::Untaggable(why.to_string());
    if id.starts_with("arn:") {
        // Task sets have ARN ids but no tagging API takes them.
        return match rule.map(|r| r.runtime) {
            Some(RuntimeArn::Untaggable(why)) if r.resource_type == "AWS::ECS::TaskSet" => {
                untaggable(why)
            }
            _ => Target::Arn(id.to_string()),
        };
    }
    let fill = |pattern: &str, id: &str| {
        pattern
            .replace("{p}", &c.partition)
            .replace("{r}", &c.region)
            .replace("{a}", &c.account)
            .replace("{id}", id)
    };
    match rule.map(|r| r.runtime) {
        Some(RuntimeArn::Pattern(p)) => Target::Arn(fill(p, id)),
        Some(RuntimeArn::SqsQueueUrl) => match id.rsplit('/').next() {
            Some(name) if id.starts_with("https://") => {
                Target::Arn(fill("arn:{p}:sqs:{r}:{a}:{id}", name))
            }
            _ => untaggable("queue id is not a queue URL"),
        },
        Some(RuntimeArn::SsmParameter) => Target::Arn(fill(
            "arn:{p}:ssm:{r}:{a}:parameter/{id}",
            id.trim_start_matches('/'),
        )),
        Some(RuntimeArn::DeploymentGroup) => match &c.codedeploy_application {
            Some(app) => Target::Arn(fill(
                "arn:{p}:codedeploy:{r}:{a}:deploymentgroup:{id}",
                &format!("{app}/{id}"),
            )),
            None => untaggable("deployment group without a known CodeDeploy application"),
        },
        Some(RuntimeArn::ScalableTarget) => {
            let parts: Vec<&str> = id.split('|').collect();
            match parts.as_slice() {
                [resource_id, dimension, namespace]
                    if !resource_id.is_empty() && !namespace.is_empty() =>
                {
                    Target::ScalableTarget {
                        namespace: namespace.to_string(),
                        resource_id: resource_id.to_string(),
                        dimension: dimension.to_string(),
                    }
                }
                _ => untaggable("scalable-target id is not resource-id|dimension|namespace"),
            }
        }
        Some(RuntimeArn::Untaggable(why)) => untaggable(why),
        Some(RuntimeArn::FromPhysicalId) | None => {
            untaggable(&format!("no ARN mapping for {}", r.resource_type))
        }
    }
}

/// The tags a resource must carry.
pub fn required_tags(cost_center: &str) -> BTreeMap<String, String> {
    REQUIRED_TAGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.unwrap_or(cost_center).to_string()))
        .collect()
}

/// The keys (with the wanted value) a resource lacks or carries with another value.
pub fn missing(
    current: &BTreeMap<String, String>,
    required: &BTreeMap<String, String>,
) -> Vec<String> {
    required
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Splits ARNs into `TagResources` batches (the API takes 1-20 ARNs a call).
pub fn batches(arns: &[String]) -> Vec<Vec<String>> {
    arns.chunks(20).map(<[String]>::to_vec).collect()
}

/// The outcome of one enforcement run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnforceReport {
    pub compliant: usize,
    pub fixed: usize,
    pub failed: usize,
    pub untaggable: usize,
    /// `arn: reason` of the first failures (the whole list is logged).
    pub failures: Vec<String>,
    /// Errors that stopped part of the run (inventory, reads) but not the answer.
    pub errors: Vec<String>,
    pub tag_calls: usize,
}

impl EnforceReport {
    /// Resources that still lack a tag after the run; at least 1 when part of the run could not
    /// check (inventory or reads failed), so the alarm sees it.
    pub fn non_compliant(&self) -> usize {
        if self.errors.is_empty() {
            self.failed
        } else {
            self.failed.max(1)
        }
    }
}
