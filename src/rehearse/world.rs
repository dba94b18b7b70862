//! The rehearsal's fixed inputs: the template's values as `make deploy` passes them, the
//! functions' own settings read through their own `from_env` from the template's environment,
//! the hook placement of the AppSpec, and the network paths the gates need (pure).

use serde_json::Value;

use crate::cfn::resolve::Parameters;
use crate::cfn::template::{lookup, Template};
use crate::gates::hook::{HookConfig, Listener};
use crate::network::reachability;
use crate::timing::model::TimingModel;
use crate::watchdog::aws::WatchdogConfig;

use super::scenario::{AlbScheme, Scenario};

/// Why a scenario cannot be rehearsed against this template.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the template: {0}")]
    Template(String),
    #[error("{function}: {why}")]
    Function { function: String, why: String },
    #[error("parameters: {}", .0.join("; "))]
    Values(Vec<String>),
    #[error("the template's rule {rule} refuses these parameters: {description}")]
    Refused { rule: String, description: String },
}

/// Placeholders an internet-facing scenario uses unless `parameters:` sets them.
pub const INTERNET_FACING_PLACEHOLDERS: [(&str, &str); 4] = [
    (
        "CertificateArn",
        "arn:aws:acm:us-east-2:111122223333:certificate/00000000-0000-0000-0000-000000000000",
    ),
    ("CertificateHostName", "orders.example.com"),
    (
        "PublicSubnetIds",
        "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    ),
    ("ValidatorSourceCidr", "198.51.100.7/32"),
];

/// Everything a run reads that does not change from run to run.
#[derive(Debug, Clone)]
pub struct Setup {
    pub timing: TimingModel,
    /// The gates by lifecycle event, in the AppSpec's order.
    pub hooks: Vec<(&'static str, HookConfig)>,
    pub watchdog: WatchdogConfig,
    /// Tasks per task set when the deployment starts (`MinTasks`).
    pub tasks: u32,
    /// Whether each gate reaches its listener (test, production).
    pub gate_paths: (bool, bool),
    /// The logical id of the target group production starts on (the service's).
    pub blue_group: String,
    /// `P99LatencyAlarmSeconds`: a phase slower than this is a bad version.
    pub p99_alarm_seconds: f64,
}

/// The parameter pairs of a scenario: `make deploy`'s, the scheme's, then `parameters:`.
pub fn scenario_pairs(base: &[(String, String)], s: &Scenario) -> Vec<(String, String)> {
    let mut pairs = base.to_vec();
    let mut set = |k: &str, v: String| match pairs.iter_mut().find(|(key, _)| key == k) {
        Some(e) => e.1 = v,
        None => pairs.push((k.to_string(), v)),
    };
    if s.alb_scheme == AlbScheme::InternetFacing {
        set("LoadBalancerScheme", "internet-facing".into());
        for (k, v) in INTERNET_FACING_PLACEHOLDERS {
            set(k, v.into());
        }
    }
    for (k, v) in &s.parameters {
        set(k, v.text());
    }
    pairs
}

/// A function's environment as the template gives it: a value that resolves to text or a
/// number; one that names a resource attribute (an ARN, a DNS name) reads as a placeholder,
/// which the rehearsal never calls.
fn env_of(t: &Template, p: &Parameters, function: &Value, name: &str) -> Option<String> {
    let v = lookup(function, &format!("Environment.Variables.{name}"))?;
    match p.resolve(t, v) {
        Ok(Value::String(s)) => Some(s),
        Ok(Value::Number(n)) => Some(n.to_string()),
        _ if name.ends_with("_URL") => Some("http://rehearsal.invalid".into()),
        _ => Some(format!("rehearsal-{name}")),
    }
}

fn functions<'a>(t: &'a Template, handler: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    t.resources_of_type("AWS::Serverless::Function")
        .filter(move |f| f.prop("Handler").and_then(Value::as_str) == Some(handler))
        .map(|f| f.properties())
}

fn gate(t: &Template, p: &Parameters, listener: &str) -> Result<HookConfig, SetupError> {
    let f = functions(t, "traffic-validator")
        .find(|f| {
            lookup(f, "Environment.Variables.LISTENER").and_then(Value::as_str) == Some(listener)
        })
        .ok_or_else(|| SetupError::Template(format!("no {listener}-listener gate function")))?;
    let get = |k: &str| {
        if k == "STACK_NAME" {
            return Some("rehearsal".to_string());
        }
        env_of(t, p, f, k)
    };
    HookConfig::from_env(get).map_err(|e| SetupError::Function {
        function: format!("the {listener}-listener gate"),
        why: e.to_string(),
    })
}

fn watchdog(t: &Template, p: &Parameters) -> Result<WatchdogConfig, SetupError> {
    let f = functions(t, "deploy-watchdog")
        .next()
        .ok_or_else(|| SetupError::Template("no deploy-watchdog function".into()))?;
    WatchdogConfig::from_env(|k| env_of(t, p, f, k)).map_err(|e| SetupError::Function {
        function: "the watchdog".into(),
        why: e.to_string(),
    })
}

impl Setup {
    /// The setup a scenario is rehearsed with: `base` (make deploy's values, or a deployed
    /// stack's) with the scenario's on top, refused as CloudFormation would refuse them (a value
    /// outside the template's constraints, a Rules assertion: `cfn::rules`).
    pub fn for_scenario(
        t: &Template,
        base: &[(String, String)],
        s: &Scenario,
    ) -> Result<Self, SetupError> {
        let pairs = scenario_pairs(base, s);
        let wrong = crate::cfn::resolve::check_values(t, &pairs);
        if !wrong.is_empty() {
            return Err(SetupError::Values(wrong));
        }
        let p = Parameters::new(t, &pairs);
        if let Some(r) = crate::cfn::rules::check(t, &p).refused.into_iter().next() {
            return Err(SetupError::Refused {
                rule: r.rule,
                description: r.description,
            });
        }
        Self::new(t, &p)
    }

    /// Reads the setup from the template with these parameter values.
    pub fn new(t: &Template, p: &Parameters) -> Result<Self, SetupError> {
        let timing = TimingModel::with_parameters(t, p).map_err(|e| SetupError::Template(e.0))?;
        let test = gate(t, p, "test")?;
        let production = gate(t, p, "production")?;
        let hooks = crate::deploy::appspec::hook_placement()
            .into_iter()
            .map(|(event, listener)| {
                let cfg = match listener {
                    Listener::Test => test.clone(),
                    Listener::Production => production.clone(),
                };
                (event, cfg)
            })
            .collect();
        let tasks = p
            .get("MinTasks")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| SetupError::Template("parameter MinTasks".into()))?;
        Ok(Setup {
            timing,
            hooks,
            watchdog: watchdog(t, p)?,
            tasks,
            gate_paths: gate_paths(t, p)?,
            blue_group: blue_group(t)?,
            p99_alarm_seconds: p
                .get("P99LatencyAlarmSeconds")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| SetupError::Template("parameter P99LatencyAlarmSeconds".into()))?,
        })
    }
}

/// Whether the gates reach the test and the production listener (the network issue's
/// reachability, for this scheme and these parameters).
fn gate_paths(t: &Template, p: &Parameters) -> Result<(bool, bool), SetupError> {
    let r = reachability(t, p).map_err(|e| SetupError::Template(e.to_string()))?;
    let open = |suffix: &str| {
        r.paths
            .iter()
            .filter(|v| v.name.starts_with("gate ") && v.name.ends_with(suffix))
            .all(|v| v.open)
    };
    Ok((open("-> test listener"), open("-> production listener")))
}

/// The service's own target group: where production is before the deployment.
fn blue_group(t: &Template) -> Result<String, SetupError> {
    t.resources_of_type("AWS::ECS::Service")
        .next()
        .and_then(|s| s.prop("LoadBalancers"))
        .and_then(|l| l.get(0))
        .and_then(|l| l.get("TargetGroupArn"))
        .and_then(|v| v.get("Ref"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| SetupError::Template("the ECS service names no target group".into()))
}
