//! `orderbroker deploy` and `rollback` against mocked SDK clients (aws-smithy-mocks): the
//! pre-flight refusals write nothing; a good run registers exactly the derived revision, creates
//! one deployment with the full AppSpec, and follows it by id (and its rollback by id).

mod carry;
mod rollback;
mod rollout;
mod status;
mod upgrade;
mod world;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) use crate::support::{ny, root};
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudwatch as cw;
use aws_sdk_codedeploy as cd;
use aws_sdk_ecr as ecr;
use aws_sdk_ecs as ecs;
use aws_sdk_servicequotas as sq;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Utc};
use orderbroker::aws::stack::Stack;
use orderbroker::calendar::Calendar;
use orderbroker::deploy::aws::{carry, deploy, rollback, Clients, DeployRequest, Lines};
use orderbroker::deploy::{DeployError, Outcome};
use orderbroker::warmup::Settings;

/// The deployed stack, as `aws cloudformation describe-stacks` prints it.
pub(super) fn stack() -> Stack {
    let text =
        std::fs::read_to_string(root().join("events/describe-stacks-deployed.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let params = v["Stacks"][0]["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["ParameterKey"].as_str().unwrap().to_string(),
                p["ParameterValue"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Stack {
        name: "orderbroker".into(),
        status: "UPDATE_COMPLETE".into(),
        outputs: orderbroker::deploy::appspec::parse_outputs(&text).unwrap(),
        parameters: params,
    }
}

/// The digest the running tasks report.
pub(super) const DIGEST: &str =
    "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
pub(super) const IMAGE: &str = "111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.2";
pub(super) const CURRENT_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition-Xy12:7";
/// The stack's own revision (its TaskDefinitionArn output): the template's settings.
pub(super) const STACK_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition-Xy12:1";
pub(super) const NEW_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition-Xy12:8";
pub(super) const APP: &str = "orderbroker-CodeDeployApplication-1A2B3C4D5E6F";
pub(super) const GROUP: &str = "orderbroker-DeploymentGroup-7G8H9I0J1K2L";
pub(super) const TARGET: &str = "orderbroker-Cluster-AbCdEf123456:orderbroker-Service-GhIjKl789012";

pub(super) fn index_manifest(archs: &[&str]) -> String {
    let mut m: Vec<serde_json::Value> = archs
        .iter()
        .map(|a| {
            serde_json::json!({"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{}", "1".repeat(64)), "size": 1000,
                "platform": {"architecture": a, "os": "linux"}})
        })
        .collect();
    // buildx attestation manifest: not a platform.
    m.push(
        serde_json::json!({"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "2".repeat(64)), "size": 800,
        "platform": {"architecture": "unknown", "os": "unknown"}}),
    );
    serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":m})
        .to_string()
}

/// The stack's revision (template.yaml's settings: StopTimeout 30, the idle timeout above the
/// ALB's) with samconfig's first image, as DescribeTaskDefinition returns it.
pub(super) fn stack_task_definition() -> ecs::types::TaskDefinition {
    let mut td = current_task_definition();
    td.task_definition_arn = Some(STACK_TD.into());
    td.revision = 1;
    let defs = td.container_definitions.get_or_insert_with(Vec::new);
    defs[0].image = Some("111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.0.0".into());
    defs[0].stop_timeout = Some(30);
    defs[0].environment.get_or_insert_with(Vec::new).push(
        ecs::types::KeyValuePair::builder()
            .name("HTTP_IDLE_TIMEOUT_SECONDS")
            .value("75")
            .build(),
    );
    td
}

/// The current revision (the one the PRIMARY task set runs, registered by an earlier
/// deployment), as DescribeTaskDefinition returns it.
pub(super) fn current_task_definition() -> ecs::types::TaskDefinition {
    use ecs::types::*;
    TaskDefinition::builder()
        .task_definition_arn(CURRENT_TD)
        .family("orderbroker-TaskDefinition-Xy12")
        .revision(7)
        .task_role_arn("arn:aws:iam::111122223333:role/orderbroker-TaskRole-1")
        .execution_role_arn("arn:aws:iam::111122223333:role/orderbroker-TaskExecutionRole-1")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("2048")
        .memory("4096")
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .volumes(Volume::builder().name("tmp").build())
        .container_definitions(
            ContainerDefinition::builder()
                .name("orderbroker")
                .image("111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.1")
                .essential(true)
                .readonly_root_filesystem(true)
                .stop_timeout(120)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .environment(
                    KeyValuePair::builder()
                        .name("METRICS_STACK")
                        .value("orderbroker")
                        .build(),
                )
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("log-router")
                .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
                .essential(false)
                .build(),
        )
        .build()
}
