//! The AWS edge of the readiness check: reads each fact, hands it to the pure judgement in
//! [`crate::readiness`], and creates the ECS service-linked role only when asked.
//!
//! Read-only by default. The calls (IAM in docs/iam.md, `readiness`; the account comes from
//! the CLI's own sts:GetCallerIdentity, which also tells no credentials from no AWS): iam:GetRole (+ iam:CreateServiceLinkedRole with `--create-service-linked-role`),
//! lambda:GetAccountSettings, lambda:GetFunctionConcurrency, ec2:DescribeVpcAttribute,
//! ec2:DescribeSubnets, ec2:DescribeRouteTables, ec2:DescribeVpcEndpoints,
//! cloudformation:DescribeStacks/ListStackResources, ecs:DescribeServices,
//! servicequotas:GetServiceQuota, cloudwatch:GetMetricData, ecr:BatchGetImage and
//! ecr:GetDownloadUrlForLayer.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, VpcAttributeName};

use super::{
    egress, endpoint_conflicts, fargate_quota, image, lambda_concurrency, service_linked_role,
    stack_name, subnet_routes, subnets, vpc_dns, Check, Concurrency, EndpointFact, Needs, Report,
    RoleState, RouteTableFact, SubnetFact, Unmet, VpcDns, ECS_SERVICE_PRINCIPAL, ECS_SLR_NAME,
};
use crate::aws::stack::{self, StackError, StackResource};
use crate::aws::{AwsError, AwsResultExt};
use crate::deploy::aws::{quota_check, service_state, Clients, Names};

/// The clients the check reads with (one SDK configuration).
#[derive(Clone)]
pub struct ReadinessClients {
    pub deploy: Clients,
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub lambda: aws_sdk_lambda::Client,
}

impl ReadinessClients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        ReadinessClients {
            deploy: Clients::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
        }
    }
}

/// What the run may change, and how long it waits for IAM.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Create `AWSServiceRoleForECS` when it is missing (`make deploy` passes it).
    pub create_service_linked_role: bool,
    /// How long to wait for IAM to return the role it just created.
    pub role_wait: Duration,
    /// Between two GetRole polls.
    pub role_poll: Duration,
    /// After IAM returns it: ECS assumes the role at once and IAM is eventually consistent
    /// (IAM docs, "Changes that I make are not always immediately visible"); no documented
    /// bound exists, this is an assumption (README, "Not verified here").
    pub settle: Duration,
    /// The most the checks may take together (`--deadline`): each call is bounded on its own,
    /// this bounds the command.
    pub deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_service_linked_role: false,
            role_wait: Duration::from_secs(60),
            role_poll: Duration::from_secs(2),
            settle: Duration::from_secs(15),
            // Above the longest check: creating the role waits up to 60 s, then settles 15 s.
            deadline: Duration::from_secs(120),
        }
    }
}

