//! The template's security-group rules, resolved for given parameter values (pure): inline
//! `SecurityGroupIngress`/`SecurityGroupEgress` of each `AWS::EC2::SecurityGroup`, and the
//! stand-alone `AWS::EC2::SecurityGroupIngress`/`Egress` resources whose condition holds.

use serde::Serialize;
use serde_json::Value;

use super::{Admission, PathVerdict, Seen};
use crate::cfn::resolve::{Parameters, ResolveError};
use crate::cfn::template::{Resource, Template};

/// What cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("{0}: {1}")]
    Resolve(String, #[source] ResolveError),
    #[error("the template has no {0}")]
    Missing(String),
    #[error("{0}: {1}")]
    Rule(String, String),
}

/// Who a rule admits or reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Peer {
    Cidr(String),
    /// A security group: a logical id of the template, or an id from a parameter.
    Group(String),
    PrefixList(String),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The resource that declares it (and its index for an inline rule).
    pub source: String,
    pub group: String,
    pub ingress: bool,
    /// `tcp`, `udp`, `icmp`, or `-1` (all).
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    pub peer: Peer,
}

/// Every rule, and the groups that keep the default allow-all egress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Network {
    pub rules: Vec<Rule>,
    pub default_egress: Vec<String>,
    /// Resources whose condition is false (not created).
    absent: Vec<String>,
}

fn rule(source: String, group: &str, ingress: bool, v: &Value) -> Result<Rule, NetworkError> {
    let bad = |what: &str| NetworkError::Rule(source.clone(), what.to_string());
    let protocol = match v.get("IpProtocol") {
        Some(Value::String(s)) => s.to_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad("no IpProtocol")),
    };
    let port = |k: &str| -> Result<i64, NetworkError> {
        match v.get(k) {
            None if protocol == "-1" => Ok(if k == "FromPort" { 0 } else { 65535 }),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| bad(k)),
            Some(Value::String(s)) => s.parse().map_err(|_| bad(k)),
            _ => Err(bad(k)),
        }
    };
    let (group_key, cidr_key) = if ingress {
        ("SourceSecurityGroupId", "CidrIp")
    } else {
        ("DestinationSecurityGroupId", "CidrIp")
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let peer = if let Some(g) = text(group_key) {
        Peer::Group(g)
    } else if let Some(c) = text(cidr_key) {
        Peer::Cidr(c)
    } else if let Some(c) = text("CidrIpv6") {
        Peer::Cidr(c)
    } else if let Some(pl) = text(if ingress {
        "SourcePrefixListId"
    } else {
        "DestinationPrefixListId"
    }) {
        Peer::PrefixList(pl)
    } else {
        return Err(bad("no peer (CIDR, group or prefix list)"));
    };
    let (from_port, to_port) = if protocol == "tcp" || protocol == "6" || protocol == "-1" {
        (port("FromPort")?, port("ToPort")?)
    } else {
        (-1, -1)
    };
    Ok(Rule {
        source,
        group: group.to_string(),
        ingress,
        protocol,
        from_port,
        to_port,
        peer,
    })
}

/// An IPv4 CIDR as (network, prefix length).
fn cidr(s: &str) -> Option<(u32, u32)> {
    let (addr, len) = s.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let octets: Vec<u32> = addr
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d] = octets[..] else {
        return None;
    };
    if [a, b, c, d].iter().any(|o| *o > 255) {
        return None;
    }
    let ip = (a << 24) | (b << 16) | (c << 8) | d;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((ip & mask, len))
}

/// Whether CIDR `outer` contains CIDR `inner`.
pub fn contains(outer: &str, inner: &str) -> bool {
    match (cidr(outer), cidr(inner)) {
        (Some((o, ol)), Some((i, il))) => {
            let mask = if ol == 0 { 0 } else { u32::MAX << (32 - ol) };
            ol <= il && (i & mask) == o
        }
        _ => false,
    }
}

