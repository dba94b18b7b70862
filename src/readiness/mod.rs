//! The account readiness check: what a first `sam deploy` of this template needs from the
//! account, the region and the VPC, each judged PASS or FAIL with what was read and the exact
//! fix. `make deploy` runs it before the build; an operator can run it alone
//! (`orderbroker readiness`). Every judgement here is pure; [`aws`] reads the facts.
//!
//! Why each check exists (docs/stack-deploy.md, "Account readiness"; ../shared/aws-facts.md,
//! "First deploy in a new account"):
//! - the ECS service-linked role: a cluster with capacity providers in an account that never used
//!   ECS fails to assume it while ECS is still creating it (cloudformation-coverage-roadmap
//!   issue 818), and the stack rolls back;
//! - Lambda concurrency: a reservation that leaves fewer than 100 unreserved executions is refused
//!   (Lambda docs, "Configuring reserved concurrency"); new accounts often start at 10 or 50;
//! - `CreateVpcEndpoints=true`: interface endpoints with private DNS need the VPC's
//!   `enableDnsSupport` and `enableDnsHostnames` (VPC docs, "DNS attributes for your VPC"), and a
//!   second private-DNS endpoint for the same service in one VPC is refused (PrivateLink docs:
//!   the private DNS name is already in use);
//! - the subnets: three, in the VPC, in three AZs; they reach AWS through a NAT (or transit)
//!   gateway unless the endpoints are created; without either, tasks never start and the
//!   stack waits for hours (no circuit breaker with the CODE_DEPLOY controller);
//! - the Fargate vCPU quota holds a deployment's peak (`crate::deploy::check_quota`);
//! - the first version's image exists with the platform the parameters choose (the first create
//!   runs no `orderbroker deploy` pre-flight); on an existing stack the image the PRIMARY task
//!   set runs (by digest) instead, which the rollout after a stack update redeploys
//!   (`orderbroker carry`); samconfig's ContainerImage may have expired from ECR by then;
//! - on an existing stack the checks that only matter for a create are N/A (the ECS
//!   service-linked role: the stack's service already uses it);
//! - any refusal can be overridden by name (`--skip CHECK`): the check is still run and printed,
//!   marked skipped, and no longer fails the run.
//! - the stack name fits the hook function names (`CodeDeployHook_<stack>-test`, 64 characters).

#[cfg(feature = "cli")]
pub mod aws;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cfn::template::{lookup, Template};

/// What samconfig.toml's placeholder values contain (`vpc-REPLACE`, `subnet-REPLACE1`, ...).
pub const PLACEHOLDER: &str = "REPLACE";
/// Lambda keeps at least this many executions unreserved (Lambda docs, reserved concurrency).
pub const MIN_UNRESERVED: i64 = 100;
/// Service Quotas code of Lambda's "Concurrent executions".
pub const LAMBDA_CONCURRENCY_QUOTA: &str = "L-B99A9384";
/// Lambda function names are at most 64 characters (Lambda API, CreateFunction FunctionName).
pub const FUNCTION_NAME_MAX: usize = 64;
/// The ECS service-linked role (ECS docs, "Using service-linked roles for Amazon ECS").
pub const ECS_SLR_NAME: &str = "AWSServiceRoleForECS";
pub const ECS_SERVICE_PRINCIPAL: &str = "ecs.amazonaws.com";
/// The AZ count the template's three private subnets must span.
pub const SUBNET_AZS: usize = 3;

/// PASS, FAIL, or nothing to check for these parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
    /// The fact could not be read (access denied, a timeout): neither a pass nor a verdict.
    Unread,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::NotApplicable => "N/A",
            Status::Unread => "UNREAD",
        })
    }
}

/// One judged condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short stable name (`ecs-service-linked-role`, `lambda-concurrency`, ...).
    pub name: &'static str,
    pub status: Status,
    /// What was read, in words.
    pub read: String,
    /// The exact fix (a command or a quota code) when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Overridden by name (`--skip`): printed, but it fails nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl Check {
    fn pass(name: &'static str, read: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Pass,
            read: read.into(),
            fix: None,
            skipped: false,
        }
    }

    fn fail(name: &'static str, read: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Fail,
            read: read.into(),
            fix: Some(fix.into()),
            skipped: false,
        }
    }

    fn not_applicable(name: &'static str, read: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::NotApplicable,
            read: read.into(),
            fix: None,
            skipped: false,
        }
    }

    /// A fact that could not be read: never a PASS, and its fix names the read that failed.
    pub fn unreadable(name: &'static str, what: &str, error: impl std::fmt::Display) -> Self {
        Check {
            name,
            status: Status::Unread,
            read: format!("could not read {what}: {error}"),
            fix: Some(format!(
                "make {what} readable (the read-only actions of docs/iam.md, `readiness`, and a network path to AWS) and run it again"
            )),
            skipped: false,
        }
    }
}