/// Runs every check in `account` (the caller's, as STS named it). Only the stack must be
/// readable; any other fact that cannot be read is UNREAD, naming it (exit 3).
pub async fn run(
    c: &ReadinessClients,
    needs: &Needs,
    opts: Options,
    account: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, StackError> {
    let started = Instant::now();
    let account = account.to_string();
    let deployed = stack::read_stack(&c.deploy.cloudformation, &needs.stack).await?;
    let resources = match &deployed {
        Some(_) => stack::list_stack_resources(&c.deploy.cloudformation, &needs.stack)
            .await
            .map_err(StackError::from)?,
        None => Vec::new(),
    };
    let checks = concurrent_checks(c, needs, opts, (&deployed, &resources), progress).await;
    // Names of --skip are checked by the caller against CHECK_NAMES.
    Ok(Report {
        account,
        region: needs.region.clone(),
        stack: needs.stack.clone(),
        checks,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The independent checks at once, each said as it ends; a line every 10 s names the ones
/// still waiting; the whole set bounded by `opts.deadline` (a check still waiting then is
/// UNREAD, naming the deadline).
async fn concurrent_checks(
    c: &ReadinessClients,
    needs: &Needs,
    opts: Options,
    (deployed, resources): (&Option<stack::Stack>, &[StackResource]),
    progress: &(dyn Fn(&str) + Sync),
) -> Vec<Check> {
    let t = Tracker {
        pending: std::sync::Mutex::new(BTreeSet::from([
            "ecs-service-linked-role",
            "lambda-concurrency",
            "network",
            "fargate-vcpu-quota",
            "container-image",
        ])),
        progress,
        deadline: opts.deadline,
    };
    // An existing stack with a service: the checks that only matter for a create are N/A, and
    // the image that matters is the one the PRIMARY task set runs.
    let serving = deployed.as_ref().and_then(|s| {
        crate::preflight::nothing_to_protect(&s.status, s.outputs.contains_key("ServiceName"))
            .is_none()
            .then(|| Names::from_stack(s).ok())
            .flatten()
    });
    let all = async {
        tokio::join!(
            t.bounded("ecs-service-linked-role", async {
                match &serving {
                    Some(_) => vec![crate::readiness::create_only_check(
                        "ecs-service-linked-role",
                        "its ECS service already uses the role",
                    )],
                    None => vec![service_linked_role_check(c, opts).await],
                }
            }),
            t.bounded("lambda-concurrency", async {
                vec![concurrency_check(c, needs, resources).await]
            }),
            t.bounded("network", network_checks(c, needs, resources)),
            t.bounded("fargate-vcpu-quota", async {
                vec![quota(c, needs, deployed).await]
            }),
            t.bounded("container-image", async {
                match &serving {
                    Some(names) => vec![crate::readiness::running_image(
                        running_image_check(c, needs, names).await,
                    )],
                    None => vec![image(needs, image_check(c, needs).await)],
                }
            }),
        )
    };
    let mut all = std::pin::pin!(all);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    let (role, lambda, network, fargate, img) = loop {
        tokio::select! {
            done = &mut all => break done,
            _ = tick.tick() => {
                let waiting: Vec<&str> = t.pending.lock().map(|p| p.iter().copied().collect()).unwrap_or_default();
                progress(&format!("still reading: {}", waiting.join(", ")));
            }
        }
    };
    let mut checks = vec![stack_name(needs)];
    for part in [role, lambda, network, fargate, img] {
        checks.extend(part);
    }
    checks
}

/// The checks still waiting, what is said as each ends, and the deadline of them all.
struct Tracker<'a> {
    pending: std::sync::Mutex<BTreeSet<&'static str>>,
    progress: &'a (dyn Fn(&str) + Sync),
    deadline: Duration,
}

impl Tracker<'_> {
    /// `f`'s checks, or one UNREAD check when the deadline comes first; said when done.
    async fn bounded(
        &self,
        label: &'static str,
        f: impl std::future::Future<Output = Vec<Check>>,
    ) -> Vec<Check> {
        let checks = match tokio::time::timeout(self.deadline, f).await {
            Ok(checks) => checks,
            Err(_) => vec![Check::unreadable(
                if label == "network" { "vpc-dns" } else { label },
                label,
                format!(
                    "no answer within the command's deadline ({} s, --deadline)",
                    self.deadline.as_secs()
                ),
            )],
        };
        if let Ok(mut p) = self.pending.lock() {
            p.remove(label);
        }
        for ch in &checks {
            (self.progress)(&format!("{} {}", ch.status, ch.name));
        }
        checks
    }
}

async fn quota(c: &ReadinessClients, needs: &Needs, deployed: &Option<stack::Stack>) -> Check {
    let running_now = match deployed {
        Some(s) => match Names::from_stack(s) {
            Ok(names) => service_state(&c.deploy.ecs, &names)
                .await
                .map(|svc| u32::try_from(svc.desired_count()).unwrap_or(0))
                .unwrap_or(0),
            Err(_) => 0,
        },
        None => 0,
    };
    fargate_quota(
        quota_check(
            &c.deploy,
            needs.max_tasks,
            running_now,
            needs.task_vcpu,
            &needs.strategy,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| Unmet::of(&e)),
    )
}

async fn image_check(c: &ReadinessClients, needs: &Needs) -> Result<String, Unmet> {
    let arch = crate::deploy::oci_arch(&needs.cpu_architecture).map_err(|e| Unmet::of(&e))?;
    crate::deploy::aws::check_image(&c.deploy, &needs.image, arch)
        .await
        .map_err(|e| Unmet::of(&e))
}

/// The image the PRIMARY task set runs, by digest, exists with the platform.
async fn running_image_check(
    c: &ReadinessClients,
    needs: &Needs,
    names: &Names,
) -> Result<String, Unmet> {
    let arch = crate::deploy::oci_arch(&needs.cpu_architecture).map_err(|e| Unmet::of(&e))?;
    let image = crate::deploy::aws::running_image(&c.deploy, names)
        .await
        .map_err(|e| Unmet::of(&e))?;
    crate::deploy::aws::check_image(&c.deploy, &image, arch)
        .await
        .map_err(|e| Unmet::of(&e))
}

async fn get_role(c: &ReadinessClients) -> Result<Option<String>, AwsError> {
    use aws_sdk_iam::operation::get_role::GetRoleError;
    match c.iam.get_role().role_name(ECS_SLR_NAME).send().await {
        Ok(o) => Ok(Some(
            o.role()
                .map(|r| r.arn().to_string())
                .unwrap_or_else(|| ECS_SLR_NAME.to_string()),
        )),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetRoleError::NoSuchEntityException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::new("iam:GetRole", e).on(ECS_SLR_NAME)),
    }
}

async fn service_linked_role_check(c: &ReadinessClients, opts: Options) -> Check {
    const NAME: &str = "ecs-service-linked-role";
    let state = match get_role(c).await {
        Ok(Some(arn)) => RoleState::Present { arn },
        Ok(None) if !opts.create_service_linked_role => RoleState::Missing,
        Ok(None) => match create_role(c, opts).await {
            Ok(state) => state,
            Err(check) => return check,
        },
        Err(e) => return Check::unreadable(NAME, "the ECS service-linked role", e),
    };
    service_linked_role(&state)
}

/// Creates the role, waits until IAM returns it, then the settle time.
async fn create_role(c: &ReadinessClients, opts: Options) -> Result<RoleState, Check> {
    const NAME: &str = "ecs-service-linked-role";
    use aws_sdk_iam::operation::create_service_linked_role::CreateServiceLinkedRoleError;
    let started = Instant::now();
    match c
        .iam
        .create_service_linked_role()
        .aws_service_name(ECS_SERVICE_PRINCIPAL)
        .send()
        .await
    {
        Ok(_) => {}
        // Someone else created it between GetRole and now: IAM answers InvalidInput ("has been
        // taken"); the wait below finds it.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateServiceLinkedRoleError::InvalidInputException(_))
            ) => {}
        Err(e) => {
            return Err(Check::fail(
                NAME,
                format!(
                    "{ECS_SLR_NAME} is missing and creating it failed: {}",
                    AwsError::new("iam:CreateServiceLinkedRole", e)
                ),
                format!("aws iam create-service-linked-role --aws-service-name {ECS_SERVICE_PRINCIPAL} (needs iam:CreateServiceLinkedRole)"),
            ))
        }
    }
    let deadline = started + opts.role_wait;
    loop {
        match get_role(c).await {
            Ok(Some(arn)) => {
                let waited_seconds = started.elapsed().as_secs();
                tokio::time::sleep(opts.settle).await;
                return Ok(RoleState::Created {
                    arn,
                    waited_seconds,
                    settle_seconds: opts.settle.as_secs(),
                });
            }
            Ok(None) | Err(_) if Instant::now() + opts.role_poll < deadline => {
                tokio::time::sleep(opts.role_poll).await;
            }
            Ok(None) | Err(_) => {
                return Err(Check::fail(
                    NAME,
                    format!(
                        "{ECS_SLR_NAME} was requested but IAM did not return it within {} s",
                        opts.role_wait.as_secs()
                    ),
                    format!(
                        "run it again in a minute (aws iam get-role --role-name {ECS_SLR_NAME})"
                    ),
                ))
            }
        }
    }
}

