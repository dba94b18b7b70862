//! The update plan: every change between a deployed and a proposed template, each with the one
//! path that carries it on a running platform (pure; `orderbroker update-plan`, and `preflight`
//! before every `make deploy`). docs/stack-updates.md has the decision and the rejected options.
//!
//! Both sides are translated templates (what CloudFormation processes) with their parameter
//! values resolved ([`crate::cfn::resolve`]): a parameter change and a SAM-generated resource are
//! seen like a template edit. Properties are compared leaf by leaf ([`diff`]); each leaf gets a
//! [`Route`] ([`rules`]): frozen > rollout > replacement > stack-update. A resource CloudFormation
//! replaces gets a new physical id: every value that refers to it changes too, and is judged
//! again (until nothing new is replaced).
//!
//! - [`diff`]: leaf-by-leaf differences, list items matched by their name.
//! - [`rules`]: the route of a property, the vendored schemas, what is flagged.
//! - [`pins`]: the service's rollout properties held at their deployed values in a stack update.
//! - [`translate`]: a SAM file through scripts/sam-translate.py.
//! - [`aws`]: the deployed side read from a stack.

pub mod aws;
pub mod diff;
pub mod pins;
pub mod rules;
pub mod translate;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::cfn::resolve::{Parameters, ResolveError, REPLACED};
use crate::cfn::template::{references, Template};
pub use rules::Route;
use rules::{create_only, fixed_name, fixed_route, flag, schema_source, Serving};

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{side} template, resource {id}: {source}")]
    Resolve {
        side: &'static str,
        id: String,
        #[source]
        source: ResolveError,
    },
    #[error("{side} template, condition of resource {id}: {source}")]
    Condition {
        side: &'static str,
        id: String,
        #[source]
        source: ResolveError,
    },
    #[error("resource type {0} is not in the vendored schemas (src/update/schemas.json): re-run scripts/vendor-schemas.py with the template")]
    UnknownType(String),
}

/// One change and the path that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub logical_id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The property path (`ContainerDefinitions[orderbroker].StopTimeout`); `None` for a
    /// resource added or removed.
    pub property: Option<String>,
    /// The route: frozen, rollout, replacement or stack-update.
    pub path: Route,
    /// The source of the route (an AWS page, the schema, or an assumption), and for a frozen
    /// change its procedure.
    pub reason: String,
    /// What made it change: `template edit`, `parameter A, B`, or `replacement of X`.
    pub cause: String,
    /// A replacement or removal of a stateful or addressed resource: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
    /// The deployed and proposed values of a property change (shown to people).
    #[serde(skip)]
    pub values: Option<(Value, Value)>,
}

/// The plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Resources CloudFormation replaces (new physical id).
    #[serde(skip)]
    pub replaced: BTreeSet<String>,
}

impl Plan {
    /// Changes that refuse the update: frozen ones and flagged replacements.
    pub fn blocking(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.path == Route::Frozen || c.flagged.is_some())
    }

    /// Changes carried by a path.
    pub fn on(&self, route: Route) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.path == route)
    }
}

/// One side: a translated template and its parameter values.
pub struct Side<'a> {
    pub template: &'a Template,
    pub parameters: Parameters,
}

impl<'a> Side<'a> {
    /// `overrides` over the template's defaults (a name the template does not declare is
    /// ignored, as `sam deploy` passes one full list to every template version), in `region`
    /// (`AWS::Region`, `AWS::Partition` and `AWS::URLSuffix` resolve; the account and stack
    /// pseudo parameters stay symbolic, the same on both sides).
    pub fn new(template: &'a Template, overrides: &[(String, String)], region: &str) -> Self {
        let (partition, suffix) = if region.starts_with("cn-") {
            ("aws-cn", "amazonaws.com.cn")
        } else if region.starts_with("us-gov-") {
            ("aws-us-gov", "amazonaws.com")
        } else {
            ("aws", "amazonaws.com")
        };
        Side {
            template,
            parameters: Parameters::new(template, overrides).with_pseudo(&[
                ("AWS::Region", region),
                ("AWS::Partition", partition),
                ("AWS::URLSuffix", suffix),
            ]),
        }
    }