/// Every check of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub account: String,
    pub region: String,
    pub stack: String,
    pub checks: Vec<Check>,
    pub seconds: f64,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.skipped || !matches!(c.status, Status::Fail | Status::Unread))
    }

    /// Checks whose facts could not be read (skipped ones aside).
    pub fn unread(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| !c.skipped && c.status == Status::Unread)
            .count()
    }

    /// Failed checks (skipped ones aside).
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| !c.skipped && c.status == Status::Fail)
            .count()
    }

    /// Marks the named checks skipped (`--skip`); a name no check has is refused, naming them.
    pub fn skip(&mut self, names: &[String]) -> Result<(), String> {
        let known: Vec<&str> = self.checks.iter().map(|c| c.name).collect();
        if let Some(bad) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(format!(
                "--skip {bad}: no such check (the checks: {})",
                known.join(", ")
            ));
        }
        for c in &mut self.checks {
            if names.iter().any(|n| n == c.name) {
                c.skipped = true;
            }
        }
        Ok(())
    }
}

/// The names of the checks, for `--skip` (checked before any AWS call).
pub const CHECK_NAMES: [&str; 9] = [
    "stack-name",
    "ecs-service-linked-role",
    "lambda-concurrency",
    "vpc-dns",
    "subnets",
    "subnet-egress",
    "vpc-endpoints",
    "fargate-vcpu-quota",
    "container-image",
];

/// A check that only matters for a create, on an existing stack.
pub fn create_only_check(name: &'static str, why: &str) -> Check {
    Check::not_applicable(name, format!("the stack exists: {why}"))
}

/// On an existing stack: the image the PRIMARY task set runs (by digest), which the rollout
/// after a stack update redeploys.
pub fn running_image(result: Result<String, Unmet>) -> Check {
    const NAME: &str = "container-image";
    match result {
        Ok(read) => Check::pass(NAME, format!("the running image (PRIMARY task set): {read}")),
        Err(Unmet::Unread(why)) => Check::unreadable(NAME, "the running image", why),
        Err(Unmet::Failed(why)) => Check::fail(
            NAME,
            format!("the running image (PRIMARY task set): {why}"),
            "the image the service runs is not in ECR any more (a lifecycle policy?): deploy a version that is (`orderbroker deploy --image <uri> --wait`) before the stack update, or --skip container-image when no rollout follows it",
        ),
    }
}

/// Why the template and parameters cannot be checked at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NeedsError {
    #[error("parameter {0} is not set (samconfig.toml parameter_overrides)")]
    Missing(&'static str),
    #[error(
        "parameters {0} still hold samconfig.toml's placeholder (REPLACE): put your account's values into parameter_overrides"
    )]
    Placeholders(String),
    #[error("parameter ContainerImage: {0}")]
    Image(String),
    #[error("parameter {name}={value:?} is {why}")]
    Bad {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

/// A VPC endpoint the template would create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WantedEndpoint {
    pub logical_id: String,
    /// `com.amazonaws.<region>.<service>`.
    pub service: String,
    /// Interface with private DNS (one per VPC), or Gateway (one per route table).
    pub interface: bool,
}

/// What the template and its parameters need from the account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Needs {
    pub stack: String,
    pub region: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub create_endpoints: bool,
    /// Empty unless `create_endpoints`.
    pub endpoints: Vec<WantedEndpoint>,
    /// Route tables the S3 gateway endpoint is attached to (`PrivateRouteTableIds`).
    pub endpoint_route_tables: Vec<String>,
    /// Sum of the template's `ReservedConcurrentExecutions`.
    pub reserved_concurrency: i64,
    pub image: String,
    /// `ARM64` or `X86_64`.
    pub cpu_architecture: String,
    pub max_tasks: u32,
    pub task_vcpu: f64,
    pub strategy: Vec<crate::deploy::appspec::StrategyItem>,
    /// The longest hook function name suffix after the stack name (`-test`).
    pub hook_name_prefix: String,
    pub hook_name_suffix: String,
}