fn physical_of<'a>(resources: &'a [StackResource], kind: &str) -> Vec<&'a str> {
    resources
        .iter()
        .filter(|r| r.resource_type == kind)
        .map(|r| r.physical_id.as_str())
        .collect()
}

async fn concurrency_check(
    c: &ReadinessClients,
    needs: &Needs,
    resources: &[StackResource],
) -> Check {
    const NAME: &str = "lambda-concurrency";
    let settings = match c.lambda.get_account_settings().send().await {
        Ok(s) => s,
        Err(e) => {
            return Check::unreadable(
                NAME,
                "the Lambda account settings",
                AwsError::new("lambda:GetAccountSettings", e),
            )
        }
    };
    let Some(limit) = settings.account_limit() else {
        return Check::unreadable(NAME, "the Lambda account limit", "no AccountLimit returned");
    };
    let mut reserved_by_stack = 0i64;
    for f in physical_of(resources, "AWS::Lambda::Function") {
        match c
            .lambda
            .get_function_concurrency()
            .function_name(f)
            .send()
            .await
        {
            Ok(o) => {
                reserved_by_stack += i64::from(o.reserved_concurrent_executions().unwrap_or(0))
            }
            Err(e) => {
                return Check::unreadable(
                    NAME,
                    "this stack's reserved concurrency",
                    AwsError::new("lambda:GetFunctionConcurrency", e).on(f),
                )
            }
        }
    }
    lambda_concurrency(
        needs,
        Concurrency {
            account_limit: i64::from(limit.concurrent_executions()),
            unreserved: i64::from(limit.unreserved_concurrent_executions().unwrap_or(0)),
            reserved_by_stack,
        },
    )
}

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