    fn active(&self, side: &'static str) -> Result<BTreeMap<String, (String, Value)>, PlanError> {
        let mut out = BTreeMap::new();
        for r in self.template.resources() {
            if let Some(c) = r.condition() {
                let on = self
                    .parameters
                    .condition(self.template, c)
                    .map_err(|source| PlanError::Condition {
                        side,
                        id: r.id.to_string(),
                        source,
                    })?;
                if !on {
                    continue;
                }
            }
            out.insert(
                r.id.to_string(),
                (r.type_name().to_string(), r.properties().clone()),
            );
        }
        Ok(out)
    }
}

/// The serving path of a template: CODE_DEPLOY services, their task definitions, the
/// target-group pair and the deployment groups' listeners.
pub fn serving(side: &Side<'_>) -> Serving {
    let t = side.template;
    let mut s = Serving::default();
    let of_type = |ids: Vec<String>, ty: &str| -> Vec<String> {
        ids.into_iter()
            .filter(|id| t.resource(id).is_some_and(|r| r.type_name() == ty))
            .collect()
    };
    for svc in t.resources_of_type("AWS::ECS::Service") {
        let controller = svc
            .prop("DeploymentController")
            .and_then(|v| side.parameters.resolve(t, v).ok())
            .and_then(|v| v.get("Type").and_then(Value::as_str).map(str::to_string));
        if controller.as_deref() != Some("CODE_DEPLOY") {
            continue;
        }
        s.services.insert(svc.id.to_string());
        let td = references(svc.prop("TaskDefinition").unwrap_or(&Value::Null));
        s.task_definitions
            .extend(of_type(td, "AWS::ECS::TaskDefinition"));
        let lbs = references(svc.prop("LoadBalancers").unwrap_or(&Value::Null));
        s.target_groups
            .extend(of_type(lbs, "AWS::ElasticLoadBalancingV2::TargetGroup"));
    }
    for g in t.resources_of_type("AWS::CodeDeploy::DeploymentGroup") {
        let info = references(g.prop("LoadBalancerInfo").unwrap_or(&Value::Null));
        s.target_groups.extend(of_type(
            info.clone(),
            "AWS::ElasticLoadBalancingV2::TargetGroup",
        ));
        s.listeners
            .extend(of_type(info, "AWS::ElasticLoadBalancingV2::Listener"));
    }
    s
}

fn merge(a: Serving, b: Serving) -> Serving {
    Serving {
        services: a.services.union(&b.services).cloned().collect(),
        task_definitions: a
            .task_definitions
            .union(&b.task_definitions)
            .cloned()
            .collect(),
        target_groups: a.target_groups.union(&b.target_groups).cloned().collect(),
        listeners: a.listeners.union(&b.listeners).cloned().collect(),
    }
}

/// The plan from `old` (deployed) to `new` (proposed).
pub fn plan(old: &Side<'_>, new: &Side<'_>) -> Result<Plan, PlanError> {
    let serving = merge(serving(old), serving(new));
    let old_active = old.active("deployed")?;
    let new_active = new.active("proposed")?;
    for (ty, _) in new_active.values().chain(old_active.values()) {
        if create_only(ty).is_none() {
            return Err(PlanError::UnknownType(ty.clone()));
        }
    }
    let mut replaced = BTreeSet::new();
    loop {
        let marked = Side {
            template: new.template,
            parameters: new.parameters.with_replaced(&replaced),
        };
        let mixed = Side {
            template: new.template,
            parameters: mixed_parameters(old, new).with_replaced(&replaced),
        };
        let (changes, now_replaced) = judge(
            old,
            &marked,
            &mixed,
            &old_active,
            &new_active,
            &serving,
            &replaced,
        )?;
        if now_replaced == replaced {
            let mut changes = changes;
            flag_in_use(old, new, &mut changes, &replaced);
            return Ok(Plan { changes, replaced });
        }
        replaced = now_replaced;
    }
}