fn param<'a>(p: &'a BTreeMap<String, String>, name: &'static str) -> Result<&'a str, NeedsError> {
    p.get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or(NeedsError::Missing(name))
}

fn number<T: std::str::FromStr>(
    p: &BTreeMap<String, String>,
    name: &'static str,
) -> Result<T, NeedsError> {
    let v = param(p, name)?;
    v.parse().map_err(|_| NeedsError::Bad {
        name,
        value: v.to_string(),
        why: "not a number in range",
    })
}

/// The service name a `!Sub "com.amazonaws.${AWS::Region}.x"` endpoint resolves to.
fn endpoint_service(value: &serde_json::Value, region: &str) -> Option<String> {
    let text = value
        .get("Fn::Sub")
        .and_then(|s| s.as_str())
        .or_else(|| value.as_str())?;
    Some(text.replace("${AWS::Region}", region))
}

/// The first version's image, checked before any call: an ECR URI with a tag or digest, in the
/// stack's region.
fn offline_image(uri: &str, region: &str) -> Result<String, NeedsError> {
    let img = crate::deploy::parse_image(uri).map_err(|e| NeedsError::Image(e.to_string()))?;
    crate::deploy::check_region(&img, uri, region).map_err(|e| NeedsError::Image(e.to_string()))?;
    Ok(uri.to_string())
}

impl Needs {
    /// Reads the needs from the template and the effective parameters (defaults + overrides).
    pub fn from_template(
        t: &Template,
        p: &BTreeMap<String, String>,
        stack: &str,
        region: &str,
    ) -> Result<Self, NeedsError> {
        let placeholders: Vec<&str> = p
            .iter()
            .filter(|(_, v)| v.contains(PLACEHOLDER))
            .map(|(k, _)| k.as_str())
            .collect();
        if !placeholders.is_empty() {
            return Err(NeedsError::Placeholders(placeholders.join(", ")));
        }
        let vpc_id = param(p, "VpcId")?.to_string();
        let subnets = ["PrivateSubnet1", "PrivateSubnet2", "PrivateSubnet3"]
            .into_iter()
            .map(|n| param(p, n).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        let create_endpoints = param(p, "CreateVpcEndpoints").unwrap_or("false") == "true";
        let mut endpoints = Vec::new();
        if create_endpoints {
            for r in t.resources_of_type("AWS::EC2::VPCEndpoint") {
                let Some(service) = r
                    .prop("ServiceName")
                    .and_then(|v| endpoint_service(v, region))
                else {
                    continue;
                };
                let kind = r
                    .prop("VpcEndpointType")
                    .and_then(|v| v.as_str())
                    .unwrap_or("Gateway");
                let private_dns = r
                    .prop("PrivateDnsEnabled")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                endpoints.push(WantedEndpoint {
                    logical_id: r.id.to_string(),
                    service,
                    interface: kind == "Interface" && private_dns,
                });
            }
        }
        let endpoint_route_tables = p
            .get("PrivateRouteTableIds")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let reserved_concurrency = t
            .resources()
            .filter(|r| {
                matches!(
                    r.type_name(),
                    "AWS::Serverless::Function" | "AWS::Lambda::Function"
                )
            })
            .filter_map(|r| {
                r.prop("ReservedConcurrentExecutions")
                    .and_then(|v| v.as_i64())
            })
            .sum();
        let cpu_architecture = param(p, "CpuArchitecture")?.to_string();
        let task_cpu = param(p, "TaskCpu")?;
        let task_vcpu = crate::deploy::task_vcpu(task_cpu).ok_or(NeedsError::Bad {
            name: "TaskCpu",
            value: task_cpu.to_string(),
            why: "not a CPU value",
        })?;
        let spot_weight: u32 = number(p, "SpotWeight").unwrap_or(0);
        let on_demand_base: u32 = number(p, "OnDemandBaseTasks").unwrap_or(0);
        let mut strategy = vec![crate::deploy::appspec::StrategyItem {
            capacity_provider: "FARGATE".into(),
            base: on_demand_base,
            weight: 1,
        }];
        if spot_weight > 0 {
            strategy.push(crate::deploy::appspec::StrategyItem {
                capacity_provider: "FARGATE_SPOT".into(),
                base: 0,
                weight: spot_weight,
            });
        }
        let (hook_name_prefix, hook_name_suffix) = longest_stack_named_function(t);
        Ok(Needs {
            stack: stack.to_string(),
            region: region.to_string(),
            vpc_id,
            subnets,
            create_endpoints,
            endpoints,
            endpoint_route_tables,
            reserved_concurrency,
            image: offline_image(param(p, "ContainerImage")?, region)?,
            cpu_architecture,
            max_tasks: number(p, "MaxTasks")?,
            task_vcpu,
            strategy,
            hook_name_prefix,
            hook_name_suffix,
        })
    }
}

/// The function name with the most characters around `${AWS::StackName}`: the one that bounds
/// the stack name (today `CodeDeployHook_${AWS::StackName}-test`).
fn longest_stack_named_function(t: &Template) -> (String, String) {
    t.resources()
        .filter_map(|r| {
            let sub = lookup(r.properties(), "FunctionName")?
                .get("Fn::Sub")?
                .as_str()?;
            let (pre, post) = sub.split_once("${AWS::StackName}")?;
            Some((pre.to_string(), post.to_string()))
        })
        .max_by_key(|(a, b)| a.len() + b.len())
        .unwrap_or_default()
}

/// The stack name: CloudFormation's pattern, and short enough for every function name.
pub fn stack_name(needs: &Needs) -> Check {
    const NAME: &str = "stack-name";
    let s = &needs.stack;
    let valid = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Check::fail(
            NAME,
            format!("stack name {s:?}"),
            "a stack name starts with a letter and has only letters, digits and hyphens: set stack_name in samconfig.toml",
        );
    }
    let longest = needs.hook_name_prefix.len() + s.len() + needs.hook_name_suffix.len();
    let max = FUNCTION_NAME_MAX - needs.hook_name_prefix.len() - needs.hook_name_suffix.len();
    if longest > FUNCTION_NAME_MAX {
        return Check::fail(
            NAME,
            format!(
                "stack name {s:?} has {} characters: function {}{s}{} would have {longest} (Lambda allows {FUNCTION_NAME_MAX})",
                s.len(),
                needs.hook_name_prefix,
                needs.hook_name_suffix
            ),
            format!("choose a stack name of at most {max} characters (stack_name in samconfig.toml)"),
        );
    }
    Check::pass(
        NAME,
        format!("stack name {s:?}: {} of at most {max} characters", s.len()),
    )
}

