//! The tagging policy: `CostCenter`, `Project=TradingPlatform`, `Service=OrderBroker` on every
//! resource that can carry tags.
//!
//! This module is the build-time half (the CDK Aspect's job in the original request): it decides,
//! from the template and the stack tags, whether each resource would be deployed with the three
//! tags, by its own `Tags`, by the stack tags, or by the mechanism its type uses (SAM `Globals`,
//! `PropagateTags`), and names every gap.

pub mod aws;
pub mod enforcer;
pub mod types;

use serde_json::Value;

use crate::cfn::template::{Resource, Template};

/// The policy's keys and, where fixed, their values (`CostCenter` varies per account).
pub const REQUIRED_TAGS: [(&str, Option<&str>); 3] = [
    ("CostCenter", None),
    ("Project", Some("TradingPlatform")),
    ("Service", Some("OrderBroker")),
];

/// How a resource type takes tags in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSupport {
    /// `Tags: [{Key, Value}]`; CloudFormation also applies the stack tags.
    KeyValueList,
    /// `Tags: {Key: Value}` (e.g. SSM parameters); CloudFormation also applies the stack tags.
    KeyValueMap,
    /// SAM `Tags: {Key: Value}` (with `Globals`), put on the function and, with
    /// `PropagateTags: true`, on what SAM generates for it.
    SamMap,
    /// Nothing in CloudFormation can tag it (the run-time enforcer may, through the API).
    NotInTemplate,
}

/// How a template tags a resource type ([`types::TYPES`], shared with the enforcer). A type
/// missing there is a finding, so adding a resource type to the template forces a decision
/// about its tags.
pub fn tag_support(type_name: &str) -> Option<TagSupport> {
    types::type_rule(type_name).and_then(|r| r.template)
}

/// One gap in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The resource would be deployed without this tag.
    Missing { resource: String, tag: String },
    /// The resource carries the tag with a value other than the policy's.
    WrongValue {
        resource: String,
        tag: String,
        found: String,
        expected: String,
    },
    /// The tag's value cannot be checked (not a literal or a parameter reference).
    Unverifiable { resource: String, tag: String },
    /// `Tags` is not in the shape its type takes.
    Malformed { resource: String, why: String },
    /// The type is not in the tag-support table.
    UnknownType { resource: String, type_name: String },
    /// The resource creates resources at run time that would not get its tags.
    NoPropagation { resource: String, why: String },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Missing { resource, tag } => {
                write!(f, "{resource}: missing tag {tag}")
            }
            Finding::WrongValue {
                resource,
                tag,
                found,
                expected,
            } => write!(
                f,
                "{resource}: tag {tag} is {found:?}, the policy says {expected:?}"
            ),
            Finding::Unverifiable { resource, tag } => write!(
                f,
                "{resource}: tag {tag} has a value that cannot be checked (use a literal or !Ref CostCenter)"
            ),
            Finding::Malformed { resource, why } => write!(f, "{resource}: {why}"),
            Finding::UnknownType {
                resource,
                type_name,
            } => write!(
                f,
                "{resource}: resource type {type_name} is not in the tag-support table (src/tagging.rs): decide how it is tagged"
            ),
            Finding::NoPropagation { resource, why } => write!(f, "{resource}: {why}"),
        }
    }
}

/// The outcome of checking a template.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Resources that will carry all three tags.
    pub compliant: Vec<String>,
    /// Resources CloudFormation cannot tag (left to the run-time enforcer).
    pub not_in_template: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A tag value as written: a literal, a reference to a parameter, or something else.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TagValue {
    Literal(String),
    Param(String),
    Other,
}

fn tag_value(v: &Value) -> TagValue {
    match v {
        Value::String(s) => TagValue::Literal(s.clone()),
        Value::Number(n) => TagValue::Literal(n.to_string()),
        Value::Object(m) if m.len() == 1 => match m.get("Ref").and_then(Value::as_str) {
            Some(p) => TagValue::Param(p.to_string()),
            None => TagValue::Other,
        },
        _ => TagValue::Other,
    }
}