async fn vpc_attribute(
    c: &ReadinessClients,
    vpc: &str,
    attribute: VpcAttributeName,
) -> Result<bool, AwsError> {
    let out = c
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc)
        .attribute(attribute.clone())
        .send()
        .await
        .map_err(|e| AwsError::new("ec2:DescribeVpcAttribute", e).on(vpc))?;
    let value = match attribute {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value.and_then(|v| v.value()).unwrap_or(false))
}

/// The VPC, subnet, route and endpoint checks.
async fn network_checks(
    c: &ReadinessClients,
    needs: &Needs,
    resources: &[StackResource],
) -> Vec<Check> {
    let mut out = Vec::new();
    let dns = async {
        Ok::<_, AwsError>(VpcDns {
            support: vpc_attribute(c, &needs.vpc_id, VpcAttributeName::EnableDnsSupport).await?,
            hostnames: vpc_attribute(c, &needs.vpc_id, VpcAttributeName::EnableDnsHostnames)
                .await?,
        })
    };
    out.push(match dns.await {
        Ok(d) => vpc_dns(needs, d),
        Err(e) if e.code() == Some("InvalidVpcID.NotFound") => Check::fail(
            "vpc-dns",
            format!("VPC {} does not exist in {}", needs.vpc_id, needs.region),
            "set VpcId in samconfig.toml to a VPC of this account and region",
        ),
        Err(e) => Check::unreadable("vpc-dns", "the VPC's DNS attributes", e),
    });
    out.push(match read_subnets(c, needs).await {
        Ok(facts) => subnets(needs, &facts),
        Err(e) => Check::unreadable("subnets", "the subnets", e),
    });
    out.push(match read_route_tables(c, &needs.vpc_id).await {
        Ok(tables) => egress(needs, &subnet_routes(&needs.subnets, &tables)),
        Err(e) => Check::unreadable("subnet-egress", "the VPC's route tables", e),
    });
    let own: BTreeSet<String> = physical_of(resources, "AWS::EC2::VPCEndpoint")
        .into_iter()
        .map(str::to_string)
        .collect();
    out.push(if needs.create_endpoints {
        match read_endpoints(c, &needs.vpc_id).await {
            Ok(e) => endpoint_conflicts(needs, &e, &own),
            Err(e) => Check::unreadable("vpc-endpoints", "the VPC's endpoints", e),
        }
    } else {
        endpoint_conflicts(needs, &[], &own)
    });
    out
}