/// What IAM said about the ECS service-linked role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleState {
    Present {
        arn: String,
    },
    Missing,
    /// Created by this run, seen by IAM after `waited_seconds`, then settled.
    Created {
        arn: String,
        waited_seconds: u64,
        settle_seconds: u64,
    },
}

pub fn service_linked_role(state: &RoleState) -> Check {
    const NAME: &str = "ecs-service-linked-role";
    match state {
        RoleState::Present { arn } => Check::pass(NAME, format!("{arn} exists")),
        RoleState::Created {
            arn,
            waited_seconds,
            settle_seconds,
        } => Check::pass(
            NAME,
            format!(
                "created {arn}; IAM returned it after {waited_seconds} s, then {settle_seconds} s to settle"
            ),
        ),
        RoleState::Missing => Check::fail(
            NAME,
            format!("{ECS_SLR_NAME} does not exist: ECS would create it inside CreateCluster and fail to assume it"),
            format!("orderbroker readiness --create-service-linked-role (what `make deploy` runs), or: aws iam create-service-linked-role --aws-service-name {ECS_SERVICE_PRINCIPAL}"),
        ),
    }
}

/// Lambda's account concurrency as `GetAccountSettings` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub account_limit: i64,
    pub unreserved: i64,
    /// What this stack's functions already reserve (an update; 0 for a new stack).
    pub reserved_by_stack: i64,
}

pub fn lambda_concurrency(needs: &Needs, c: Concurrency) -> Check {
    const NAME: &str = "lambda-concurrency";
    let more = (needs.reserved_concurrency - c.reserved_by_stack).max(0);
    let left = c.unreserved - more;
    let read = format!(
        "account limit {}, unreserved {}; the template reserves {} ({} of them already by this stack): {left} would stay unreserved, at least {MIN_UNRESERVED} must",
        c.account_limit, c.unreserved, needs.reserved_concurrency, c.reserved_by_stack
    );
    if left >= MIN_UNRESERVED {
        return Check::pass(NAME, read);
    }
    let wanted = c.account_limit + (MIN_UNRESERVED - left);
    Check::fail(
        NAME,
        read,
        format!(
            "raise Lambda concurrent executions (quota {LAMBDA_CONCURRENCY_QUOTA}) to at least {wanted}: aws service-quotas request-service-quota-increase --region {} --service-code lambda --quota-code {LAMBDA_CONCURRENCY_QUOTA} --desired-value {wanted}",
            needs.region
        ),
    )
}