#[allow(clippy::too_many_arguments)]
fn judge(
    old: &Side<'_>,
    new: &Side<'_>,
    mixed: &Side<'_>,
    old_active: &BTreeMap<String, (String, Value)>,
    new_active: &BTreeMap<String, (String, Value)>,
    serving: &Serving,
    replaced: &BTreeSet<String>,
) -> Result<(Vec<Change>, BTreeSet<String>), PlanError> {
    let mut changes = Vec::new();
    let mut now_replaced = BTreeSet::new();
    let ids: BTreeSet<&String> = old_active.keys().chain(new_active.keys()).collect();
    for id in ids {
        match (old_active.get(id), new_active.get(id)) {
            (None, Some((ty, _))) => changes.push(Change {
                logical_id: id.clone(),
                type_name: ty.clone(),
                property: None,
                path: Route::StackUpdate,
                reason: "added: CloudFormation creates it".into(),
                cause: presence_cause(old, new, id),
                flagged: None,
                values: None,
            }),
            (Some((ty, _)), None) => {
                // A removal loses state, or takes away what serves traffic; a fixed name does
                // not matter to it.
                let serves = serving.services.contains(id)
                    || serving.task_definitions.contains(id)
                    || serving.target_groups.contains(id)
                    || serving.listeners.contains(id);
                let why = match (flag(ty, None), serves) {
                    (Some(f), true) => Some(format!("{f}; it serves traffic (the service, its task definition, the target-group pair or a listener)")),
                    (None, true) => Some("it serves traffic (the service, its task definition, the target-group pair or a listener): the revision the service runs may be deregistered, a listener or target group taken from under it".to_string()),
                    (f, false) => f,
                };
                changes.push(Change {
                    logical_id: id.clone(),
                    type_name: ty.clone(),
                    property: None,
                    path: if why.is_some() {
                        Route::Replacement
                    } else {
                        Route::StackUpdate
                    },
                    reason: "removed: CloudFormation deletes it".into(),
                    cause: presence_cause(old, new, id),
                    flagged: why,
                    values: None,
                });
            }
            (Some((old_ty, old_props)), Some((new_ty, new_props))) => {
                let resolve = |side: &Side<'_>, name: &'static str, p: &Value| {
                    side.parameters
                        .resolve(side.template, p)
                        .map_err(|source| PlanError::Resolve {
                            side: name,
                            id: id.clone(),
                            source,
                        })
                };
                let o = resolve(old, "deployed", old_props)?;
                let n = resolve(new, "proposed", new_props)?;
                // The proposed template with the deployed parameter values: what the template
                // edit alone gives, to tell a template edit from a parameter change.
                let edit_only = mixed
                    .parameters
                    .resolve(mixed.template, new_props)
                    .unwrap_or(Value::Null);
                if old_ty != new_ty {
                    now_replaced.insert(id.clone());
                    changes.push(Change {
                        logical_id: id.clone(),
                        type_name: new_ty.clone(),
                        property: None,
                        path: Route::Replacement,
                        reason: format!(
                            "the type changes from {old_ty}: CloudFormation replaces it"
                        ),
                        cause: "template edit".into(),
                        values: None,
                        flagged: flag(old_ty, same_fixed_name(old_ty, &o, &n).as_deref()),
                    });
                    continue;
                }
                let ty = new_ty;
                let shapes = create_only(ty).unwrap_or_default();
                for leaf in diff::leaves(Vec::new(), &o, &n) {
                    let shape = diff::shape(&leaf.path);
                    let cause = leaf_cause(old, new, id, &leaf, &edit_only, replaced);
                    let create_only_hit = shapes.iter().find(|(s, _)| {
                        rules_under(&shape, s)
                            || (rules_under(s, &shape) && differs_below(&leaf, s, &shape))
                    });
                    if create_only_hit.is_some() {
                        now_replaced.insert(id.clone());
                    }
                    let (path, reason, flagged) =
                        match fixed_route(serving, ty, id, &shape) {
                            Some((route, reason)) => (route, reason, None),
                            None => match create_only_hit {
                                Some((_, pointer)) => (
                                    Route::Replacement,
                                    schema_source(ty, pointer),
                                    flag(ty, same_fixed_name(ty, &o, &n).as_deref()),
                                ),
                                None => (
                                    Route::StackUpdate,
                                    format!(
                                        "resource schema {ty}: not create-only (schemas of {}): updated in place",
                                        rules::schemas().schema_date
                                    ),
                                    None,
                                ),
                            },
                        };
                    changes.push(Change {
                        logical_id: id.clone(),
                        type_name: ty.clone(),
                        property: Some(diff::render(&leaf.path)),
                        path,
                        reason,
                        cause,
                        flagged,
                        values: Some((leaf.old.clone(), leaf.new.clone())),
                    });
                }
            }
            (None, None) => {}
        }
    }
    Ok((changes, now_replaced))
}

