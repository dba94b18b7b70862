//! The tag enforcer's AWS edge: inventory (CloudFormation + the service's tasks), current tags
//! (Resource Groups Tagging API), corrections (`TagResources`, 20 ARNs a call, throttling retried
//! by the SDK,
//! `FailedResourcesMap` reported), and the `NonCompliantResources` metric.
//!
//! A tag never rolls the trading stack back: every AWS failure here is reported (Data, logs,
//! metric, alarm), not thrown.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_cloudwatch::types::StandardUnit;
use serde::Deserialize;

use crate::aws::stack::list_stack_resources;
use crate::aws::{AwsError, AwsResultExt};
use crate::cfn::custom_resource::{Request, RequestKind, Success};
use crate::tagging::enforcer::{
    batches, missing, required_tags, target, ArnContext, EnforceReport, Target,
};

/// The SDK clients a run uses.
#[derive(Debug, Clone)]
pub struct EnforcerClients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

/// The function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcerConfig {
    /// `AWS::StackId` (an ARN: also gives partition, region and account).
    pub stack_id: String,
    pub stack_name: String,
    pub cost_center: String,
    pub cluster: String,
    pub namespace: String,
}

impl EnforcerConfig {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or(format!("{k} is not set"))
        };
        let stack_id = req("STACK_ID")?;
        if ArnContext::from_stack_id(&stack_id).is_none() {
            return Err(format!(
                "STACK_ID={stack_id:?} is not a CloudFormation stack ARN"
            ));
        }
        Ok(EnforcerConfig {
            stack_id,
            stack_name: req("STACK_NAME")?,
            cost_center: req("COST_CENTER")?,
            cluster: req("CLUSTER_NAME")?,
            namespace: get("METRICS_NAMESPACE").unwrap_or_else(|| "OrderBroker/Tagging".into()),
        })
    }
}

/// The custom resource's properties.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagPolicyProperties {
    pub cost_center: String,
    /// Changes on every deploy so CloudFormation calls the resource each time.
    #[serde(default)]
    pub deploy_nonce: Option<String>,
    #[serde(default)]
    pub service_token: Option<String>,
}

/// Reads the properties: malformed ones are a template error and FAIL the deploy.
pub fn parse_properties(v: &serde_json::Value) -> Result<TagPolicyProperties, String> {
    let p: TagPolicyProperties = serde_json::from_value(v.clone())
        .map_err(|e| format!("Custom::TagPolicy properties are malformed: {e}"))?;
    if p.cost_center.trim().is_empty() {
        return Err("Custom::TagPolicy property CostCenter is empty".into());
    }
    Ok(p)
}

/// One enforcement run with `cost_center` as the CostCenter value.
pub async fn enforce(
    c: &EnforcerClients,
    cfg: &EnforcerConfig,
    cost_center: &str,
) -> EnforceReport {
    let mut report = EnforceReport::default();
    let Some(mut ctx) = ArnContext::from_stack_id(&cfg.stack_id) else {
        report.errors.push("stack id is not an ARN".into());
        return report;
    };
    let resources = match list_stack_resources(&c.cloudformation, &cfg.stack_id).await {
        Ok(r) => r,
        Err(e) => {
            report.errors.push(e.to_string());
            return report;
        }
    };
    ctx.codedeploy_application = resources
        .iter()
        .find(|r| r.resource_type == "AWS::CodeDeploy::Application")
        .map(|r| r.physical_id.clone());
    let mut arns: Vec<String> = Vec::new();
    let mut scalable = Vec::new();
    for r in &resources {
        match target(r, &ctx) {
            Target::Arn(a) => arns.push(a),
            t @ Target::ScalableTarget { .. } => scalable.push(t),
            Target::Untaggable(_) => report.untaggable += 1,
        }
    }
    let mut scalable_failed = Vec::new();
    for t in &scalable {
        match tag_scalable_target(&c.autoscaling, t, &required_tags(cost_center)).await {
            Ok(true) => report.fixed += 1,
            Ok(false) => report.compliant += 1,
            Err(e) => scalable_failed.push(e),
        }
    }
    match list_tasks(&c.ecs, &cfg.cluster).await {
        Ok(tasks) => arns.extend(tasks),
        Err(e) => report.errors.push(e.to_string()),
    }
    arns.sort();
    arns.dedup();

    let current = match current_tags(&c.tagging, &arns).await {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(e.to_string());
            report.failed = arns.len();
            return report;
        }
    };
    let required = required_tags(cost_center);
    let empty = BTreeMap::new();
    let needing: Vec<String> = arns
        .iter()
        .filter(|a| !missing(current.get(*a).unwrap_or(&empty), &required).is_empty())
        .cloned()
        .collect();
    report.compliant += arns.len() - needing.len();

    let tags: HashMap<String, String> = required.into_iter().collect();
    let mut failed: Vec<String> = Vec::new();
    for batch in batches(&needing) {
        report.tag_calls += 1;
        match tag_batch(&c.tagging, &batch, &tags).await {
            Ok(f) => failed.extend(f),
            Err(e) => failed.extend(batch.iter().map(|a| format!("{a}: {e}"))),
        }
    }
    report.fixed += needing.len() - failed.len();
    failed.extend(scalable_failed);
    report.failed = failed.len();
    report.failures = failed.into_iter().take(10).collect();
    report
}

