//! The AWS edge of `orderbroker deploy | rollback | status`: reads the stack, ECR, ECS, Service
//! Quotas, CloudWatch and CodeDeploy, and acts (register a revision, create or stop a
//! deployment) only after every pre-flight check passed. Deployments are tracked by id, never
//! guessed; names come from the stack outputs.
//!
//! - [`image`]: the image exists and has the platform.
//! - [`rollout`]: `deploy` (pre-flight, register, create, follow).
//! - [`follow`]: one look at a deployment, and following it and its rollback by id.
//! - [`rollback`]: stop with automatic rollback, then confirm the previous version serves.
//! - [`status`]: what `status` reads.

mod follow;
mod image;
mod rollback;
mod rollout;
mod status;

use std::time::Duration;

pub use follow::{follow, snapshot};
pub use image::check_image;
pub use rollback::{rollback, RolledBack};
pub use rollout::{carry, deploy, quota_check, running_image, Carried, DeployRequest, Deployed};
pub use status::status;

use crate::aws::stack::Stack;
use crate::aws::AwsResultExt;
use crate::deploy::{DeployError, ACTIVE_STATUSES};

/// The SDK clients the commands use (one SDK configuration).
#[derive(Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub quotas: aws_sdk_servicequotas::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// Fetches image config blobs from their presigned URL (never logged).
    pub http: reqwest::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Clients {
            cloudformation: aws_sdk_cloudformation::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            quotas: aws_sdk_servicequotas::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(sdk),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }
}

/// Where progress goes: lines always; a rewritable status line on a terminal.
pub trait Progress: Send {
    fn line(&mut self, text: &str);
    fn status(&mut self, _text: &str) {}
}

/// Collects lines (tests, `--json`).
#[derive(Debug, Default)]
pub struct Lines(pub Vec<String>);

impl Progress for Lines {
    fn line(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
}

/// Names every command needs, from the outputs.
#[derive(Debug, Clone)]
pub struct Names {
    pub cluster: String,
    pub service: String,
    pub application: String,
    pub group: String,
    pub container: String,
}

impl Names {
    pub fn from_stack(s: &Stack) -> Result<Self, DeployError> {
        Ok(Names {
            cluster: s.output("ClusterName")?.to_string(),
            service: s.output("ServiceName")?.to_string(),
            application: s.output("CodeDeployApplicationName")?.to_string(),
            group: s.output("DeploymentGroupName")?.to_string(),
            container: s.output("ContainerName")?.to_string(),
        })
    }

    /// CodeDeploy's target id of an ECS service.
    pub fn target_id(&self) -> String {
        format!("{}:{}", self.cluster, self.service)
    }
}

/// The deployment holding the group, if any.
pub async fn active_deployment(
    cd: &aws_sdk_codedeploy::Client,
    names: &Names,
) -> Result<Option<(String, String)>, DeployError> {
    use aws_sdk_codedeploy::types::DeploymentStatus;
    let out = cd
        .list_deployments()
        .application_name(&names.application)
        .deployment_group_name(&names.group)
        .set_include_only_statuses(Some(
            ACTIVE_STATUSES
                .iter()
                .map(|s| DeploymentStatus::from(*s))
                .collect(),
        ))
        .send()
        .await
        .aws("codedeploy:ListDeployments")?;
    let Some(id) = out.deployments().first() else {
        return Ok(None);
    };
    let status = cd
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .aws("codedeploy:GetDeployment")?
        .deployment_info
        .and_then(|d| d.status)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "InProgress".into());
    Ok(Some((id.clone(), status)))
}

/// The service's desired count and current task definition.
pub async fn service_state(
    ecs: &aws_sdk_ecs::Client,
    names: &Names,
) -> Result<aws_sdk_ecs::types::Service, DeployError> {
    let out = ecs
        .describe_services()
        .cluster(&names.cluster)
        .services(&names.service)
        .send()
        .await
        .aws("ecs:DescribeServices")?;
    out.services().first().cloned().ok_or_else(|| {
        DeployError::Input(format!(
            "service {} not found in cluster {}",
            names.service, names.cluster
        ))
    })
}

/// The PRIMARY (production) task set: its task definition and target group.
pub fn primary_task_set(svc: &aws_sdk_ecs::types::Service) -> Option<(String, Option<String>)> {
    svc.task_sets()
        .iter()
        .find(|t| t.status() == Some("PRIMARY"))
        .map(|t| {
            (
                t.task_definition().unwrap_or_default().to_string(),
                t.load_balancers()
                    .first()
                    .and_then(|l| l.target_group_arn())
                    .map(str::to_string),
            )
        })
}
