//! Deployments of new OrderBroker versions through CodeDeploy, as plain decisions. The AWS calls
//! are in [`aws`].
//!
//! - [`image`]: the ECR reference, its manifest and platforms.
//! - [`window`]: the spike windows a change must not touch.
//! - [`quota`]: the Fargate vCPU quota against the green task set.
//! - [`revision`]: the derived task-definition revision.
//! - [`progress`]: snapshots, progress lines, the outcome, alarm overrides.
//! - [`status`]: what `status` shows, and its rendering.
//! - [`appspec`]: the ECS AppSpec of a deployment.

pub mod appspec;
// The CLI's rollouts (ECR, Service Quotas and Lambda clients): CLI builds only (feature `cli`).
#[cfg(feature = "cli")]
pub mod aws;
pub mod carry;
pub mod image;
pub mod progress;
pub mod quota;
pub mod revision;
pub mod status;
pub mod window;

pub use image::{
    check_platform, check_region, oci_arch, parse_image, parse_manifest, platform_from_config,
    ImageRef, Manifest, Platform, MANIFEST_MEDIA_TYPES,
};
pub use progress::{
    failure_reason, phase, progress_lines, split_alarms, status_line, EventTime, Outcome, Phase,
    Snapshot, TaskSetView, ACTIVE_STATUSES,
};
pub use quota::{
    check_quota, peak_placement, place, task_vcpu, ClassUsage, Placement, QuotaReport,
    ON_DEMAND_QUOTA, SPOT_QUOTA,
};
pub use revision::derive_task_definition;
pub use window::{schedule_from_parameters, spike_window, window_refusal};

/// Why a deployment, rollback or stack update is refused or did not succeed.
#[derive(Debug, thiserror::Error)]
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
    #[error("Fargate {class} vCPU quota cannot hold the deployment's peak (both task sets at MaxTasks): needs {needed} more vCPU ({tasks} tasks x {task_vcpu} vCPU), quota {quota} - in use {usage} = {headroom} free; raise Service Quotas fargate/{code}, or lower MaxTasks (--force skips this check)")]
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
    /// An AWS call failed (the SDK error is the source).
    // Not transparent: the AwsError itself stays in the source chain (exit code 3).
    #[error("{0}")]
    Aws(#[from] crate::aws::AwsError),
    /// The stack is missing, unreadable, or lacks an output.
    #[error("{0}")]
    Stack(#[from] crate::aws::stack::StackError),
    /// The deployed stack's template, parameters or resources could not be read.
    #[error("{0}")]
    Read(#[from] crate::update::aws::ReadError),
    /// An AWS answer lacked what it must carry (an id, a value).
    #[error("{0}")]
    Response(String),
    #[error("{0}")]
    Input(String),
}