/// The VPC's DNS attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpcDns {
    pub support: bool,
    pub hostnames: bool,
}

pub fn vpc_dns(needs: &Needs, dns: VpcDns) -> Check {
    const NAME: &str = "vpc-dns";
    let read = format!(
        "{}: enableDnsSupport {}, enableDnsHostnames {}",
        needs.vpc_id, dns.support, dns.hostnames
    );
    if !needs.create_endpoints {
        return Check::not_applicable(NAME, format!("{read} (CreateVpcEndpoints=false)"));
    }
    let mut fixes = Vec::new();
    for (on, attr) in [
        (dns.support, "--enable-dns-support"),
        (dns.hostnames, "--enable-dns-hostnames"),
    ] {
        if !on {
            fixes.push(format!(
                "aws ec2 modify-vpc-attribute --region {} --vpc-id {} {attr} '{{\"Value\":true}}'",
                needs.region, needs.vpc_id
            ));
        }
    }
    if fixes.is_empty() {
        Check::pass(NAME, read)
    } else {
        Check::fail(
            NAME,
            format!("{read}: private-DNS interface endpoints need both"),
            fixes.join(" && "),
        )
    }
}

/// One subnet as EC2 describes it; `None` fields for a subnet EC2 does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFact {
    pub id: String,
    pub vpc_id: Option<String>,
    pub az: Option<String>,
}

pub fn subnets(needs: &Needs, facts: &[SubnetFact]) -> Check {
    const NAME: &str = "subnets";
    let by_id: BTreeMap<&str, &SubnetFact> = facts.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut problems = Vec::new();
    let mut azs = BTreeSet::new();
    let mut read = Vec::new();
    for id in &needs.subnets {
        match by_id.get(id.as_str()) {
            None => problems.push(format!("{id} does not exist in {}", needs.region)),
            Some(f) => {
                let vpc = f.vpc_id.as_deref().unwrap_or("?");
                let az = f.az.as_deref().unwrap_or("?");
                read.push(format!("{id} {az} {vpc}"));
                if vpc != needs.vpc_id {
                    problems.push(format!("{id} is in {vpc}, not {}", needs.vpc_id));
                }
                azs.insert(az.to_string());
            }
        }
    }
    let distinct: BTreeSet<&String> = needs.subnets.iter().collect();
    if distinct.len() != needs.subnets.len() {
        problems.push("the same subnet is given twice".into());
    }
    if problems.is_empty() && azs.len() < SUBNET_AZS {
        problems.push(format!(
            "they span {} AZ(s), {SUBNET_AZS} are needed (one task per AZ at MinTasks 3)",
            azs.len()
        ));
    }
    let read = if read.is_empty() {
        "no subnet found".to_string()
    } else {
        read.join(", ")
    };
    if problems.is_empty() {
        Check::pass(NAME, format!("{read}: {} AZs", azs.len()))
    } else {
        Check::fail(
            NAME,
            format!("{read}: {}", problems.join("; ")),
            format!(
                "set PrivateSubnet1..3 in samconfig.toml to three private subnets of {} in three different AZs (aws ec2 describe-subnets --region {} --filters Name=vpc-id,Values={})",
                needs.vpc_id, needs.region, needs.vpc_id
            ),
        )
    }
}

/// A subnet's route table and where its default route (0.0.0.0/0) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRoute {
    pub subnet: String,
    /// The explicitly associated table, or the VPC's main table.
    pub route_table: Option<String>,
    /// The default route's target id (`nat-...`, `tgw-...`, `igw-...`, `eni-...`), if any.
    pub default_target: Option<String>,
}

/// A route table of the VPC as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableFact {
    pub id: String,
    /// The VPC's main table (serves every subnet without an explicit association).
    pub main: bool,
    /// Subnets explicitly associated with it.
    pub subnets: Vec<String>,
    /// The target of its active 0.0.0.0/0 route, if any.
    pub default_target: Option<String>,
}

