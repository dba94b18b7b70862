//! The account readiness check: each condition judged from plain facts (every FAIL names its
//! fix), and the AWS edge against mocked clients (aws-smithy-mocks): all passing, the
//! service-linked role created only with the flag, a fact that cannot be read, and the CLI with
//! no credentials and with AWS unreachable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudwatch as cw;
use aws_sdk_ec2 as ec2;
use aws_sdk_ecr as ecr;
use aws_sdk_iam as iam;
use aws_sdk_lambda as lambda;
use aws_sdk_servicequotas as sq;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::preflight::effective_parameters;
use orderbroker::readiness::aws::{run, Options, ReadinessClients};
use orderbroker::readiness::*;

use crate::deploy::index_manifest;
use crate::support::{orderbroker, root};

const VPC: &str = "vpc-0a1b2c3d4e5f60718";
const SUBNETS: [&str; 3] = [
    "subnet-0aaa0000000000001",
    "subnet-0bbb0000000000002",
    "subnet-0ccc0000000000003",
];
const AZS: [&str; 3] = ["us-east-2a", "us-east-2b", "us-east-2c"];
const RTB: &str = "rtb-0private000000001";
const ACCOUNT: &str = "111122223333";

fn template() -> Template {
    Template::load(root().join("template.yaml")).unwrap()
}

/// samconfig.toml's parameters with the placeholders replaced, plus `extra`.
fn params(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut set: Vec<(String, String)> = vec![
        ("OrdersDbResourceId".into(), "prx-0123456789abcdef0".into()),
        (
            "OrdersDbSecurityGroupId".into(),
            "sg-0123456789abcdef0".into(),
        ),
        ("VpcId".into(), VPC.into()),
        ("PrivateSubnet1".into(), SUBNETS[0].into()),
        ("PrivateSubnet2".into(), SUBNETS[1].into()),
        ("PrivateSubnet3".into(), SUBNETS[2].into()),
    ];
    set.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let overrides: BTreeMap<String, String> =
        SamConfig::load(root().join("samconfig.toml"), "default")
            .unwrap()
            .deploy_overrides(&set)
            .unwrap()
            .into_iter()
            .collect();
    effective_parameters(&template(), &overrides)
}

fn needs(extra: &[(&str, &str)]) -> Needs {
    Needs::from_template(&template(), &params(extra), "orderbroker", "us-east-2").unwrap()
}

fn with_endpoints() -> Needs {
    needs(&[
        ("CreateVpcEndpoints", "true"),
        ("PrivateRouteTableIds", RTB),
    ])
}

fn assert_fail(c: &Check, fix_has: &str) {
    assert_eq!(c.status, Status::Fail, "{c:?}");
    let fix = c.fix.as_deref().unwrap_or_default();
    assert!(fix.contains(fix_has), "fix {fix:?} lacks {fix_has:?}");
}

// ------------------------------------------------------------------ what the template needs

#[test]
fn the_needs_come_from_the_template_every_endpoint_and_reservation_included() {
    let n = with_endpoints();
    let services: Vec<&str> = n.endpoints.iter().map(|e| e.service.as_str()).collect();
    for s in [
        "ecr.api",
        "ecr.dkr",
        "logs",
        "kinesis-streams",
        "codedeploy",
        "elasticloadbalancing",
    ] {
        let full = format!("com.amazonaws.us-east-2.{s}");
        assert!(
            services.contains(&full.as_str()),
            "{full} missing: {services:?}"
        );
        assert!(n.endpoints.iter().any(|e| e.service == full && e.interface));
    }
    assert!(n
        .endpoints
        .iter()
        .any(|e| e.service == "com.amazonaws.us-east-2.s3" && !e.interface));
    let template_reserved: i64 = template()
        .resources()
        .filter_map(|r| {
            r.prop("ReservedConcurrentExecutions")
                .and_then(|v| v.as_i64())
        })
        .sum();
    assert!(template_reserved > 0);
    assert_eq!(n.reserved_concurrency, template_reserved);
    assert_eq!(n.hook_name_prefix, "CodeDeployHook_");
    assert!(
        ["-test", "-prod"].contains(&n.hook_name_suffix.as_str()),
        "{}",
        n.hook_name_suffix
    );
    assert!(
        needs(&[]).endpoints.is_empty(),
        "no endpoints when CreateVpcEndpoints=false"
    );
}