/// Tags one scalable target through Application Auto Scaling: its ARN from
/// DescribeScalableTargets, its tags from ListTagsForResource, then TagResource when one is
/// missing. Ok(true) = tagged now, Ok(false) = already compliant, Err = `what: why`.
async fn tag_scalable_target(
    autoscaling: &aws_sdk_applicationautoscaling::Client,
    t: &Target,
    required: &BTreeMap<String, String>,
) -> Result<bool, String> {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let Target::ScalableTarget {
        namespace,
        resource_id,
        dimension,
    } = t
    else {
        return Err("not a scalable target".into());
    };
    let what = format!("scalable target {resource_id}");
    let described = autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::from(namespace.as_str()))
        .resource_ids(resource_id)
        .scalable_dimension(ScalableDimension::from(dimension.as_str()))
        .send()
        .await
        .aws("application-autoscaling:DescribeScalableTargets")
        .map_err(|e| format!("{what}: {e}"))?;
    let arn = described
        .scalable_targets()
        .iter()
        .find_map(|s| s.scalable_target_arn())
        .ok_or_else(|| format!("{what}: DescribeScalableTargets returned no ScalableTargetARN"))?
        .to_string();
    let current: BTreeMap<String, String> = autoscaling
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws("application-autoscaling:ListTagsForResource")
        .map_err(|e| format!("{arn}: {e}"))?
        .tags()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if missing(&current, required).is_empty() {
        return Ok(false);
    }
    autoscaling
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(required.clone().into_iter().collect()))
        .send()
        .await
        .aws("application-autoscaling:TagResource")
        .map_err(|e| format!("{arn}: {e}"))?;
    Ok(true)
}

async fn list_tasks(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Vec<String>, AwsError> {
    let mut pages = ecs.list_tasks().cluster(cluster).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(page.aws("ListTasks")?.task_arns().iter().cloned());
    }
    Ok(out)
}

/// Current tags by ARN (an ARN the API does not return has no tags). Throttling is retried by
/// the client's retry configuration ([`tagging_retry`]).
async fn current_tags(
    tagging: &aws_sdk_resourcegroupstagging::Client,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(100) {
        let mut pages = tagging
            .get_resources()
            .set_resource_arn_list(Some(chunk.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for m in page.aws("GetResources")?.resource_tag_mapping_list() {
                let tags = m
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                if let Some(a) = m.resource_arn() {
                    out.insert(a.to_string(), tags);
                }
            }
        }
    }
    Ok(out)
}

/// Tags one batch; returns `arn: reason` for each ARN the API could not tag.
async fn tag_batch(
    tagging: &aws_sdk_resourcegroupstagging::Client,
    batch: &[String],
    tags: &HashMap<String, String>,
) -> Result<Vec<String>, AwsError> {
    let out = tagging
        .tag_resources()
        .set_resource_arn_list(Some(batch.to_vec()))
        .set_tags(Some(tags.clone()))
        .send()
        .await
        .aws("TagResources")?;
    let mut failed: Vec<String> = out
        .failed_resources_map()
        .map(|m| {
            m.iter()
                .map(|(arn, f)| {
                    format!(
                        "{arn}: {} {}",
                        f.error_code().map(|c| c.as_str()).unwrap_or("error"),
                        f.error_message().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    failed.sort();
    Ok(failed)
}

/// The tagging client's retry: the Resource Groups Tagging API allows about 15 requests/s and
/// answers `ThrottledException` beyond; the SDK's standard retry classifies that code as
/// throttling and backs off (6 attempts, 250 ms doubling to 4 s).
pub fn tagging_retry() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(250))
        .with_max_backoff(Duration::from_secs(4))
}

impl EnforcerClients {
    /// The clients of one SDK configuration; the tagging client with [`tagging_retry`].
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let tagging = aws_sdk_resourcegroupstagging::config::Builder::from(sdk)
            .retry_config(tagging_retry())
            .build();
        EnforcerClients {
            cloudformation: aws_sdk_cloudformation::Client::new(sdk),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(sdk),
            tagging: aws_sdk_resourcegroupstagging::Client::from_conf(tagging),
            ecs: aws_sdk_ecs::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
        }
    }
}

/// Publishes `NonCompliantResources` (what the run could not bring into line).
pub async fn publish(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &EnforcerConfig,
    report: &EnforceReport,
) -> Result<(), AwsError> {
    crate::aws::cloudwatch::put_stack_metrics(
        cw,
        &cfg.namespace,
        &cfg.stack_name,
        &[(
            "NonCompliantResources",
            report.non_compliant() as f64,
            StandardUnit::Count,
        )],
    )
    .await
}

/// The `Custom::TagPolicy` handler: Delete is a no-op (tags stay on whatever remains); Create
/// and Update enforce and answer SUCCESS with the counts in Data, whatever tagging did. Only
/// malformed properties (a template error) or a misconfigured function answer FAILED.
pub async fn handle_tag_policy(
    clients: EnforcerClients,
    cfg: Result<EnforcerConfig, String>,
    req: Request,
) -> Result<Success, String> {
    let physical = format!("tag-policy:{}", req.logical_resource_id);
    if req.kind == RequestKind::Delete {
        return Ok(Success {
            physical_resource_id: req.physical_resource_id.unwrap_or(physical),
            data: serde_json::Map::new(),
        });
    }
    let cfg = cfg.map_err(|e| format!("tag enforcer misconfigured: {e}"))?;
    let props = parse_properties(&req.properties)?;
    let report = enforce(&clients, &cfg, &props.cost_center).await;
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "tag policy enforced");
    if let Err(e) = publish(&clients.cloudwatch, &cfg, &report).await {
        tracing::warn!(error = %e, "NonCompliantResources not published");
    }
    let data = match serde_json::json!({
        "Compliant": report.compliant,
        "Fixed": report.fixed,
        "Failed": report.failed,
        "Untaggable": report.untaggable,
        "Errors": report.errors.join("; "),
        "FirstFailures": report.failures.join("; "),
    }) {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok(Success {
        physical_resource_id: physical,
        data,
    })
}
