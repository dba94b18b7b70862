//! Which network paths the template's security groups open, for given parameter values (pure
//! over a parsed template). Every path the platform needs, checked from both ends, and every
//! source admitted to the listeners and the tasks, so "nothing else reaches them" is a list a
//! test can hold exactly.
//!
//! The rules this applies (AWS documentation):
//! - a rule that references a security group matches only the PRIVATE addresses of that group's
//!   network interfaces: "Incoming traffic is allowed based on the private IP addresses of the
//!   instances that are associated with the source security group (and not the public IP or
//!   Elastic IP addresses)" (VPC user guide, "Security group rules");
//! - a function in a private subnet that calls an internet-facing ALB by its DNS name reaches
//!   the ALB's public addresses through the NAT gateway, and the ALB sees the NAT gateway's
//!   public address as the source (VPC user guide, "NAT gateways"); the ALB's addresses change
//!   over time (AWS Knowledge Center, "elb-find-load-balancer-ip"), so only 0.0.0.0/0 is sure to
//!   cover them;
//! - a VPC security group created without `SecurityGroupEgress` gets the default allow-all
//!   egress rule; giving it egress rules removes that default (CloudFormation,
//!   `AWS::EC2::SecurityGroup`, SecurityGroupEgress); stand-alone `AWS::EC2::SecurityGroupEgress`
//!   resources add rules;
//! - the VPC's own CIDR is not a parameter here, so a CIDR rule other than 0.0.0.0/0 is never
//!   counted on to cover a private address: a needed path must not rest on it.

pub mod rules;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::cfn::resolve::Parameters;
use crate::cfn::template::Template;
pub use rules::{Network, NetworkError, Peer, Rule};

/// The ALB's scheme (`LoadBalancerScheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scheme {
    Internal,
    InternetFacing,
}

/// How an address appears to a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Seen {
    /// A network interface's private address, of this security group.
    Private(String),
    /// The NAT gateways' public addresses (inside `ValidatorSourceCidr` when it is set).
    NatPublic,
    /// The internet-facing ALB's public addresses (unknown, changing).
    AlbPublic,
}

/// One needed path and whether it is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathVerdict {
    pub name: String,
    pub from_group: String,
    pub to_group: String,
    pub port: u16,
    pub open: bool,
    /// The egress and ingress rules that open it, or why not.
    pub why: String,
}

/// One source admitted on a port range of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Admission {
    pub group: String,
    pub from_port: i64,
    pub to_port: i64,
    pub peer: Peer,
    pub rule: String,
}

/// What the template opens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reachability {
    pub scheme: Scheme,
    pub paths: Vec<PathVerdict>,
    /// Every ingress rule of the ALB's and the tasks' security groups.
    pub admitted: Vec<Admission>,
    /// Needed paths closed, and sources admitted that should not be.
    pub problems: Vec<String>,
}

/// The parts of the stack the paths run between, read from the template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts {
    alb: String,
    tasks: String,
    gates: Vec<(String, String)>,
    load_generator: Option<String>,
    container_port: u16,
    production_port: u16,
}

fn parts(t: &Template, p: &Parameters, net: &Network) -> Result<Parts, NetworkError> {
    let first_group = |type_name: &str, path: &str| -> Result<String, NetworkError> {
        let r = t
            .resources_of_type(type_name)
            .find(|r| net.exists(r))
            .ok_or_else(|| NetworkError::Missing(type_name.to_string()))?;
        let v = p
            .resolve(t, r.prop(path).unwrap_or(&serde_json::Value::Null))
            .map_err(|e| NetworkError::Resolve(r.id.to_string(), e))?;
        v.get(0)
            .and_then(|g| g.as_str())
            .map(str::to_string)
            .ok_or_else(|| NetworkError::Missing(format!("{}.{path}", r.id)))
    };
    let alb = first_group(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "SecurityGroups",
    )?;
    let tasks = first_group(
        "AWS::ECS::Service",
        "NetworkConfiguration.AwsvpcConfiguration.SecurityGroups",
    )?;
    let mut gates = Vec::new();
    let mut load_generator = None;
    // AWS::Serverless::Function in template.yaml, AWS::Lambda::Function in its translation:
    // Handler and VpcConfig have the same shape in both.
    let functions = t
        .resources_of_type("AWS::Serverless::Function")
        .chain(t.resources_of_type("AWS::Lambda::Function"));
    for f in functions {
        if !net.exists(&f) {
            continue;
        }
        let handler = f
            .prop("Handler")
            .and_then(|h| h.as_str())
            .unwrap_or_default();
        let sg = f
            .prop("VpcConfig.SecurityGroupIds")
            .map(|v| p.resolve(t, v))
            .transpose()
            .map_err(|e| NetworkError::Resolve(f.id.to_string(), e))?
            .and_then(|v| v.get(0).and_then(|g| g.as_str()).map(str::to_string));
        match (handler, sg) {
            ("traffic-validator", Some(sg)) => gates.push((f.id.to_string(), sg)),
            ("load-generator", Some(sg)) => load_generator = Some(sg),
            _ => {}
        }
    }
    let number = |name: &str| -> Result<u16, NetworkError> {
        p.get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| NetworkError::Missing(format!("parameter {name}")))
    };
    let production_port = if p.get("CertificateArn").is_some_and(|c| !c.is_empty()) {
        443
    } else {
        80
    };
    Ok(Parts {
        alb,
        tasks,
        gates,
        load_generator,
        container_port: number("ContainerPort")?,
        production_port,
    })
}