#[test]
fn every_samconfig_placeholder_is_refused_by_name() {
    let mut p = params(&[]);
    p.insert("VpcId".into(), "vpc-REPLACE".into());
    p.insert("OrdersDbSecurityGroupId".into(), "sg-REPLACE".into());
    let e = Needs::from_template(&template(), &p, "orderbroker", "us-east-2").unwrap_err();
    assert!(
        e.to_string().contains("OrdersDbSecurityGroupId, VpcId"),
        "{e}"
    );
    assert!(e.to_string().contains("OrdersDbSecurityGroupId"), "{e}");
    assert!(e.to_string().contains("placeholder"), "{e}");
}

// ------------------------------------------------------------------ each judgement

#[test]
fn a_stack_name_of_44_fits_the_hook_names_and_45_does_not() {
    let mut n = needs(&[]);
    n.stack = "a".repeat(44);
    assert_eq!(stack_name(&n).status, Status::Pass);
    n.stack = "a".repeat(45);
    assert_fail(&stack_name(&n), "at most 44 characters");
    n.stack = "9lives".into();
    assert_fail(&stack_name(&n), "starts with a letter");
}

#[test]
fn a_small_concurrency_quota_fails_with_the_quota_code_and_the_value_to_ask() {
    let n = needs(&[]);
    let c = lambda_concurrency(
        &n,
        Concurrency {
            account_limit: 10,
            unreserved: 10,
            reserved_by_stack: 0,
        },
    );
    let wanted = 10 + (100 - (10 - n.reserved_concurrency));
    assert_fail(&c, "L-B99A9384");
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .contains(&format!("--desired-value {wanted}")),
        "{c:?}"
    );
    // An update: the stack's own reservations are already subtracted from the unreserved.
    let update = lambda_concurrency(
        &n,
        Concurrency {
            account_limit: 104,
            unreserved: 100,
            reserved_by_stack: n.reserved_concurrency,
        },
    );
    assert_eq!(update.status, Status::Pass, "{update:?}");
    let fresh = lambda_concurrency(
        &n,
        Concurrency {
            account_limit: 1000,
            unreserved: 1000,
            reserved_by_stack: 0,
        },
    );
    assert_eq!(fresh.status, Status::Pass);
}

#[test]
fn vpc_dns_matters_only_with_endpoints_and_names_each_attribute_to_turn_on() {
    let off = VpcDns {
        support: true,
        hostnames: false,
    };
    assert_eq!(vpc_dns(&needs(&[]), off).status, Status::NotApplicable);
    let c = vpc_dns(&with_endpoints(), off);
    assert_fail(&c, "--enable-dns-hostnames");
    assert!(!c.fix.as_deref().unwrap().contains("--enable-dns-support"));
    let on = VpcDns {
        support: true,
        hostnames: true,
    };
    assert_eq!(vpc_dns(&with_endpoints(), on).status, Status::Pass);
}

fn subnet(id: &str, vpc: &str, az: &str) -> SubnetFact {
    SubnetFact {
        id: id.into(),
        vpc_id: Some(vpc.into()),
        az: Some(az.into()),
    }
}

#[test]
fn subnets_must_exist_in_the_vpc_and_span_three_azs() {
    let n = needs(&[]);
    let good: Vec<SubnetFact> = (0..3).map(|i| subnet(SUBNETS[i], VPC, AZS[i])).collect();
    assert_eq!(subnets(&n, &good).status, Status::Pass);
    let two_azs = vec![
        subnet(SUBNETS[0], VPC, AZS[0]),
        subnet(SUBNETS[1], VPC, AZS[0]),
        subnet(SUBNETS[2], VPC, AZS[2]),
    ];
    let c = subnets(&n, &two_azs);
    assert_fail(&c, "three different AZs");
    assert!(c.read.contains("2 AZ"), "{c:?}");
    let other_vpc = vec![
        subnet(SUBNETS[0], VPC, AZS[0]),
        subnet(SUBNETS[1], "vpc-0other", AZS[1]),
    ];
    let c = subnets(&n, &other_vpc);
    assert!(c.read.contains("vpc-0other"), "{c:?}");
    assert!(
        c.read.contains(&format!("{} does not exist", SUBNETS[2])),
        "{c:?}"
    );
    assert_eq!(c.status, Status::Fail);
}

