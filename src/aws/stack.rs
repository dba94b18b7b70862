//! The deployed stack every command and edge reads: outputs, parameter values, resources and
//! the submitted template. Names always come from here, never guessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AwsError, AwsResultExt};

/// Why a stack could not be read or lacks what a command needs.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("no AWS credentials: set AWS_PROFILE or run `aws sso login` / `aws configure` ({0})")]
    NoCredentials(#[source] AwsError),
    #[error("stack {stack} not found in {region}: deploy it with `make deploy`, or name another with --stack")]
    NotFound { stack: String, region: String },
    #[error(
        "stack {stack} has no {output} output: deploy the current template first (`make deploy`)"
    )]
    MissingOutput { stack: String, output: String },
    #[error("stack {0} returned no template body")]
    NoTemplate(String),
    #[error("{0:?} is not a stack name: CloudFormation takes a letter, then letters, digits and hyphens, at most 128 characters")]
    BadName(String),
    // Not transparent: the AwsError itself stays in the source chain (exit code 3).
    #[error("{0}")]
    Aws(#[from] AwsError),
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
    /// A non-empty output.
    pub fn output(&self, name: &str) -> Result<&str, StackError> {
        self.outputs
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StackError::MissingOutput {
                stack: self.name.clone(),
                output: name.to_string(),
            })
    }
}

/// Reads a stack; `Ok(None)` when it does not exist.
/// CloudFormation's rule for a stack name (CreateStack, StackName: "must start with an
/// alphabetic character and can't be longer than 128 characters"; only alphanumerics and
/// hyphens), checked before any call.
pub fn check_stack_name(name: &str) -> Result<(), StackError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(StackError::BadName(name.to_string()))
    }
}

pub async fn read_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<Option<Stack>, StackError> {
    let out = match cfn.describe_stacks().stack_name(name).send().await {
        Ok(o) => o,
        Err(e) => {
            let e = AwsError::new("DescribeStacks", e).on(name);
            // CloudFormation answers a missing stack with a plain ValidationError; its message
            // is the only thing that tells it apart (no typed error exists for it).
            if e.code() == Some("ValidationError")
                && e.message().is_some_and(|m| m.contains("does not exist"))
            {
                return Ok(None);
            }
            if e.is_missing_credentials() {
                return Err(StackError::NoCredentials(e));
            }
            return Err(e.into());
        }
    };
    // The stack named, never simply the first one returned.
    let Some(s) = out
        .stacks()
        .iter()
        .find(|s| s.stack_name() == Some(name) || s.stack_id() == Some(name))
    else {
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
) -> Result<Stack, StackError> {
    read_stack(cfn, name)
        .await?
        .ok_or_else(|| StackError::NotFound {
            stack: name.to_string(),
            region: region.to_string(),
        })
}

/// The deployed template: as submitted (`Original`, the SAM form) or as CloudFormation
/// processed it (`Processed`: after the SAM transform, what its resources are).
pub async fn deployed_template(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
    stage: aws_sdk_cloudformation::types::TemplateStage,
) -> Result<String, StackError> {
    cfn.get_template()
        .stack_name(stack)
        .template_stage(stage)
        .send()
        .await
        .aws("cloudformation:GetTemplate")?
        .template_body
        .ok_or_else(|| StackError::NoTemplate(stack.to_string()))
}

/// A stack resource from `ListStackResources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: String,
}

/// Every live resource of a stack (the SDK's paginator; deleted ones left out).
pub async fn list_stack_resources(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Vec<StackResource>, AwsError> {
    let mut pages = cfn
        .list_stack_resources()
        .stack_name(stack)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for s in page.aws("ListStackResources")?.stack_resource_summaries() {
            let status = s.resource_status().map(|x| x.as_str()).unwrap_or_default();
            let Some(physical) = s.physical_resource_id().filter(|p| !p.is_empty()) else {
                continue;
            };
            if status.starts_with("DELETE") {
                continue;
            }
            out.push(StackResource {
                logical_id: s.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: s.resource_type().unwrap_or_default().to_string(),
                physical_id: physical.to_string(),
            });
        }
    }
    Ok(out)
}