impl Network {
    pub fn from_template(t: &Template, p: &Parameters) -> Result<Self, NetworkError> {
        let mut net = Network::default();
        for r in t.resources() {
            if let Some(c) = r.condition() {
                if !p
                    .condition(t, c)
                    .map_err(|e| NetworkError::Resolve(r.id.to_string(), e))?
                {
                    net.absent.push(r.id.to_string());
                    continue;
                }
            }
            // Only the rules' properties (tags name values this model may not have).
            let rules_only: serde_json::Map<String, Value> = r
                .properties()
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !matches!(k.as_str(), "Tags" | "GroupDescription" | "Description"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let props = p
                .resolve(t, &Value::Object(rules_only))
                .map_err(|e| NetworkError::Resolve(r.id.to_string(), e));
            match r.type_name() {
                "AWS::EC2::SecurityGroup" => {
                    let props = props?;
                    for (key, ingress) in [
                        ("SecurityGroupIngress", true),
                        ("SecurityGroupEgress", false),
                    ] {
                        let list = props.get(key).and_then(Value::as_array);
                        if !ingress && list.is_none() {
                            net.default_egress.push(r.id.to_string());
                        }
                        for (i, v) in list.into_iter().flatten().enumerate() {
                            net.rules
                                .push(rule(format!("{}.{key}[{i}]", r.id), r.id, ingress, v)?);
                        }
                    }
                }
                kind @ ("AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress") => {
                    let props = props?;
                    let group = props
                        .get("GroupId")
                        .and_then(Value::as_str)
                        .ok_or_else(|| NetworkError::Rule(r.id.to_string(), "no GroupId".into()))?;
                    let ingress = kind.ends_with("Ingress");
                    net.rules
                        .push(rule(r.id.to_string(), group, ingress, &props)?);
                }
                _ => {}
            }
        }
        Ok(net)
    }

    /// Whether a resource is created with these parameters.
    pub fn exists(&self, r: &Resource<'_>) -> bool {
        !self.absent.iter().any(|a| a == r.id)
    }

    /// The rules of `group` in one direction that admit `seen` on TCP `port`.
    fn matching(
        &self,
        group: &str,
        ingress: bool,
        seen: &Seen,
        port: u16,
        nat: Option<&str>,
    ) -> Vec<&Rule> {
        let port = i64::from(port);
        self.rules
            .iter()
            .filter(|r| r.group == group && r.ingress == ingress)
            .filter(|r| r.protocol == "tcp" || r.protocol == "6" || r.protocol == "-1")
            .filter(|r| r.from_port <= port && port <= r.to_port)
            .filter(|r| match (&r.peer, seen) {
                (Peer::Cidr(c), _) if c == "0.0.0.0/0" => true,
                (Peer::Group(g), Seen::Private(of)) => g == of,
                (Peer::Cidr(c), Seen::NatPublic) => nat.is_some_and(|n| contains(c, n)),
                _ => false,
            })
            .collect()
    }

    /// Whether TCP `port` is open from `from` (its group, as the destination sees its address)
    /// to `to` (its group, as the source sees its address): egress of the one and ingress of
    /// the other.
    pub fn path(
        &self,
        name: &str,
        (from, from_seen): (&str, Seen),
        (to, to_seen): (&str, Seen),
        port: u16,
        nat: Option<&str>,
    ) -> PathVerdict {
        let out: Vec<&Rule> = if self.default_egress.iter().any(|g| g == from) {
            Vec::new()
        } else {
            self.matching(from, false, &to_seen, port, nat)
        };
        let default_out = self.default_egress.iter().any(|g| g == from);
        let inbound = self.matching(to, true, &from_seen, port, nat);
        let names = |rs: &[&Rule]| {
            rs.iter()
                .map(|r| r.source.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let egress_ok = default_out || !out.is_empty();
        let why = match (egress_ok, inbound.is_empty()) {
            (true, false) => format!(
                "egress {} ; ingress {}",
                if default_out {
                    "default allow-all".into()
                } else {
                    names(&out)
                },
                names(&inbound)
            ),
            (false, _) => format!("no egress rule of {from} reaches {to_seen:?} on {port}"),
            (true, true) => format!("no ingress rule of {to} admits {from_seen:?} on {port}"),
        };
        PathVerdict {
            name: name.to_string(),
            from_group: from.to_string(),
            to_group: to.to_string(),
            port,
            open: egress_ok && !inbound.is_empty(),
            why,
        }
    }

    /// Every ingress rule of these groups.
    pub fn admissions(&self, groups: &[&String]) -> Vec<Admission> {
        let mut out: Vec<Admission> = self
            .rules
            .iter()
            .filter(|r| r.ingress && groups.iter().any(|g| **g == r.group))
            .map(|r| Admission {
                group: r.group.clone(),
                from_port: r.from_port,
                to_port: r.to_port,
                peer: r.peer.clone(),
                rule: r.source.clone(),
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_containment() {
        assert!(contains("0.0.0.0/0", "203.0.113.0/28"));
        assert!(contains("203.0.113.0/24", "203.0.113.16/28"));
        assert!(!contains("203.0.113.16/28", "203.0.113.0/24"));
        assert!(!contains("10.0.0.0/8", "203.0.113.0/28"));
        assert!(!contains("bogus", "10.0.0.0/8"));
    }
}
