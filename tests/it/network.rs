//! Every network path the gates and the load generator need, for both ALB schemes and the
//! parameter sets a team would use, and nothing else admitted to the listeners or the tasks:
//! judged from the template's security-group rules by the VPC's documented matching
//! (src/network/), never by hand. `make test` runs the same judgement on the SAM translation.

use orderbroker::cfn::resolve::Parameters;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::network::{reachability, Peer, Reachability, Scheme};
use orderbroker::timing::deploy_parameters;

use crate::support::root;

fn judge(text: &str, set: &[(&str, &str)]) -> Reachability {
    let t = Template::parse(text).unwrap();
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    let extra: Vec<(String, String)> = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = Parameters::new(&t, &deploy_parameters(&c, &t, &extra).unwrap());
    reachability(&t, &p).unwrap()
}

fn template() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}

/// `text` with one more resource (YAML indented as a resource of `Resources`).
fn with_resource(text: &str, resource: &str) -> String {
    text.replacen("\nResources:\n", &format!("\nResources:\n{resource}"), 1)
}

/// `text` without the resource `id` (its block up to the next blank line).
fn without_resource(text: &str, id: &str) -> String {
    let start = text.find(&format!("\n  {id}:\n")).expect("the resource") + 1;
    let end = start + text[start..].find("\n\n").expect("a blank line after it") + 1;
    format!("{}{}", &text[..start], &text[end..])
}

const INTERNET_FACING: &[(&str, &str)] = &[
    ("LoadBalancerScheme", "internet-facing"),
    ("PublicSubnetIds", "subnet-0a,subnet-0b,subnet-0c"),
    ("ValidatorSourceCidr", "203.0.113.0/28"),
    (
        "CertificateArn",
        "arn:aws:acm:us-east-2:111122223333:certificate/0000-1111",
    ),
    ("CertificateHostName", "orders.example.com"),
];

/// The parameter sets a team would use, each with and without the live tests.
fn parameter_sets() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let mut sets = vec![
        ("internal, HTTP (the default)", vec![]),
        (
            "internal with a certificate and an operator CIDR on :9090",
            vec![
                (
                    "CertificateArn",
                    "arn:aws:acm:us-east-2:111122223333:certificate/0000-1111",
                ),
                ("CertificateHostName", "orders.internal.example"),
                ("TestListenerAllowedCidr", "10.20.0.0/24"),
            ],
        ),
        ("internet-facing, clients from a partner CIDR", {
            let mut v = INTERNET_FACING.to_vec();
            v.push(("ProductionAllowedCidr", "198.51.100.0/24"));
            v
        }),
        ("internet-facing, public order entry", {
            let mut v = INTERNET_FACING.to_vec();
            v.push(("ProductionAllowedCidr", "0.0.0.0/0"));
            v
        }),
    ];
    let with_live: Vec<_> = sets
        .iter()
        .map(|(n, v)| {
            let mut v = v.clone();
            v.push(("LiveTestsEnabled", "true"));
            (*n, v)
        })
        .collect();
    sets.extend(with_live);
    sets
}

#[test]
fn every_needed_path_is_open_and_nothing_else_admitted_for_both_schemes() {
    let text = template();
    for (name, set) in parameter_sets() {
        let r = judge(&text, &set);
        let live = set.contains(&("LiveTestsEnabled", "true"));
        assert!(r.problems.is_empty(), "{name}: {:#?}", r.problems);
        // Two gates x two listeners, the ALB to the tasks, and the load generator only when
        // the live tests are on.
        assert_eq!(
            r.paths.len(),
            if live { 6 } else { 5 },
            "{name}: {:#?}",
            r.paths
        );
        assert!(r.paths.iter().all(|p| p.open), "{name}");
        assert_eq!(
            r.paths.iter().any(|p| p.name.starts_with("load generator")),
            live,
            "{name}"
        );
        let expected_scheme = if set.contains(&("LoadBalancerScheme", "internet-facing")) {
            Scheme::InternetFacing
        } else {
            Scheme::Internal
        };
        assert_eq!(r.scheme, expected_scheme, "{name}");
        // The tasks admit the ALB alone, on the container port alone.
        let tasks: Vec<_> = r
            .admitted
            .iter()
            .filter(|a| a.group == "ServiceSecurityGroup")
            .collect();
        assert_eq!(tasks.len(), 1, "{name}: {tasks:?}");
        assert_eq!(
            tasks[0].peer,
            Peer::Group("LoadBalancerSecurityGroup".into())
        );
        assert_eq!((tasks[0].from_port, tasks[0].to_port), (8080, 8080));
        // Behind an internet-facing ALB the NAT path is admitted on both listeners; never
        // behind an internal one.
        let nat = Peer::Cidr("203.0.113.0/28".into());
        let nat_ports: Vec<i64> = r
            .admitted
            .iter()
            .filter(|a| a.peer == nat)
            .map(|a| a.from_port)
            .collect();
        if expected_scheme == Scheme::InternetFacing {
            assert_eq!(nat_ports, vec![443, 9090], "{name}");
        } else {
            assert!(nat_ports.is_empty(), "{name}");
        }
    }
}

#[test]
fn the_old_rules_fail_behind_an_internet_facing_alb_and_extra_sources_are_named() {
    // The review's finding: egress to the ALB's security group matches only its private
    // addresses, so behind an internet-facing ALB every gate call is dropped at the gate.
    let old = template().replace(
        "        - Description: The test listener (internal or internet-facing ALB)
          IpProtocol: tcp
          FromPort: 9090
          ToPort: 9090
          CidrIp: 0.0.0.0/0
",
        "",
    );
    let old = with_resource(
        &old,
        "  OldValidatorToTestListener:
    Type: AWS::EC2::SecurityGroupEgress
    Properties:
      GroupId: !Ref ValidatorSecurityGroup
      IpProtocol: tcp
      FromPort: 9090
      ToPort: 9090
      DestinationSecurityGroupId: !Ref LoadBalancerSecurityGroup
",
    );
    let internal = judge(&old, &[]);
    assert!(internal.problems.is_empty(), "{:#?}", internal.problems);
    let public = judge(&old, INTERNET_FACING);
    assert!(
        public
            .problems
            .iter()
            .any(|p| p.contains("test listener") && p.contains("AlbPublic")),
        "{:#?}",
        public.problems
    );
    // Without the NAT ingress on the production port, the production check is dropped at the ALB.
    let no_nat = without_resource(&template(), "ProductionListenerFromValidatorNat");
    let r = judge(&no_nat, INTERNET_FACING);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("production listener") && p.contains("NatPublic")),
        "{:#?}",
        r.problems
    );
    // A source nobody needs, on the tasks or a listener, is a problem named by its rule.
    let extra = with_resource(
        &template(),
        "  OpenTasks:
    Type: AWS::EC2::SecurityGroupIngress
    Properties:
      GroupId: !Ref ServiceSecurityGroup
      IpProtocol: tcp
      FromPort: 8080
      ToPort: 8080
      CidrIp: 0.0.0.0/0
",
    );
    let r = judge(&extra, &[]);
    assert!(
        r.problems.iter().any(|p| p.contains("OpenTasks")),
        "{:#?}",
        r.problems
    );
}
