//! Every resource type the tag policy knows, in ONE table: how a template tags it (the
//! build-time check) and which ARN the tagging APIs take for it at run time (the enforcer).
//! Adding a resource type to the template forces a decision here, once, for both halves.
//!
//! Template support is from the CloudFormation resource schemas (`tagging.taggable` and a
//! `Tags` property) as bundled with cfn-lint; ARN formats are from the Service Authorization
//! Reference's resource types.

use crate::tagging::TagSupport;

/// How the enforcer finds the ARN of a resource whose physical id is not already an ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeArn {
    /// `{p}` partition, `{r}` region, `{a}` account, `{id}` physical id.
    Pattern(&'static str),
    /// The physical id is the queue URL; the ARN ends in the queue name.
    SqsQueueUrl,
    /// The physical id is the parameter name (with or without its leading `/`).
    SsmParameter,
    /// The deployment-group ARN needs the stack's CodeDeploy application.
    DeploymentGroup,
    /// No tagging API takes it; the reason is reported.
    Untaggable(&'static str),
    /// A scalable target: its ARN carries an opaque id CloudFormation does not return, so it is
    /// read with DescribeScalableTargets (`ScalableTargetARN`) and tagged through Application
    /// Auto Scaling's own TagResource (scalable targets are taggable since 2023).
    ScalableTarget,
    /// CloudFormation returns an ARN as its physical id (handled before the table), or the
    /// type never appears in a deployed stack (SAM's own types).
    FromPhysicalId,
}

/// One resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRule {
    pub type_name: &'static str,
    /// `None`: the template check reports it as a finding (a type the policy has not decided).
    pub template: Option<TagSupport>,
    pub runtime: RuntimeArn,
}

const NO_TAGS: RuntimeArn = RuntimeArn::Untaggable("the service has no tags for this type");

const fn rule(type_name: &'static str, template: TagSupport, runtime: RuntimeArn) -> TypeRule {
    TypeRule {
        type_name,
        template: Some(template),
        runtime,
    }
}

use RuntimeArn::{DeploymentGroup, FromPhysicalId, Pattern, SqsQueueUrl, SsmParameter};
use TagSupport::{KeyValueList as List, KeyValueMap as Map, NotInTemplate as Api, SamMap as Sam};

/// The table.
pub const TYPES: &[TypeRule] = &[
    rule("AWS::Serverless::Function", Sam, FromPhysicalId),
    rule("AWS::SSM::Parameter", Map, SsmParameter),
    rule(
        "AWS::ECS::Cluster",
        List,
        Pattern("arn:{p}:ecs:{r}:{a}:cluster/{id}"),
    ),
    rule("AWS::ECS::Service", List, FromPhysicalId),
    rule("AWS::ECS::TaskDefinition", List, FromPhysicalId),
    rule(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        List,
        FromPhysicalId,
    ),
    rule(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        List,
        FromPhysicalId,
    ),
    rule(
        "AWS::CodeDeploy::Application",
        List,
        Pattern("arn:{p}:codedeploy:{r}:{a}:application:{id}"),
    ),
    rule("AWS::CodeDeploy::DeploymentGroup", List, DeploymentGroup),
    rule(
        "AWS::CloudWatch::Alarm",
        List,
        Pattern("arn:{p}:cloudwatch:{r}:{a}:alarm:{id}"),
    ),
    rule("AWS::SNS::Topic", List, FromPhysicalId),
    rule(
        "AWS::KMS::Key",
        List,
        Pattern("arn:{p}:kms:{r}:{a}:key/{id}"),
    ),
    rule("AWS::S3::Bucket", List, Pattern("arn:{p}:s3:::{id}")),
    rule(
        "AWS::IAM::Role",
        List,
        Pattern("arn:{p}:iam::{a}:role/{id}"),
    ),
    rule(
        "AWS::EC2::SecurityGroup",
        List,
        Pattern("arn:{p}:ec2:{r}:{a}:security-group/{id}"),
    ),
    rule(
        "AWS::EC2::VPCEndpoint",
        List,
        Pattern("arn:{p}:ec2:{r}:{a}:vpc-endpoint/{id}"),
    ),
    rule(
        "AWS::Logs::LogGroup",
        List,
        Pattern("arn:{p}:logs:{r}:{a}:log-group:{id}"),
    ),
    rule("AWS::SQS::Queue", List, SqsQueueUrl),
    rule(
        "AWS::Scheduler::ScheduleGroup",
        List,
        Pattern("arn:{p}:scheduler:{r}:{a}:schedule-group/{id}"),
    ),
    rule(
        "AWS::Lambda::Function",
        List,
        Pattern("arn:{p}:lambda:{r}:{a}:function:{id}"),
    ),
    rule("AWS::Events::Rule", List, FromPhysicalId),
    rule("AWS::ElasticLoadBalancingV2::Listener", Api, FromPhysicalId),
    rule(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        Api,
        RuntimeArn::ScalableTarget,
    ),
    rule("AWS::ApplicationAutoScaling::ScalingPolicy", Api, NO_TAGS),
    rule("AWS::CodeDeploy::DeploymentConfig", Api, NO_TAGS),
    rule(
        "AWS::CloudWatch::Dashboard",
        Api,
        Pattern("arn:{p}:cloudwatch::{a}:dashboard/{id}"),
    ),
    rule("AWS::SNS::Subscription", Api, NO_TAGS),
    rule("AWS::SNS::TopicPolicy", Api, NO_TAGS),
    rule("AWS::KMS::Alias", Api, NO_TAGS),
    rule("AWS::S3::BucketPolicy", Api, NO_TAGS),
    rule("AWS::IAM::Policy", Api, NO_TAGS),
    rule("AWS::EC2::SecurityGroupIngress", Api, NO_TAGS),
    rule("AWS::EC2::SecurityGroupEgress", Api, NO_TAGS),
    rule("AWS::SQS::QueuePolicy", Api, NO_TAGS),
    rule("AWS::Scheduler::Schedule", Api, NO_TAGS),
    rule("AWS::Lambda::Permission", Api, NO_TAGS),
    rule("AWS::Lambda::EventInvokeConfig", Api, NO_TAGS),
    rule("AWS::WAFv2::WebACLAssociation", Api, NO_TAGS),
    rule("AWS::CloudFormation::CustomResource", Api, NO_TAGS),
    // ECS TagResource does not accept task sets; CloudFormation has no Tags for them either.
    TypeRule {
        type_name: "AWS::ECS::TaskSet",
        template: None,
        runtime: RuntimeArn::Untaggable("ECS TagResource does not accept task sets"),
    },
];

/// The rule of a resource type (`Custom::*` types are custom resources: no tags anywhere).
pub fn type_rule(type_name: &str) -> Option<TypeRule> {
    if type_name.starts_with("Custom::") {
        return Some(TypeRule {
            type_name: "Custom::*",
            template: Some(TagSupport::NotInTemplate),
            runtime: RuntimeArn::Untaggable("custom resources have no tags"),
        });
    }
    TYPES.iter().find(|r| r.type_name == type_name).copied()
}