/// Checks every resource of `template`; `stack_tags` are the tags `sam deploy` puts on the stack
/// (from samconfig.toml), which CloudFormation applies to every resource whose type takes tags.
pub fn check_template(template: &Template, stack_tags: &[(String, String)]) -> Report {
    let mut report = Report::default();
    let globals = template.section("Globals");
    for resource in template.resources() {
        check_resource(template, &resource, globals, stack_tags, &mut report);
    }
    report
}

fn check_resource(
    template: &Template,
    r: &Resource<'_>,
    globals: &Value,
    stack_tags: &[(String, String)],
    report: &mut Report,
) {
    let id = r.id.to_string();
    let Some(support) = tag_support(r.type_name()) else {
        report.findings.push(Finding::UnknownType {
            resource: id,
            type_name: r.type_name().to_string(),
        });
        return;
    };
    let own: Vec<(String, TagValue)> = match support {
        TagSupport::NotInTemplate => {
            report.not_in_template.push(id);
            return;
        }
        TagSupport::KeyValueList => match r.prop("Tags") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match (item.get("Key").and_then(Value::as_str), item.get("Value")) {
                        (Some(k), Some(v)) => out.push((k.to_string(), tag_value(v))),
                        _ => {
                            report.findings.push(Finding::Malformed {
                                resource: id.clone(),
                                why: "Tags entries must be {Key: <literal>, Value: ...}".into(),
                            });
                            return;
                        }
                    }
                }
                out
            }
            Some(_) => {
                report.findings.push(Finding::Malformed {
                    resource: id,
                    why: "Tags must be a list of {Key, Value}".into(),
                });
                return;
            }
        },
        TagSupport::KeyValueMap => match r.prop("Tags") {
            None => Vec::new(),
            Some(Value::Object(map)) => {
                map.iter().map(|(k, v)| (k.clone(), tag_value(v))).collect()
            }
            Some(_) => {
                report.findings.push(Finding::Malformed {
                    resource: id,
                    why: "Tags must be a {Key: Value} map".into(),
                });
                return;
            }
        },
        TagSupport::SamMap => {
            // Globals first, the function's own map overrides key by key (SAM's merge).
            let mut out: Vec<(String, TagValue)> = Vec::new();
            for source in [
                globals.get("Function").and_then(|f| f.get("Tags")),
                r.prop("Tags"),
            ]
            .into_iter()
            .flatten()
            {
                let Some(map) = source.as_object() else {
                    report.findings.push(Finding::Malformed {
                        resource: id,
                        why: "SAM function Tags must be a map".into(),
                    });
                    return;
                };
                for (k, v) in map {
                    out.retain(|(key, _)| key != k);
                    out.push((k.clone(), tag_value(v)));
                }
            }
            let propagate = r
                .prop("PropagateTags")
                .or_else(|| globals.get("Function").and_then(|f| f.get("PropagateTags")));
            if propagate != Some(&Value::Bool(true)) {
                report.findings.push(Finding::NoPropagation {
                    resource: id.clone(),
                    why: "PropagateTags is not true (here or in Globals): SAM would leave the function's generated role, schedules and queues without its tags".into(),
                });
            }
            out
        }
    };

    if r.type_name() == "AWS::ECS::Service" {
        let propagate = r.prop("PropagateTags").and_then(Value::as_str);
        if !matches!(propagate, Some("SERVICE") | Some("TASK_DEFINITION")) {
            report.findings.push(Finding::NoPropagation {
                resource: id.clone(),
                why: "PropagateTags is not SERVICE or TASK_DEFINITION: the tasks it starts would carry no tags".into(),
            });
        }
    }

    let before = report.findings.len();
    for (key, expected) in REQUIRED_TAGS {
        let from_own = own.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
        let from_stack = stack_tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| TagValue::Literal(v.clone()));
        // A resource's own tag wins over the stack tag with the same key.
        let value = match (from_own, &from_stack) {
            (Some(v), _) => v.clone(),
            (None, Some(v)) => v.clone(),
            (None, None) => {
                report.findings.push(Finding::Missing {
                    resource: id.clone(),
                    tag: key.to_string(),
                });
                continue;
            }
        };
        match (expected, value) {
            (Some(want), TagValue::Literal(got)) if got != want => {
                report.findings.push(Finding::WrongValue {
                    resource: id.clone(),
                    tag: key.to_string(),
                    found: got,
                    expected: want.to_string(),
                })
            }
            (Some(_), TagValue::Literal(_)) => {}
            (None, TagValue::Literal(got)) if got.trim().is_empty() => {
                report.findings.push(Finding::Missing {
                    resource: id.clone(),
                    tag: key.to_string(),
                })
            }
            (None, TagValue::Literal(_)) => {}
            // CostCenter may come from a template parameter (make deploy feeds it from the tag).
            (None, TagValue::Param(p)) if is_parameter(template, &p) => {}
            _ => report.findings.push(Finding::Unverifiable {
                resource: id.clone(),
                tag: key.to_string(),
            }),
        }
    }
    if report.findings.len() == before {
        report.compliant.push(id);
    }
}