fn table(id: &str, main: bool, subnets: &[&str], target: Option<&str>) -> RouteTableFact {
    RouteTableFact {
        id: id.into(),
        main,
        subnets: subnets.iter().map(|s| s.to_string()).collect(),
        default_target: target.map(str::to_string),
    }
}

#[test]
fn a_subnet_without_an_explicit_association_uses_the_main_route_table() {
    let tables = vec![
        table("rtb-main", true, &[], None),
        table(RTB, false, &[SUBNETS[0]], Some("nat-0abc")),
    ];
    let subnets: Vec<String> = SUBNETS.iter().map(|s| s.to_string()).collect();
    let routes = subnet_routes(&subnets, &tables);
    assert_eq!(routes[0].route_table.as_deref(), Some(RTB));
    assert_eq!(routes[0].default_target.as_deref(), Some("nat-0abc"));
    assert_eq!(routes[1].route_table.as_deref(), Some("rtb-main"));
    assert_eq!(routes[1].default_target, None);
}

fn routes(target: Option<&str>) -> Vec<SubnetRoute> {
    SUBNETS
        .iter()
        .map(|s| SubnetRoute {
            subnet: s.to_string(),
            route_table: Some(RTB.into()),
            default_target: target.map(str::to_string),
        })
        .collect()
}

#[test]
fn private_subnets_need_a_nat_or_transit_gateway_unless_the_endpoints_are_created() {
    let n = needs(&[]);
    assert_eq!(egress(&n, &routes(Some("nat-0abc"))).status, Status::Pass);
    assert_eq!(egress(&n, &routes(Some("tgw-0abc"))).status, Status::Pass);
    // A peering connection carries no transit to the peer's NAT: no path to AWS.
    assert_fail(&egress(&n, &routes(Some("pcx-0abc"))), "nat-gateway-id");
    assert_fail(&egress(&n, &routes(None)), "nat-gateway-id");
    let public = egress(&n, &routes(Some("igw-0abc")));
    assert_eq!(public.status, Status::Fail);
    assert!(public.read.contains("public subnet"), "{public:?}");
    // With the endpoints no default route is needed, but the S3 gateway endpoint must serve the
    // subnets' route table.
    assert_eq!(
        egress(&with_endpoints(), &routes(None)).status,
        Status::Pass
    );
    let mut n = with_endpoints();
    n.endpoint_route_tables = vec!["rtb-0someother".into()];
    let c = egress(&n, &routes(None));
    assert_eq!(c.status, Status::Fail);
    assert!(c.read.contains("PrivateRouteTableIds"), "{c:?}");
}

fn endpoint(id: &str, service: &str, state: &str) -> EndpointFact {
    EndpointFact {
        id: id.into(),
        service: format!("com.amazonaws.us-east-2.{service}"),
        interface: service != "s3",
        private_dns: service != "s3",
        state: state.into(),
        route_tables: if service == "s3" {
            vec![RTB.into()]
        } else {
            vec![]
        },
    }
}

#[test]
fn an_existing_private_dns_endpoint_for_any_service_the_template_creates_is_named() {
    let n = with_endpoints();
    let none = BTreeSet::new();
    assert_eq!(endpoint_conflicts(&n, &[], &none).status, Status::Pass);
    let existing = vec![
        endpoint("vpce-0central1", "elasticloadbalancing", "available"),
        endpoint("vpce-0central2", "s3", "available"),
        endpoint("vpce-0gone", "ecr.api", "deleted"),
        endpoint("vpce-0other", "sqs", "available"),
    ];
    let c = endpoint_conflicts(&n, &existing, &none);
    assert_fail(&c, "CreateVpcEndpoints=false");
    assert!(c.read.contains("vpce-0central1"), "{c:?}");
    assert!(c.read.contains("vpce-0central2"), "{c:?}");
    assert!(
        !c.read.contains("vpce-0gone"),
        "a deleted endpoint holds nothing: {c:?}"
    );
    assert!(!c.read.contains("vpce-0other"), "{c:?}");
    // On an update the stack's own endpoints are not conflicts.
    let own: BTreeSet<String> = ["vpce-0central1", "vpce-0central2"]
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(endpoint_conflicts(&n, &existing, &own).status, Status::Pass);
    assert_eq!(
        endpoint_conflicts(&needs(&[]), &existing, &none).status,
        Status::NotApplicable
    );
}

