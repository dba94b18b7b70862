//! The guard in front of a stack update (`make deploy` runs it before `sam deploy`): refuses an
//! update that would revert what CodeDeploy changed, or that lands in a spike window.
//!
//! After the first CodeDeploy rollout, the listeners' default actions and the service's task
//! definition belong to CodeDeploy (docs/stack-deploy.md, "After the first deployment: what is frozen"). CloudFormation updates a resource
//! only when its template properties or the parameters they use change, and then sends all its
//! properties: a changed listener is rewritten to the template's target group, which may be the
//! idle one; a changed task definition fails the update on a `CODE_DEPLOY` service. So the check
//! compares the deployed template and parameters with the new ones, resource by resource, and the
//! live state (which target group serves production, which revision runs) with the stack's.

pub mod aws;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::calendar::{Calendar, CalendarError};
use crate::cfn::template::{lookup, references, Template};
use crate::deploy::{spike_window, window_refusal};
use crate::warmup::Settings;

/// What runs now, read from ECS and the stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// The target group the PRIMARY (production) task set is registered with.
    pub production_target_group: Option<String>,
    /// The task definition of the PRIMARY task set.
    pub service_task_definition: Option<String>,
    /// Logical id -> physical id of the deployed stack's resources.
    pub physical: BTreeMap<String, String>,
}

/// Why a deployed stack has nothing CodeDeploy could have changed: its creation failed or
/// never ran, so it has no service yet. `None` when there is something to protect.
pub fn nothing_to_protect(status: &str, has_service_output: bool) -> Option<String> {
    let unprotected = !has_service_output
        || matches!(
            status,
            "ROLLBACK_COMPLETE" | "REVIEW_IN_PROGRESS" | "CREATE_FAILED"
        );
    unprotected.then(|| format!("is {status} with no service yet: nothing CodeDeploy changed"))
}

/// Everything the check reads.
pub struct Inputs<'a> {
    pub new_template: &'a Template,
    /// `--parameter-overrides` of the update (template defaults fill the rest).
    pub new_overrides: &'a BTreeMap<String, String>,
    /// The deployed template and its parameter values; `None` when the stack does not exist.
    pub deployed: Option<(&'a Template, &'a BTreeMap<String, String>)>,
    pub live: &'a LiveState,
    pub now: DateTime<Utc>,
    pub calendar: &'a Calendar,
    pub settings: &'a Settings,
    /// How long a stack update may take: the window check covers [now, now + span].
    pub span: Duration,
    /// Declared market events: their windows are spike windows too.
    pub events: &'a [crate::warmup::events::Event],
}

/// One reason to refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Logical id, or `schedule`.
    pub what: String,
    pub why: String,
}

/// The verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub refusals: Vec<Refusal>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.refusals.is_empty()
    }
}

const FROZEN_SERVICE_PROPS: [&str; 6] = [
    "TaskDefinition",
    "LoadBalancers",
    "NetworkConfiguration",
    "PlatformVersion",
    "CapacityProviderStrategy",
    "LaunchType",
];
const FROZEN_TG_PROPS: [&str; 5] = ["Port", "Protocol", "ProtocolVersion", "TargetType", "VpcId"];

/// Effective parameter values: the template's defaults, then the overrides.
pub fn effective_parameters(
    t: &Template,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(params) = t.section("Parameters").as_object() {
        for (name, p) in params {
            if let Some(d) = p.get("Default") {
                out.insert(name.clone(), scalar(d));
            }
        }
    }
    for (k, v) in overrides {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Parameters a value depends on: `Ref`s, `Fn::Sub` names, and the parameters of the conditions
/// it uses (`Fn::If`, `Condition`), transitively.
fn parameter_deps(t: &Template, value: &Value, conditions: &[&str]) -> BTreeSet<String> {
    let params = t.section("Parameters");
    let mut out: BTreeSet<String> = references(value)
        .into_iter()
        .filter(|r| params.get(r).is_some())
        .collect();
    let mut todo: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
    collect_if_conditions(value, &mut todo);
    let mut seen = BTreeSet::new();
    while let Some(c) = todo.pop() {
        if !seen.insert(c.clone()) {
            continue;
        }
        let body = &t.section("Conditions")[&c];
        out.extend(
            references(body)
                .into_iter()
                .filter(|r| params.get(r).is_some()),
        );
        collect_condition_refs(body, &mut todo);
    }
    out
}

fn collect_if_conditions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Fn::If" {
                    if let Some(c) = x.get(0).and_then(Value::as_str) {
                        out.push(c.to_string());
                    }
                }
                collect_if_conditions(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_if_conditions(x, out)),
        _ => {}
    }
}