fn is_parameter(template: &Template, name: &str) -> bool {
    template.section("Parameters").get(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const T: &str = r#"
Parameters:
  CostCenter: {Type: String}
Globals:
  Function:
    PropagateTags: true
    Tags: {CostCenter: !Ref CostCenter, Project: TradingPlatform, Service: OrderBroker}
Resources:
  Full:
    Type: AWS::SNS::Topic
    Properties:
      Tags:
        - {Key: CostCenter, Value: !Ref CostCenter}
        - {Key: Project, Value: TradingPlatform}
        - {Key: Service, Value: OrderBroker}
  Bare:
    Type: AWS::SQS::Queue
  Fn:
    Type: AWS::Serverless::Function
    Properties: {Tags: {Service: OrderBroker}}
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
  Svc:
    Type: AWS::ECS::Service
    Properties:
      PropagateTags: SERVICE
      Tags: [{Key: Project, Value: Other}]
"#;

    #[test]
    fn own_tags_globals_and_stack_tags_each_count() {
        let t = Template::parse(T).unwrap();
        let r = check_template(&t, &[]);
        assert!(r.compliant.contains(&"Full".to_string()));
        assert!(r.compliant.contains(&"Fn".to_string()));
        assert_eq!(r.not_in_template, vec!["Listener".to_string()]);
        assert!(r.findings.contains(&Finding::Missing {
            resource: "Bare".into(),
            tag: "CostCenter".into()
        }));
        assert!(r.findings.contains(&Finding::WrongValue {
            resource: "Svc".into(),
            tag: "Project".into(),
            found: "Other".into(),
            expected: "TradingPlatform".into()
        }));

        let stack = tags(&[
            ("CostCenter", "TRD-1"),
            ("Project", "TradingPlatform"),
            ("Service", "OrderBroker"),
        ]);
        let r = check_template(&t, &stack);
        assert!(r.compliant.contains(&"Bare".to_string()));
        // The resource's own wrong value still wins over the right stack tag.
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    }

    #[test]
    fn unknown_types_and_missing_propagation_are_findings() {
        let t = Template::parse(
            "Resources:\n  X: {Type: AWS::Foo::Bar}\n  S: {Type: AWS::ECS::Service, Properties: {}}\n  F: {Type: AWS::Serverless::Function}\n",
        )
        .unwrap();
        let stack = tags(&[
            ("CostCenter", "c"),
            ("Project", "TradingPlatform"),
            ("Service", "OrderBroker"),
        ]);
        let r = check_template(&t, &stack);
        let text: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("X: resource type AWS::Foo::Bar"));
        assert!(text[1].starts_with("S: PropagateTags"));
        assert!(text[2].starts_with("F: PropagateTags"));
    }
}