async fn read_subnets(c: &ReadinessClients, needs: &Needs) -> Result<Vec<SubnetFact>, AwsError> {
    // A `subnet-id` filter, not SubnetIds: an unknown id then is simply absent (SubnetIds fails
    // the whole call with InvalidSubnetID.NotFound and hides the other two).
    let filter = Filter::builder()
        .name("subnet-id")
        .set_values(Some(needs.subnets.clone()))
        .build();
    let mut pages = c
        .ec2
        .describe_subnets()
        .filters(filter)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for s in page.aws("ec2:DescribeSubnets")?.subnets() {
            out.push(SubnetFact {
                id: s.subnet_id().unwrap_or_default().to_string(),
                vpc_id: s.vpc_id().map(str::to_string),
                az: s.availability_zone().map(str::to_string),
            });
        }
    }
    Ok(out)
}

/// The target of an active IPv4 default route.
fn default_target(r: &aws_sdk_ec2::types::Route) -> Option<String> {
    if r.destination_cidr_block() != Some("0.0.0.0/0")
        || r.state() == Some(&aws_sdk_ec2::types::RouteState::Blackhole)
    {
        return None;
    }
    [
        r.nat_gateway_id(),
        r.transit_gateway_id(),
        r.gateway_id(),
        r.network_interface_id(),
        r.instance_id(),
        r.vpc_peering_connection_id(),
        r.carrier_gateway_id(),
        r.core_network_arn(),
    ]
    .into_iter()
    .flatten()
    .next()
    .map(str::to_string)
}

async fn read_route_tables(
    c: &ReadinessClients,
    vpc: &str,
) -> Result<Vec<RouteTableFact>, AwsError> {
    let mut pages = c
        .ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for t in page.aws("ec2:DescribeRouteTables")?.route_tables() {
            out.push(RouteTableFact {
                id: t.route_table_id().unwrap_or_default().to_string(),
                main: t.associations().iter().any(|a| a.main() == Some(true)),
                subnets: t
                    .associations()
                    .iter()
                    .filter_map(|a| a.subnet_id().map(str::to_string))
                    .collect(),
                default_target: t.routes().iter().find_map(default_target),
            });
        }
    }
    Ok(out)
}

async fn read_endpoints(c: &ReadinessClients, vpc: &str) -> Result<Vec<EndpointFact>, AwsError> {
    let mut pages = c
        .ec2
        .describe_vpc_endpoints()
        .filters(vpc_filter(vpc))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for e in page.aws("ec2:DescribeVpcEndpoints")?.vpc_endpoints() {
            out.push(EndpointFact {
                id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
                service: e.service_name().unwrap_or_default().to_string(),
                interface: e.vpc_endpoint_type()
                    == Some(&aws_sdk_ec2::types::VpcEndpointType::Interface),
                private_dns: e.private_dns_enabled().unwrap_or(false),
                state: e
                    .state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                route_tables: e.route_table_ids().to_vec(),
            });
        }
    }
    Ok(out)
}
