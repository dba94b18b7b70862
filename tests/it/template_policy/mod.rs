//! The stack's promises, read from template.yaml as CloudFormation reads it.
//!
//! Each test names the fact it guards; the facts and their sources are in ../shared/aws-facts.md
//! and docs/. Every test looks resources up by what they do (the listener that forwards to
//! the service's target group, the role CodeDeploy assumes), so an empty or reshuffled template
//! fails instead of passing vacuously.

mod deployment;
mod functions;
mod load_balancer;
mod observability;
mod parameters_and_outputs;
mod roles;
mod tags_and_names;
mod task_definition;

use std::collections::BTreeSet;

use crate::support::root;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::{lookup, references, Resource, Template};
use orderbroker::tagging::{check_template, Finding};
use serde_json::{json, Value};

fn template() -> Template {
    Template::load(root().join("template.yaml")).expect("template.yaml parses")
}

fn samconfig() -> SamConfig {
    SamConfig::load(root().join("samconfig.toml"), "default").expect("samconfig.toml parses")
}

fn only<'a>(t: &'a Template, type_name: &'a str) -> Resource<'a> {
    let all: Vec<_> = t.resources_of_type(type_name).collect();
    assert_eq!(all.len(), 1, "expected exactly one {type_name}");
    all[0]
}

fn r#ref(name: &str) -> Value {
    json!({ "Ref": name })
}

fn param<'a>(t: &'a Template, name: &str) -> &'a Value {
    t.section("Parameters")
        .get(name)
        .unwrap_or_else(|| panic!("parameter {name} missing"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The listener whose default action forwards to `target_group`.
fn listener_forwarding_to<'a>(t: &'a Template, target_group: &str) -> Resource<'a> {
    let found: Vec<_> = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::Listener")
        .filter(|l| {
            l.prop("DefaultActions")
                .and_then(Value::as_array)
                .is_some_and(|actions| {
                    actions.iter().any(|a| {
                        a["Type"] == "forward" && a["TargetGroupArn"] == r#ref(target_group)
                    })
                })
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one listener must forward to {target_group}"
    );
    found[0]
}

fn service(t: &Template) -> Resource<'_> {
    only(t, "AWS::ECS::Service")
}

/// A value as the stack creates it: every `Fn::If [ServicePinned, pinned, created]` taken on
/// its created branch (the Pinned* parameters are empty on a create; src/update/pins.rs).
fn as_created(v: &Value) -> Value {
    match v {
        Value::Object(m) => match m.get("Fn::If").and_then(Value::as_array) {
            Some(a) if m.len() == 1 && a.len() == 3 && a[0] == "ServicePinned" => as_created(&a[2]),
            _ => Value::Object(m.iter().map(|(k, x)| (k.clone(), as_created(x))).collect()),
        },
        Value::Array(a) => Value::Array(a.iter().map(as_created).collect()),
        other => other.clone(),
    }
}

/// A property of a resource as the stack creates it (`as_created`), by dotted path.
fn created(r: &Resource<'_>, path: &str) -> Option<Value> {
    orderbroker::cfn::template::lookup(&as_created(r.properties()), path).cloned()
}

/// Logical id of the target group the service registers with (the initial "blue").
fn blue_target_group(t: &Template) -> String {
    let tg = service(t)
        .prop("LoadBalancers.0.TargetGroupArn")
        .and_then(|v| v.get("Ref"))
        .and_then(Value::as_str)
        .expect("service registers with a target group by Ref")
        .to_string();
    assert!(t.resource(&tg).is_some());
    tg
}

fn green_target_group(t: &Template) -> String {
    let blue = blue_target_group(t);
    let others: Vec<_> = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup")
        .filter(|tg| tg.id != blue)
        .map(|tg| tg.id.to_string())
        .collect();
    assert_eq!(others.len(), 1, "exactly two target groups: blue and green");
    others[0].clone()
}

fn role_assumed_by<'a>(t: &'a Template, principal: &str) -> Vec<Resource<'a>> {
    t.resources_of_type("AWS::IAM::Role")
        .filter(|r| {
            r.prop("AssumeRolePolicyDocument.Statement")
                .and_then(Value::as_array)
                .is_some_and(|st| st.iter().any(|s| s["Principal"]["Service"] == principal))
        })
        .collect()
}

/// Inline policy statements of a role, conditional ones unwrapped (`Fn::If` true branch).
fn statements(role: &Resource<'_>) -> Vec<Value> {
    policy_statements(role, |_| true)
}

/// The statements of the role's policies `keep` selects, conditional ones unwrapped.
fn policy_statements(role: &Resource<'_>, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in role
        .prop("Policies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| keep(p))
    {
        for s in policy["PolicyDocument"]["Statement"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            match s.get("Fn::If") {
                Some(branches) => out.push(branches[1].clone()),
                None => out.push(s),
            }
        }
    }
    out
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// Every `ScheduleV2` event of every function: (function, event name, event).
fn schedule_events<'a>(t: &'a Template) -> Vec<(Resource<'a>, &'a str, &'a Value)> {
    let mut out = Vec::new();
    for f in t.resources_of_type("AWS::Serverless::Function") {
        for (name, e) in f
            .prop("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if e["Type"] == "ScheduleV2" {
                out.push((f, name.as_str(), e));
            }
        }
    }
    out
}

/// The explicit execution role of a function (`Role: !GetAtt <Role>.Arn`).
fn function_role<'a>(t: &'a Template, f: &Resource<'_>) -> Resource<'a> {
    let id = f
        .prop("Role")
        .and_then(|r| r["Fn::GetAtt"][0].as_str())
        .unwrap_or_else(|| panic!("{}: no explicit Role", f.id));
    let role = t
        .resource(id)
        .unwrap_or_else(|| panic!("{}: role {id} missing", f.id));
    assert_eq!(role.type_name(), "AWS::IAM::Role", "{}", f.id);
    role
}

/// What a function's handler may call: its role's `handler` policy (the `runtime` policy, the
/// same for every function, is checked on its own in `roles.rs`).
fn function_statements(f: &Resource<'_>) -> Vec<Value> {
    let t = template();
    let role = function_role(&t, f);
    policy_statements(&role, |p| p["PolicyName"] == "handler")
}