// ------------------------------------------------------------------ the edge, mocked

/// The account the mocks describe.
#[derive(Clone)]
struct Account {
    role_exists: bool,
    /// GetRole calls after CreateServiceLinkedRole before IAM returns the role.
    role_visible_after: usize,
    unreserved: i32,
    dns_hostnames: bool,
    default_target: Option<&'static str>,
    endpoints: Vec<(&'static str, &'static str)>,
    route_tables_denied: bool,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            role_exists: true,
            role_visible_after: 0,
            unreserved: 1000,
            dns_hostnames: true,
            default_target: Some("nat-0abc"),
            endpoints: vec![],
            route_tables_denied: false,
        }
    }
}

#[derive(Default, Clone)]
struct Calls {
    created: Arc<AtomicUsize>,
    get_role: Arc<AtomicUsize>,
}

fn clients(a: Account, calls: &Calls) -> ReadinessClients {
    let created = calls.created.clone();
    let get_role_calls = calls.get_role.clone();
    let created_for_get = calls.created.clone();
    let a2 = a.clone();
    let iam_rules = vec![
        mock!(iam::Client::get_role).then_compute_response(move |_| {
            let after = get_role_calls.fetch_add(1, Ordering::SeqCst);
            let made = created_for_get.load(Ordering::SeqCst) > 0;
            if a2.role_exists || (made && after >= a2.role_visible_after) {
                MockResponse::Output(
                    iam::operation::get_role::GetRoleOutput::builder()
                        .role(
                            iam::types::Role::builder()
                                .role_name(ECS_SLR_NAME)
                                .path("/aws-service-role/ecs.amazonaws.com/")
                                .role_id("AROAEXAMPLE")
                                .arn("arn:aws:iam::111122223333:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS")
                                .create_date(aws_smithy_types::DateTime::from_secs(0))
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
            } else {
                MockResponse::Error(iam::operation::get_role::GetRoleError::NoSuchEntityException(
                    iam::types::error::NoSuchEntityException::builder()
                        .message("The role with name AWSServiceRoleForECS cannot be found.")
                        .build(),
                ))
            }
        }),
        mock!(iam::Client::create_service_linked_role)
            .match_requests(|r| r.aws_service_name() == Some("ecs.amazonaws.com"))
            .then_compute_output(move |_| {
                created.fetch_add(1, Ordering::SeqCst);
                iam::operation::create_service_linked_role::CreateServiceLinkedRoleOutput::builder()
                    .build()
            }),
    ];

    let unreserved = a.unreserved;
    let lambda_rules = vec![
        mock!(lambda::Client::get_account_settings).then_output(move || {
            lambda::operation::get_account_settings::GetAccountSettingsOutput::builder()
                .account_limit(
                    lambda::types::AccountLimit::builder()
                        .concurrent_executions(1000)
                        .unreserved_concurrent_executions(unreserved)
                        .build(),
                )
                .build()
        }),
    ];
    let hostnames = a.dns_hostnames;
    let target = a.default_target;
    let endpoints = a.endpoints.clone();
    let mut ec2_rules = vec![
        mock!(ec2::Client::describe_vpc_attribute)
            .match_requests(|r| r.vpc_id() == Some(VPC))
            .then_compute_output(move |r| {
                let v = |b: bool| {
                    ec2::types::AttributeBooleanValue::builder()
                        .value(b)
                        .build()
                };
                let b =
                    ec2::operation::describe_vpc_attribute::DescribeVpcAttributeOutput::builder()
                        .vpc_id(VPC);
                match r.attribute() {
                    Some(ec2::types::VpcAttributeName::EnableDnsHostnames) => {
                        b.enable_dns_hostnames(v(hostnames)).build()
                    }
                    _ => b.enable_dns_support(v(true)).build(),
                }
            }),
        mock!(ec2::Client::describe_subnets).then_output(|| {
            ec2::operation::describe_subnets::DescribeSubnetsOutput::builder()
                .set_subnets(Some(
                    (0..3)
                        .map(|i| {
                            ec2::types::Subnet::builder()
                                .subnet_id(SUBNETS[i])
                                .vpc_id(VPC)
                                .availability_zone(AZS[i])
                                .build()
                        })
                        .collect(),
                ))
                .build()
        }),
        mock!(ec2::Client::describe_vpc_endpoints).then_output(move || {
            ec2::operation::describe_vpc_endpoints::DescribeVpcEndpointsOutput::builder()
                .set_vpc_endpoints(Some(
                    endpoints
                        .iter()
                        .map(|(id, svc)| {
                            ec2::types::VpcEndpoint::builder()
                                .vpc_endpoint_id(*id)
                                .vpc_id(VPC)
                                .service_name(format!("com.amazonaws.us-east-2.{svc}"))
                                .vpc_endpoint_type(ec2::types::VpcEndpointType::Interface)
                                .private_dns_enabled(true)
                                .state(ec2::types::State::Available)
                                .build()
                        })
                        .collect(),
                ))
                .build()
        }),
    ];
    ec2_rules.push(if a.route_tables_denied {
        mock!(ec2::Client::describe_route_tables).then_error(|| {
            ec2::operation::describe_route_tables::DescribeRouteTablesError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .message("You are not authorized to perform this operation.")
                    .build(),
            )
        })
    } else {
        mock!(ec2::Client::describe_route_tables).then_output(move || {
            let mut rt = ec2::types::RouteTable::builder()
                .route_table_id(RTB)
                .vpc_id(VPC)
                .associations(
                    ec2::types::RouteTableAssociation::builder()
                        .main(true)
                        .build(),
                );
            for s in SUBNETS {
                rt = rt.associations(
                    ec2::types::RouteTableAssociation::builder()
                        .subnet_id(s)
                        .route_table_id(RTB)
                        .build(),
                );
            }
            if let Some(t) = target {
                rt = rt.routes(
                    ec2::types::Route::builder()
                        .destination_cidr_block("0.0.0.0/0")
                        .nat_gateway_id(t)
                        .state(ec2::types::RouteState::Active)
                        .build(),
                );
            }
            ec2::operation::describe_route_tables::DescribeRouteTablesOutput::builder()
                .route_tables(rt.build())
                .build()
        })
    });
    let cfn_rules = vec![mock!(cfn::Client::describe_stacks).then_error(|| {
        cfn::operation::describe_stacks::DescribeStacksError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("ValidationError")
                .message("Stack with id orderbroker does not exist")
                .build(),
        )
    })];
    let sq_rules = vec![
        mock!(sq::Client::get_service_quota).then_compute_output(|r| {
            sq::operation::get_service_quota::GetServiceQuotaOutput::builder()
                .quota(
                    sq::types::ServiceQuota::builder()
                        .set_quota_code(r.quota_code().map(str::to_string))
                        .value(400.0)
                        .build(),
                )
                .build()
        }),
    ];
    let cw_rules = vec![mock!(cw::Client::get_metric_data).then_output(|| {
        cw::operation::get_metric_data::GetMetricDataOutput::builder()
            .metric_data_results(
                cw::types::MetricDataResult::builder()
                    .id("usage")
                    .timestamps(aws_smithy_types::DateTime::from_secs(
                        chrono::Utc::now().timestamp() - 60,
                    ))
                    .values(8.0)
                    .build(),
            )
            .build()
    })];
    let ecr_rules = vec![mock!(ecr::Client::batch_get_image).then_output(|| {
        ecr::operation::batch_get_image::BatchGetImageOutput::builder()
            .images(
                ecr::types::Image::builder()
                    .image_manifest(index_manifest(&["arm64", "amd64"]))
                    .image_manifest_media_type("application/vnd.oci.image.index.v1+json")
                    .build(),
            )
            .build()
    })];
    let no_rules: Vec<Rule> = vec![];
    ReadinessClients {
        deploy: orderbroker::deploy::aws::Clients {
            cloudformation: mock_client!(cfn, RuleMode::MatchAny, &cfn_rules),
            ecr: mock_client!(ecr, RuleMode::MatchAny, &ecr_rules),
            ecs: mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &no_rules),
            codedeploy: mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, &no_rules),
            quotas: mock_client!(sq, RuleMode::MatchAny, &sq_rules),
            cloudwatch: mock_client!(cw, RuleMode::MatchAny, &cw_rules),
            autoscaling: mock_client!(
                aws_sdk_applicationautoscaling,
                RuleMode::MatchAny,
                &no_rules
            ),
            http: reqwest::Client::new(),
        },
        iam: mock_client!(iam, RuleMode::MatchAny, &iam_rules),
        ec2: mock_client!(ec2, RuleMode::MatchAny, &ec2_rules),
        lambda: mock_client!(lambda, RuleMode::MatchAny, &lambda_rules),
    }
}