/// The scheme the parameters choose.
pub fn scheme(p: &Parameters) -> Scheme {
    match p.get("LoadBalancerScheme") {
        Some("internet-facing") => Scheme::InternetFacing,
        _ => Scheme::Internal,
    }
}

/// Every needed path and every admitted source, for these parameter values.
pub fn reachability(t: &Template, p: &Parameters) -> Result<Reachability, NetworkError> {
    let net = Network::from_template(t, p)?;
    let parts = parts(t, p, &net)?;
    let scheme = scheme(p);
    let nat_cidr = p.get("ValidatorSourceCidr").filter(|c| !c.is_empty());
    let mut paths = Vec::new();
    let mut needed: Vec<(String, String, u16)> = Vec::new();
    for (f, sg) in &parts.gates {
        needed.push((format!("gate {f} -> test listener"), sg.clone(), 9090));
        needed.push((
            format!("gate {f} -> production listener"),
            sg.clone(),
            parts.production_port,
        ));
    }
    if let Some(sg) = &parts.load_generator {
        needed.push((
            "load generator -> production listener".into(),
            sg.clone(),
            parts.production_port,
        ));
    }
    for (name, from, port) in needed {
        // From inside the VPC to the ALB: private addresses when internal; through NAT to its
        // public addresses when internet-facing.
        let (to_seen, from_seen) = match scheme {
            Scheme::Internal => (
                Seen::Private(parts.alb.clone()),
                Seen::Private(from.clone()),
            ),
            Scheme::InternetFacing => (Seen::AlbPublic, Seen::NatPublic),
        };
        paths.push(net.path(
            &name,
            (&from, from_seen),
            (&parts.alb, to_seen),
            port,
            nat_cidr,
        ));
    }
    paths.push(net.path(
        "ALB -> tasks",
        (&parts.alb, Seen::Private(parts.alb.clone())),
        (&parts.tasks, Seen::Private(parts.tasks.clone())),
        parts.container_port,
        nat_cidr,
    ));
    let admitted: Vec<Admission> = net.admissions(&[&parts.alb, &parts.tasks]);
    let mut problems: Vec<String> = paths
        .iter()
        .filter(|v| !v.open)
        .map(|v| format!("{} (:{}) is closed: {}", v.name, v.port, v.why))
        .collect();
    problems.extend(unexpected(&admitted, &parts, p));
    Ok(Reachability {
        scheme,
        paths,
        admitted,
        problems,
    })
}

/// Ingress to the listeners or the tasks from anything but what the platform needs: the
/// production clients (ProductionAllowedCidr) on the production ports, the operators
/// (TestListenerAllowedCidr) on :9090, the gates' and load generator's group (and, for an
/// internet-facing ALB, the NAT addresses) on both, the ALB alone on the container port.
fn unexpected(admitted: &[Admission], parts: &Parts, p: &Parameters) -> Vec<String> {
    let param = |n: &str| p.get(n).filter(|v| !v.is_empty()).map(str::to_string);
    let mut in_vpc: BTreeSet<String> = parts.gates.iter().map(|(_, g)| g.clone()).collect();
    in_vpc.extend(parts.load_generator.clone());
    let prod_ports = [80, parts.production_port];
    let mut out = Vec::new();
    for a in admitted {
        let covers = |port: i64| a.from_port <= port && port <= a.to_port;
        let ok = if a.group == parts.tasks {
            covers(i64::from(parts.container_port))
                && a.from_port == a.to_port
                && a.peer == Peer::Group(parts.alb.clone())
        } else {
            let nat = param("ValidatorSourceCidr").map(Peer::Cidr);
            let vpc_callers = match &a.peer {
                Peer::Group(g) => in_vpc.contains(g),
                peer => Some(peer) == nat.as_ref(),
            };
            let single = a.from_port == a.to_port;
            let prod = prod_ports.iter().any(|p| covers(i64::from(*p)));
            let test = covers(9090);
            single
                && ((prod
                    && (vpc_callers
                        || param("ProductionAllowedCidr").map(Peer::Cidr).as_ref()
                            == Some(&a.peer)))
                    || (test
                        && (vpc_callers
                            || param("TestListenerAllowedCidr").map(Peer::Cidr).as_ref()
                                == Some(&a.peer))))
        };
        if !ok {
            out.push(format!(
                "{} admits {:?} on {}-{} ({}): not a source the platform needs",
                a.group, a.peer, a.from_port, a.to_port, a.rule
            ));
        }
    }
    out
}