/// Each subnet's route table: its explicit association, else the VPC's main table (VPC docs,
/// "Route tables": a subnet not explicitly associated uses the main route table).
pub fn subnet_routes(subnets: &[String], tables: &[RouteTableFact]) -> Vec<SubnetRoute> {
    let main = tables.iter().find(|t| t.main);
    subnets
        .iter()
        .map(|s| {
            let table = tables.iter().find(|t| t.subnets.contains(s)).or(main);
            SubnetRoute {
                subnet: s.clone(),
                route_table: table.map(|t| t.id.clone()),
                default_target: table.and_then(|t| t.default_target.clone()),
            }
        })
        .collect()
}

/// Whether a default-route target gives a private subnet a path to AWS APIs.
fn egress_kind(target: &str) -> Option<&'static str> {
    [
        ("nat-", "NAT gateway"),
        ("tgw-", "transit gateway"),
        ("eni-", "network interface (NAT instance or appliance)"),
        ("i-", "NAT instance"),
        ("vpce-", "Gateway Load Balancer endpoint (firewall)"),
        // Cloud WAN: a central egress VPC behind the core network.
        ("arn:aws:networkmanager:", "Cloud WAN core network"),
        // Not VPC peering (pcx-): a peering connection carries no transit to the peer's NAT or
        // internet gateway (VPC peering docs, "unsupported configurations").
    ]
    .into_iter()
    .find(|(p, _)| target.starts_with(p))
    .map(|(_, k)| k)
}

pub fn egress(needs: &Needs, routes: &[SubnetRoute]) -> Check {
    const NAME: &str = "subnet-egress";
    let mut problems = Vec::new();
    let mut read = Vec::new();
    for r in routes {
        let table = r.route_table.as_deref().unwrap_or("no route table");
        match r.default_target.as_deref() {
            Some(t) if t.starts_with("igw-") => {
                read.push(format!("{}: {table} -> {t} (internet gateway)", r.subnet));
                problems.push(format!(
                    "{} is a public subnet (default route to {t}): tasks get no public address, so it gives them no path",
                    r.subnet
                ));
            }
            Some(t) => {
                let kind = egress_kind(t).unwrap_or("unrecognised target");
                read.push(format!("{}: {table} -> {t} ({kind})", r.subnet));
                if egress_kind(t).is_none() && !needs.create_endpoints {
                    problems.push(format!(
                        "{}: default route to {t}, not a NAT or transit gateway",
                        r.subnet
                    ));
                }
            }
            None => {
                read.push(format!("{}: {table}, no default route", r.subnet));
                if !needs.create_endpoints {
                    problems.push(format!(
                        "{} has no default route and CreateVpcEndpoints=false: tasks could not reach ECR, Logs, Kinesis",
                        r.subnet
                    ));
                }
            }
        }
        if needs.create_endpoints {
            if let Some(t) = &r.route_table {
                if !needs.endpoint_route_tables.contains(t) {
                    problems.push(format!(
                        "{}'s route table {t} is not in PrivateRouteTableIds: the S3 gateway endpoint (image layers) would not serve it",
                        r.subnet
                    ));
                }
            }
        }
    }
    let read = read.join("; ");
    if problems.is_empty() {
        Check::pass(NAME, read)
    } else {
        Check::fail(
            NAME,
            format!("{read}: {}", problems.join("; ")),
            "route the private subnets' 0.0.0.0/0 to a NAT gateway (aws ec2 create-route --route-table-id RTB --destination-cidr-block 0.0.0.0/0 --nat-gateway-id NAT), or set CreateVpcEndpoints=true with PrivateRouteTableIds = their route tables",
        )
    }
}

/// An existing VPC endpoint in the VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFact {
    pub id: String,
    pub service: String,
    pub interface: bool,
    pub private_dns: bool,
    /// EC2's state (`available`, `pending`, `deleted`, ...).
    pub state: String,
    pub route_tables: Vec<String>,
}

/// Endpoint states that no longer hold the service's private DNS name or route.
const GONE: [&str; 4] = ["deleted", "rejected", "failed", "expired"];