fn fast(create: bool) -> Options {
    Options {
        create_service_linked_role: create,
        role_wait: Duration::from_secs(5),
        role_poll: Duration::from_millis(1),
        settle: Duration::ZERO,
        deadline: Duration::from_secs(60),
    }
}

fn status_of(r: &Report, name: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {r:?}"))
        .status
}

#[tokio::test]
async fn a_ready_account_passes_every_check_and_nothing_is_created() {
    let calls = Calls::default();
    let r = run(
        &clients(Account::default(), &calls),
        &needs(&[]),
        fast(true),
        ACCOUNT,
        &|_: &str| {},
    )
    .await
    .unwrap();
    assert!(r.passed(), "{}", render(&r));
    assert_eq!(r.account, "111122223333");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name).collect();
    // Every check runs, under the names --skip takes.
    assert_eq!(names.len(), CHECK_NAMES.len(), "{names:?}");
    for n in CHECK_NAMES {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    assert_eq!(calls.created.load(Ordering::SeqCst), 0);
    let text = render(&r);
    assert!(
        text.contains("account 111122223333 region us-east-2"),
        "{text}"
    );
    assert!(text.contains("0 of 9 checks failed"), "{text}");
}

#[tokio::test]
async fn a_missing_service_linked_role_is_only_reported_without_the_flag() {
    let calls = Calls::default();
    let account = Account {
        role_exists: false,
        ..Account::default()
    };
    let r = run(
        &clients(account, &calls),
        &needs(&[]),
        fast(false),
        ACCOUNT,
        &|_: &str| {},
    )
    .await
    .unwrap();
    assert!(!r.passed());
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "ecs-service-linked-role")
        .unwrap();
    assert_fail(c, "--create-service-linked-role");
    assert_eq!(
        calls.created.load(Ordering::SeqCst),
        0,
        "read-only without the flag"
    );
}