fn rules_under(shape: &str, prefix: &str) -> bool {
    shape == prefix
        || shape
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
}

/// A leaf above a create-only shape (a whole object added or removed): whether the values at
/// the create-only shape differ inside it.
fn differs_below(leaf: &diff::Leaf, create_only: &str, leaf_shape: &str) -> bool {
    let rest = create_only[leaf_shape.len()..].trim_start_matches('.');
    if rest.is_empty() {
        return true;
    }
    diff::values_at(&leaf.old, rest) != diff::values_at(&leaf.new, rest)
}

/// Parameters a value depends on: `Ref`s, `Fn::Sub` names, and the parameters of the
/// conditions it uses (`Fn::If`, `Condition`), transitively.
pub fn parameter_deps(t: &Template, value: &Value, conditions: &[&str]) -> BTreeSet<String> {
    let params = t.section("Parameters");
    let mut out: BTreeSet<String> = references(value)
        .into_iter()
        .filter(|r| params.get(r).is_some())
        .collect();
    let mut todo: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
    collect_named(value, "Fn::If", &mut todo);
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
        collect_named(body, "Condition", &mut todo);
    }
    out
}

/// Condition names used by `Fn::If` (its first item) or `Condition` under `v`.
fn collect_named(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    let name = if key == "Fn::If" {
                        x.get(0).and_then(Value::as_str)
                    } else {
                        x.as_str()
                    };
                    if let Some(c) = name {
                        out.push(c.to_string());
                    }
                }
                collect_named(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_named(x, key, out)),
        _ => {}
    }
}

fn changed_parameters(old: &Side<'_>, new: &Side<'_>, deps: BTreeSet<String>) -> Vec<String> {
    deps.into_iter()
        .filter(|p| old.parameters.get(p) != new.parameters.get(p))
        .collect()
}

fn presence_cause(old: &Side<'_>, new: &Side<'_>, id: &str) -> String {
    match (old.template.resource(id), new.template.resource(id)) {
        (Some(o), Some(n)) => {
            let conds: Vec<&str> = o.condition().into_iter().chain(n.condition()).collect();
            let params =
                changed_parameters(old, new, parameter_deps(new.template, &Value::Null, &conds));
            if params.is_empty() {
                "template edit".into()
            } else {
                format!("parameter {}", params.join(", "))
            }
        }
        _ => "template edit".into(),
    }
}