/// With `CreateVpcEndpoints=true`: no endpoint of this VPC (other than this stack's own) already
/// serves a service the template would create an endpoint for.
pub fn endpoint_conflicts(
    needs: &Needs,
    existing: &[EndpointFact],
    own: &BTreeSet<String>,
) -> Check {
    const NAME: &str = "vpc-endpoints";
    if !needs.create_endpoints {
        return Check::not_applicable(NAME, "CreateVpcEndpoints=false: the template creates none");
    }
    let live: Vec<&EndpointFact> = existing
        .iter()
        .filter(|e| !GONE.contains(&e.state.to_ascii_lowercase().as_str()))
        .filter(|e| !own.contains(&e.id))
        .collect();
    let mut conflicts = Vec::new();
    for w in &needs.endpoints {
        for e in live.iter().filter(|e| e.service == w.service) {
            if w.interface && e.interface && e.private_dns {
                conflicts.push(format!(
                    "{} ({}) already has private DNS for {} in {}",
                    e.id, e.state, w.service, needs.vpc_id
                ));
            }
            if !w.interface && !e.interface {
                let shared: Vec<&String> = e
                    .route_tables
                    .iter()
                    .filter(|t| needs.endpoint_route_tables.contains(t))
                    .collect();
                if !shared.is_empty() {
                    conflicts.push(format!(
                        "{} ({}) already routes {} for route table(s) {}",
                        e.id,
                        e.state,
                        w.service,
                        shared
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    let wanted = needs
        .endpoints
        .iter()
        .map(|w| w.service.rsplit('.').next().unwrap_or(&w.service))
        .collect::<Vec<_>>()
        .join(", ");
    if conflicts.is_empty() {
        Check::pass(
            NAME,
            format!(
                "none of the {} endpoints the template creates ({wanted}) exists in {} yet",
                needs.endpoints.len(),
                needs.vpc_id
            ),
        )
    } else {
        Check::fail(
            NAME,
            conflicts.join("; "),
            "the VPC already has these endpoints (a landing zone's, or another stack's): set CreateVpcEndpoints=false and use them, or delete them first",
        )
    }
}

/// Why a fact does not pass: it was read and fails, or it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    Failed(String),
    Unread(String),
}

impl Unmet {
    /// An AWS call that failed is an unread fact; every other refusal a failed check.
    pub fn of(e: &crate::deploy::DeployError) -> Self {
        use crate::deploy::DeployError as D;
        match e {
            D::Aws(_) | D::Response(_) | D::Stack(_) | D::UsageUnknown { .. } => {
                Unmet::Unread(e.to_string())
            }
            _ => Unmet::Failed(e.to_string()),
        }
    }
}

/// The verdict of the Fargate quota for a deployment's peak.
pub fn fargate_quota(result: Result<crate::deploy::QuotaReport, Unmet>) -> Check {
    const NAME: &str = "fargate-vcpu-quota";
    match result {
        Ok(q) => Check::pass(NAME, q.lines.join("; ")),
        Err(Unmet::Unread(why)) => Check::unreadable(NAME, "the Fargate quota or usage", why),
        Err(Unmet::Failed(why)) => Check::fail(
            NAME,
            why,
            format!(
                "request a Fargate vCPU quota increase: aws service-quotas request-service-quota-increase --service-code fargate --quota-code {} --desired-value N (or lower MaxTasks)",
                crate::deploy::ON_DEMAND_QUOTA
            ),
        ),
    }
}

/// The first version's image.
pub fn image(needs: &Needs, result: Result<String, Unmet>) -> Check {
    const NAME: &str = "container-image";
    match result {
        Ok(read) => Check::pass(NAME, read),
        Err(Unmet::Unread(why)) => Check::unreadable(NAME, "the image in ECR", why),
        Err(Unmet::Failed(why)) => Check::fail(
            NAME,
            why,
            format!(
                "push {} with a linux/{} platform (a multi-arch manifest list carries both), or set ContainerImage to one that has it",
                needs.image,
                if needs.cpu_architecture == "ARM64" { "arm64" } else { "amd64" }
            ),
        ),
    }
}

/// The report as text, one check a line (`PASS name: read`, then `fix:` under a FAIL).
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "readiness: account {} region {} stack {}\n",
        report.account, report.region, report.stack
    );
    for c in &report.checks {
        let skipped = if c.skipped {
            " (skipped by --skip)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<4} {}{skipped}: {}\n",
            c.status, c.name, c.read
        ));
        if let Some(f) = &c.fix {
            out.push_str(&format!("     fix: {f}\n"));
        }
    }
    out.push_str(&format!(
        "readiness: {} of {} checks failed, {} could not be read, {:.1} s\n",
        report.failures(),
        report.checks.len(),
        report.unread(),
        report.seconds
    ));
    out
}