fn collect_condition_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Condition" {
                    if let Some(c) = x.as_str() {
                        out.push(c.to_string());
                    }
                }
                collect_condition_refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_condition_refs(x, out)),
        _ => {}
    }
}

/// Why a part of a resource would change in the update (None: it would not).
fn change(
    new_t: &Template,
    new_p: &BTreeMap<String, String>,
    old_t: &Template,
    old_p: &BTreeMap<String, String>,
    id: &str,
    path: Option<&str>,
) -> Option<String> {
    let part = |t: &Template| {
        t.resource(id).map(|r| match path {
            Some(p) => lookup(r.properties(), p).cloned().unwrap_or(Value::Null),
            None => r.body.clone(),
        })
    };
    let what = path.map_or("the resource".to_string(), |p| p.to_string());
    let (new_v, old_v) = match (part(new_t), part(old_t)) {
        (None, None) => return None,
        (None, Some(_)) => return Some("the update removes it".into()),
        (Some(_), None) => return None,
        (Some(n), Some(o)) => (n, o),
    };
    if new_v != old_v {
        return Some(format!("{what} differs from the deployed template"));
    }
    let cond = new_t.resource(id).and_then(|r| r.condition());
    let conds: Vec<&str> = cond.into_iter().collect();
    let changed: Vec<String> = parameter_deps(new_t, &new_v, &conds)
        .into_iter()
        .filter(|p| old_p.get(p) != new_p.get(p))
        .map(|p| {
            format!(
                "{p} {} -> {}",
                old_p.get(&p).map_or("(unset)", String::as_str),
                new_p.get(&p).map_or("(unset)", String::as_str)
            )
        })
        .collect();
    if changed.is_empty() {
        None
    } else {
        Some(format!(
            "{what} uses changed parameters: {}",
            changed.join(", ")
        ))
    }
}

fn target_groups_in(t: &Template, v: &Value) -> Vec<String> {
    references(v)
        .into_iter()
        .filter(|r| {
            t.resource(r)
                .is_some_and(|x| x.type_name() == "AWS::ElasticLoadBalancingV2::TargetGroup")
        })
        .collect()
}