fn leaf_cause(
    old: &Side<'_>,
    new: &Side<'_>,
    id: &str,
    leaf: &diff::Leaf,
    edit_only: &Value,
    replaced: &BTreeSet<String>,
) -> String {
    let mut texts = Vec::new();
    strings(&leaf.new, &mut texts);
    let by: Vec<&String> = replaced
        .iter()
        .filter(|r| {
            let mark = format!("{r}{REPLACED}");
            texts.iter().any(|t| t.contains(&mark))
        })
        .collect();
    if !by.is_empty() {
        return format!(
            "replacement of {}",
            by.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let between = diff::at(edit_only, &leaf.path);
    let edit = between != leaf.old;
    let param = between != leaf.new;
    let params = || {
        let Some(diff::Seg::Key(prop)) = leaf.path.first() else {
            return Vec::new();
        };
        let r = new.template.resource(id);
        let raw = r
            .and_then(|r| r.properties().get(prop).cloned())
            .unwrap_or(Value::Null);
        let conds: Vec<&str> = r.and_then(|r| r.condition()).into_iter().collect();
        changed_parameters(old, new, parameter_deps(new.template, &raw, &conds))
    };
    match (edit, param) {
        (true, false) => "template edit".into(),
        (false, _) => match params() {
            p if p.is_empty() => "template edit".into(),
            p => format!("parameter {}", p.join(", ")),
        },
        (true, true) => match params() {
            p if p.is_empty() => "template edit".into(),
            p => format!("template edit; parameter {}", p.join(", ")),
        },
    }
}

/// The proposed template's parameters with the deployed values wherever both declare one.
/// (The proposed side's physical ids and pseudo parameters are kept.)
fn mixed_parameters(old: &Side<'_>, new: &Side<'_>) -> Parameters {
    let shared: Vec<(String, String)> = old
        .parameters
        .values()
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS::"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    new.parameters.overridden(new.template, &shared)
}

/// The fixed physical name a resource keeps through the update (the same on both sides): a
/// replacement of it fails. A name that changes does not stop a replacement.
fn same_fixed_name(type_name: &str, old: &Value, new: &Value) -> Option<String> {
    fixed_name(type_name, old).filter(|p| old.get(p) == new.get(p))
}

fn strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// A resolved value as text for people: a replaced resource's mark shown as `(replaced)`.
pub fn show(v: &Value) -> String {
    diff::scalar(v).replace(REPLACED, "(replaced)")
}

/// Parameter values from a file: `aws cloudformation describe-stacks` output
/// (`Stacks[0].Parameters`, a parameter's `ResolvedValue` before its `ParameterValue`), that list
/// alone, or a `{"Name": "value"}` object.
pub fn parse_parameters(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .get("Stacks")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("Parameters"))
        .or(Some(&v).filter(|v| v.is_array()));
    if let Some(items) = list.and_then(Value::as_array) {
        return items
            .iter()
            .map(|p| {
                let key = p.get("ParameterKey").and_then(Value::as_str);
                let value = p
                    .get("ResolvedValue")
                    .or_else(|| p.get("ParameterValue"))
                    .and_then(Value::as_str);
                match (key, value) {
                    (Some(k), Some(v)) => Ok((k.to_string(), v.to_string())),
                    _ => Err(format!("{p} has no ParameterKey and ParameterValue")),
                }
            })
            .collect();
    }
    match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                other => Err(format!("{k}: {other} is not a text or a number")),
            })
            .collect(),
        None => Err(
            "expected describe-stacks output, a Parameters list or a {name: value} object".into(),
        ),
    }
}

/// The plan of a `make deploy` stack update: what the template changes (every change with its
/// path: the service's rollout properties as `rollout`, carried after the stack update), and
/// what the stack update itself would still send to a CODE_DEPLOY service once the `Pinned*`
/// parameters hold its rollout properties (must be nothing: ECS refuses them).
#[derive(Debug, Clone)]
pub struct StackUpdatePlan {
    pub plan: Plan,
    /// The `Pinned*` values passed with the update (none when the proposed template has no pins).
    pub pins: Vec<(String, String)>,
    /// Rollout-path changes the stack update would still send to a CODE_DEPLOY service.
    pub unpinned: Vec<Change>,
    /// The physical id of the target group the template gives the service (where production
    /// is when CodeDeploy has not moved it).
    pub template_production_target_group: Option<String>,
}

/// Why a stack-update plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum StackPlanError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Pins(#[from] pins::PinError),
}