#[tokio::test]
async fn with_the_flag_the_role_is_created_once_and_waited_for_until_iam_returns_it() {
    let calls = Calls::default();
    let account = Account {
        role_exists: false,
        role_visible_after: 4,
        ..Account::default()
    };
    let r = run(
        &clients(account, &calls),
        &needs(&[]),
        fast(true),
        ACCOUNT,
        &|_: &str| {},
    )
    .await
    .unwrap();
    assert_eq!(
        status_of(&r, "ecs-service-linked-role"),
        Status::Pass,
        "{}",
        render(&r)
    );
    assert_eq!(calls.created.load(Ordering::SeqCst), 1);
    assert!(
        calls.get_role.load(Ordering::SeqCst) >= 5,
        "polled until visible"
    );
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "ecs-service-linked-role")
        .unwrap();
    assert!(c.read.contains("created"), "{c:?}");
}

#[tokio::test]
async fn each_failing_condition_names_its_fix_and_an_unreadable_fact_never_passes() {
    let account = Account {
        unreserved: 50,
        dns_hostnames: false,
        endpoints: vec![("vpce-0central", "ecr.dkr")],
        route_tables_denied: true,
        ..Account::default()
    };
    let r = run(
        &clients(account, &Calls::default()),
        &with_endpoints(),
        fast(false),
        ACCOUNT,
        &|_: &str| {},
    )
    .await
    .unwrap();
    let get = |n: &str| r.checks.iter().find(|c| c.name == n).unwrap().clone();
    assert_fail(&get("lambda-concurrency"), "L-B99A9384");
    assert_fail(&get("vpc-dns"), "--enable-dns-hostnames");
    assert_fail(&get("vpc-endpoints"), "CreateVpcEndpoints=false");
    assert!(get("vpc-endpoints").read.contains("vpce-0central"));
    // A fact that cannot be read is UNREAD (exit 3), its fix naming the read, never a pass.
    let egress = get("subnet-egress");
    assert_eq!(egress.status, Status::Unread);
    assert!(egress.read.contains("UnauthorizedOperation"), "{egress:?}");
    assert!(
        egress
            .fix
            .as_deref()
            .unwrap()
            .contains("the VPC's route tables"),
        "{egress:?}"
    );
    assert!(!r.passed());
    assert_eq!(
        get("subnets").status,
        Status::Pass,
        "the other checks still ran"
    );
    assert_eq!(r.failures(), 3, "{}", render(&r));
    assert_eq!(r.unread(), 1, "{}", render(&r));
}