/// The check.
pub fn check(i: &Inputs<'_>) -> Result<Report, CalendarError> {
    let mut report = Report::default();
    // Nothing deployed to protect (no stack yet, or one with no service): no live traffic is
    // touched, so neither a spike window nor anything else refuses it. The caller says which.
    let Some((old_t, old_over)) = i.deployed else {
        report.notes.push(
            "nothing deployed that serves traffic: this stack operation touches no live traffic"
                .into(),
        );
        return Ok(report);
    };
    if let Some(w) = spike_window(i.calendar, i.now, i.span, i.settings, i.events)? {
        report.refusals.push(Refusal {
            what: "schedule".into(),
            why: window_refusal(i.now, i.span, &w).to_string(),
        });
    }
    let new_t = i.new_template;
    let new_p = effective_parameters(new_t, i.new_overrides);
    let old_p = effective_parameters(old_t, old_over);
    let phys = |id: &str| i.live.physical.get(id).cloned();

    let services: Vec<_> = new_t.resources_of_type("AWS::ECS::Service").collect();
    for svc in &services {
        let prod_tgs = target_groups_in(new_t, svc.prop("LoadBalancers").unwrap_or(&Value::Null));
        // 1. The service's CODE_DEPLOY-owned properties.
        for prop in FROZEN_SERVICE_PROPS {
            if let Some(why) = change(new_t, &new_p, old_t, &old_p, svc.id, Some(prop)) {
                report.refusals.push(Refusal {
                    what: format!("{}.{prop}", svc.id),
                    why: format!(
                        "{why}: a service with the CODE_DEPLOY controller changes {prop} only through a CodeDeploy deployment (`orderbroker deploy`); the stack update would fail"
                    ),
                });
            }
        }
        // 2. Its task definition resource.
        for td in references(svc.prop("TaskDefinition").unwrap_or(&Value::Null)) {
            if new_t
                .resource(&td)
                .is_none_or(|r| r.type_name() != "AWS::ECS::TaskDefinition")
            {
                continue;
            }
            let live_td = i.live.service_task_definition.clone();
            let stack_td = phys(&td);
            let drift = match (&live_td, &stack_td) {
                (Some(l), Some(s)) if l != s => {
                    format!(" (CodeDeploy has since rolled out {l}; the stack still names {s})")
                }
                _ => String::new(),
            };
            if let Some(why) = change(new_t, &new_p, old_t, &old_p, &td, None) {
                report.refusals.push(Refusal {
                    what: td.clone(),
                    why: format!(
                        "{why}: a new task-definition revision would be sent to {}, which a CODE_DEPLOY service refuses{drift}; roll the change out with `orderbroker deploy`",
                        svc.id
                    ),
                });
            } else if !drift.is_empty() {
                report.notes.push(format!(
                    "{td} unchanged by this update{drift}: expected after a rollout"
                ));
            }
        }
        // 3. Listeners forwarding to the service's target groups.
        let expected_prod = prod_tgs.first().and_then(|id| phys(id));
        let swapped = match (&i.live.production_target_group, &expected_prod) {
            (Some(live), Some(expected)) => Some(live != expected),
            _ => None,
        };
        for l in new_t.resources_of_type("AWS::ElasticLoadBalancingV2::Listener") {
            let tgs = target_groups_in(new_t, l.prop("DefaultActions").unwrap_or(&Value::Null));
            if tgs.is_empty() {
                continue;
            }
            let Some(why) = change(new_t, &new_p, old_t, &old_p, l.id, None) else {
                continue;
            };
            match swapped {
                Some(false) => report.notes.push(format!(
                    "{} changes ({why}); production is on the template's target group, so the rewrite keeps it there",
                    l.id
                )),
                Some(true) => report.refusals.push(Refusal {
                    what: l.id.to_string(),
                    why: format!(
                        "{why}: CloudFormation would rewrite its default action to {}, but CodeDeploy moved production to {}: an outage. Deploy once more with `orderbroker deploy` (production returns to the template's target group), then update the stack",
                        tgs.join("/"),
                        i.live.production_target_group.as_deref().unwrap_or("?")
                    ),
                }),
                None => report.refusals.push(Refusal {
                    what: l.id.to_string(),
                    why: format!(
                        "{why}: cannot tell which target group serves production now (no PRIMARY task set found), so a rewrite of its default action may send production to the idle one"
                    ),
                }),
            }
        }
    }
    // 4. Target groups: these properties replace the group under a live listener.
    for tg in new_t.resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup") {
        for prop in FROZEN_TG_PROPS {
            if let Some(why) = change(new_t, &new_p, old_t, &old_p, tg.id, Some(prop)) {
                report.refusals.push(Refusal {
                    what: format!("{}.{prop}", tg.id),
                    why: format!(
                        "{why}: CloudFormation replaces the target group under a live listener; use a new stack"
                    ),
                });
            }
        }
    }
    // Frozen resources the new template drops.
    for r in old_t.resources() {
        let frozen = matches!(
            r.type_name(),
            "AWS::ECS::Service"
                | "AWS::ECS::TaskDefinition"
                | "AWS::ElasticLoadBalancingV2::Listener"
                | "AWS::ElasticLoadBalancingV2::TargetGroup"
        );
        if frozen && new_t.resource(r.id).is_none() {
            report.refusals.push(Refusal {
                what: r.id.to_string(),
                why: "the update removes it from the serving path".into(),
            });
        }
    }
    Ok(report)
}