/// Plans a stack update of a deployed stack (`old`, with its physical ids) to `new_template`
/// with `new_pairs`, the `Pinned*` values added as `make deploy` passes them.
pub fn plan_stack_update(
    old: &Side<'_>,
    new_template: &Template,
    new_pairs: &[(String, String)],
    region: &str,
    physical: &BTreeMap<String, String>,
) -> Result<StackUpdatePlan, StackPlanError> {
    let unpinned_pairs: Vec<(String, String)> = new_pairs
        .iter()
        .filter(|(k, _)| !pins::PIN_PARAMETERS.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut intent = Side::new(new_template, &unpinned_pairs, region);
    intent.parameters = intent.parameters.with_physical(physical);
    let plan = plan(old, &intent)?;
    let declares_pins = new_template
        .section("Parameters")
        .get(pins::PIN_PARAMETERS[0])
        .is_some();
    let pins = if declares_pins {
        pins::pins(old)?
    } else {
        Vec::new()
    };
    let mut pinned_pairs = unpinned_pairs;
    pinned_pairs.extend(pins.iter().cloned());
    let mut pinned = Side::new(new_template, &pinned_pairs, region);
    pinned.parameters = pinned.parameters.with_physical(physical);
    let services = serving(&pinned).services;
    let template_production_target_group = services
        .iter()
        .filter_map(|id| new_template.resource(id))
        .filter_map(|r| r.prop("LoadBalancers"))
        .filter_map(|v| pinned.parameters.resolve(new_template, v).ok())
        .find_map(|v| {
            v.get(0)
                .and_then(|lb| lb.get("TargetGroupArn"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let unpinned = self::plan(old, &pinned)?
        .changes
        .into_iter()
        .filter(|c| c.path == Route::Rollout && services.contains(&c.logical_id))
        .collect();
    Ok(StackUpdatePlan {
        plan,
        pins,
        unpinned,
        template_production_target_group,
    })
}

/// What the running service uses: the deployed serving services' task definition, network
/// configuration, load balancers and strategy, and what their task definitions name (roles,
/// log group). Replacing one of them, or what refers to one that is replaced, removes the old
/// one in the update's cleanup while the PRIMARY task set still runs on it: until `carry`
/// moves the tasks, an outage (a security group's rules, a role's credentials).
fn in_use_by_service(old: &Side<'_>) -> BTreeSet<String> {
    let t = old.template;
    let s = serving(old);
    let mut out = BTreeSet::new();
    for id in &s.services {
        if let Some(r) = t.resource(id) {
            for p in SERVICE_RUNS_ON {
                out.extend(references(r.prop(p).unwrap_or(&Value::Null)));
            }
        }
    }
    for id in &s.task_definitions {
        if let Some(r) = t.resource(id) {
            out.extend(references(r.properties()));
        }
    }
    out.retain(|id| t.resource(id).is_some());
    out
}

const SERVICE_RUNS_ON: [&str; 4] = [
    "TaskDefinition",
    "NetworkConfiguration",
    "LoadBalancers",
    "CapacityProviderStrategy",
];

fn flag_in_use(
    old: &Side<'_>,
    new: &Side<'_>,
    changes: &mut [Change],
    replaced: &BTreeSet<String>,
) {
    let in_use = in_use_by_service(old);
    let retained = |id: &str| {
        [old.template, new.template].iter().any(|t| {
            t.resource(id)
                .and_then(|r| r.body.get("UpdateReplacePolicy"))
                .and_then(Value::as_str)
                == Some("Retain")
        })
    };
    for c in changes.iter_mut() {
        let id = c.logical_id.as_str();
        let removed = c.property.is_none() && c.reason.starts_with("removed");
        let goes = (replaced.contains(id) && c.path == Route::Replacement) || removed;
        if !goes || retained(id) {
            continue;
        }
        let via: Vec<&String> = in_use
            .iter()
            .filter(|u| u.as_str() == id || c.cause.contains(&format!("replacement of {u}")))
            .collect();
        if via.is_empty() {
            continue;
        }
        let why = format!(
            "the running service uses {} until `carry` moves its tasks, and CloudFormation deletes the old one in the update's cleanup: an outage for the PRIMARY task set; procedure: add the new resource beside the old one under a new logical id, roll it out (make deploy), then remove the old one in a later update",
            via.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
        c.flagged = Some(match c.flagged.take() {
            Some(f) => format!("{f}; {why}"),
            None => why,
        });
    }
}