// ------------------------------------------------------------------ the CLI

fn cli_readiness(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = orderbroker();
    cmd.current_dir(root())
        .args(["readiness", "--region", "us-east-2"]);
    for (k, v) in [
        ("OrdersDbResourceId", "prx-0123456789abcdef0"),
        ("OrdersDbSecurityGroupId", "sg-0123456789abcdef0"),
        ("VpcId", VPC),
        ("PrivateSubnet1", SUBNETS[0]),
        ("PrivateSubnet2", SUBNETS[1]),
        ("PrivateSubnet3", SUBNETS[2]),
    ] {
        cmd.args(["--set", &format!("{k}={v}")]);
    }
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "ORDERBROKER_STACK",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn without_credentials_the_cli_says_so_and_exits_3() {
    let out = cli_readiness(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no AWS credentials"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn with_aws_unreachable_the_cli_says_so_and_exits_3() {
    // A closed local port: every connection is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli_readiness(&[
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_ENDPOINT_URL", &url),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cannot be reached"), "{err}");
}

#[test]
fn the_samconfig_placeholder_is_bad_input_before_any_aws_call() {
    let out = orderbroker()
        .current_dir(root())
        .args(["readiness", "--region", "us-east-2"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("ORDERBROKER_STACK")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("VpcId"), "{err}");
}

#[test]
fn a_refusal_is_overridden_by_name_and_still_printed() {
    let mut r = Report {
        account: ACCOUNT.into(),
        region: "us-east-2".into(),
        stack: "orderbroker".into(),
        checks: vec![
            running_image(Err(Unmet::Failed(
                "image orderbroker@sha256:... not found in ECR".into(),
            ))),
            create_only_check(
                "ecs-service-linked-role",
                "its ECS service already uses the role",
            ),
        ],
        seconds: 0.1,
    };
    assert!(!r.passed());
    assert_eq!(r.failures(), 1);
    assert!(r.checks[0]
        .fix
        .as_deref()
        .unwrap()
        .contains("orderbroker deploy --image"));
    assert_eq!(r.checks[1].status, Status::NotApplicable);
    // An unknown name is refused, naming the checks.
    let e = r.skip(&["container-images".into()]).unwrap_err();
    assert!(
        e.contains("no such check") && e.contains("container-image"),
        "{e}"
    );
    r.skip(&["container-image".into()]).unwrap();
    assert!(r.passed());
    assert_eq!(r.failures(), 0);
    let text = render(&r);
    assert!(
        text.contains("FAIL container-image (skipped by --skip): the running image"),
        "{text}"
    );
}
