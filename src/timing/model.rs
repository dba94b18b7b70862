//! The timing-relevant values of template.yaml, read the way CloudFormation resolves them for
//! given parameter values (pure over a parsed [`Template`] and [`Parameters`]).

use serde::Serialize;
use serde_json::Value;

use crate::alarms::template::{deployment_group_alarms, AlarmReadError};
use crate::alarms::AlarmDefinition;
use crate::cfn::resolve::Parameters;
use crate::cfn::template::{lookup, Template};
use crate::timing::{derive, Derived, HealthCheck, StartTimes};

/// What can be missing from the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct ModelError(pub String);

/// Everything the budgets are computed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimingModel {
    pub start: StartTimes,
    pub health_check: HealthCheck,
    /// The derived parameters' template defaults (a test checks they equal [`derive`]).
    pub derived: Derived,
    /// The service's HealthCheckGracePeriodSeconds as the template resolves it.
    pub grace_seconds: u32,
    pub deregistration_delay_seconds: u32,
    pub stop_timeout_seconds: u32,
    pub canary_percent: u32,
    pub canary_minutes: u32,
    pub blue_termination_minutes: u32,
    /// The hook functions' Lambda timeout as the template resolves it.
    pub hook_timeout_seconds: u32,
    /// The ALB's idle timeout and what the container is told to keep idle connections open.
    pub alb_idle_timeout_seconds: u32,
    pub app_idle_timeout_seconds: Option<u32>,
    /// The deployment group's alarms, as CloudFormation receives them.
    pub alarms: Vec<AlarmDefinition>,
}

/// A parameter's value as a number.
fn param_value(p: &Parameters, name: &str) -> Option<f64> {
    p.get(name)?.trim().parse().ok()
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A property value: a literal, or `{"Ref": P}` resolved to P's value.
fn resolve(p: &Parameters, v: Option<&Value>) -> Option<f64> {
    let v = v?;
    if let Some(name) = v.get("Ref").and_then(Value::as_str) {
        return param_value(p, name);
    }
    number(v)
}

/// The value of the entry whose `key_field` is `key` in a list of `{Key, Value}`-like maps
/// (target-group and load-balancer attributes, container environment), resolved.
fn entry(
    t: &Parameters,
    list: Option<&Value>,
    key_field: &str,
    key: &str,
    value_field: &str,
) -> Option<f64> {
    let found = list?
        .as_array()?
        .iter()
        .find(|e| e.get(key_field).and_then(Value::as_str) == Some(key))?;
    resolve(t, found.get(value_field))
}

fn need<T>(v: Option<T>, what: &str) -> Result<T, ModelError> {
    v.ok_or_else(|| ModelError(format!("{what} is missing or not a number")))
}

fn whole(v: f64) -> u32 {
    v.round().max(0.0) as u32
}

/// The declared start times and the target groups' health checks: all the derived
/// parameters are computed from (works on a SAM template and on its translation alike).
pub fn declared(
    t: &Template,
    params: &Parameters,
) -> Result<(StartTimes, HealthCheck), ModelError> {
    let p = |name: &str| need(param_value(params, name), &format!("parameter {name}"));
    let start = StartTimes {
        launch_to_running: whole(p(crate::timing::LAUNCH_TO_RUNNING_PARAM)?),
        running_to_healthy: whole(p(crate::timing::RUNNING_TO_HEALTHY_PARAM)?),
    };
    let tg = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup")
        .next()
        .ok_or_else(|| ModelError("no target group".into()))?;
    let tgp = |k: &str| need(resolve(params, tg.prop(k)), &format!("{}.{k}", tg.id));
    let health_check = HealthCheck {
        interval_seconds: whole(tgp("HealthCheckIntervalSeconds")?),
        healthy_threshold: whole(tgp("HealthyThresholdCount")?),
        unhealthy_threshold: whole(tgp("UnhealthyThresholdCount")?),
    };
    Ok((start, health_check))
}

impl TimingModel {
    /// Reads the model from a parsed template, every parameter at its default.
    pub fn from_template(t: &Template) -> Result<Self, ModelError> {
        Self::with_parameters(t, &Parameters::new(t, &[]))
    }

    /// Reads the model with these parameter values (`make deploy`'s: [`crate::timing::deploy_parameters`]).
    pub fn with_parameters(t: &Template, params: &Parameters) -> Result<Self, ModelError> {
        let p = |name: &str| need(param_value(params, name), &format!("parameter {name}"));
        let (start, health_check) = declared(t, params)?;
        let tg = t
            .resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup")
            .next()
            .ok_or_else(|| ModelError("no target group".into()))?;
        let dereg = entry(
            params,
            tg.prop("TargetGroupAttributes"),
            "Key",
            "deregistration_delay.timeout_seconds",
            "Value",
        );
        let service = t
            .resources_of_type("AWS::ECS::Service")
            .next()
            .ok_or_else(|| ModelError("no ECS service".into()))?;
        let grace = need(
            resolve(params, service.prop("HealthCheckGracePeriodSeconds")),
            "Service.HealthCheckGracePeriodSeconds",
        )?;
        let task = t
            .resources_of_type("AWS::ECS::TaskDefinition")
            .next()
            .ok_or_else(|| ModelError("no task definition".into()))?;
        let container = task
            .prop("ContainerDefinitions")
            .and_then(|c| c.get(0))
            .ok_or_else(|| ModelError("no container definition".into()))?;
        let stop = need(
            resolve(params, container.get("StopTimeout")),
            "container StopTimeout",
        )?;
        let app_idle = entry(
            params,
            container.get("Environment"),
            "Name",
            "HTTP_IDLE_TIMEOUT_SECONDS",
            "Value",
        )
        .map(whole);
        let alb = t
            .resources_of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")
            .next()
            .ok_or_else(|| ModelError("no load balancer".into()))?;
        // 60 s is the ALB's default idle timeout (ALB docs, "Connection idle timeout").
        let idle = entry(
            params,
            alb.prop("LoadBalancerAttributes"),
            "Key",
            "idle_timeout.timeout_seconds",
            "Value",
        )
        .unwrap_or(60.0);
        let canary = t
            .resources_of_type("AWS::CodeDeploy::DeploymentConfig")
            .next()
            .ok_or_else(|| ModelError("no deployment config".into()))?;
        let group = t
            .resources_of_type("AWS::CodeDeploy::DeploymentGroup")
            .next()
            .ok_or_else(|| ModelError("no deployment group".into()))?;
        let hook = t
            .resources_of_type("AWS::Serverless::Function")
            .find(|f| {
                f.prop("Handler").and_then(Value::as_str) == Some("traffic-validator")
                    && lookup(f.properties(), "Environment.Variables.LISTENER")
                        .and_then(Value::as_str)
                        == Some("test")
            })
            .ok_or_else(|| ModelError("no test-listener hook function".into()))?;
        let alarms = deployment_group_alarms(t, params)
            .map_err(|e: AlarmReadError| ModelError(e.to_string()))?;
        let derived = Derived {
            health_check_grace_seconds: whole(p("HealthCheckGracePeriodSeconds")?),
            launch_to_healthy_seconds: whole(p("LaunchToHealthySeconds")?),
            gate_readiness_seconds: whole(p("GateReadinessSeconds")?),
            never_healthy_seconds: whole(p("NeverHealthySeconds")?),
            hook_timeout_seconds: whole(p("HookTimeoutSeconds")?),
            unhealthy_alarm_minutes: whole(p("UnhealthyAlarmMinutes")?),
            unhealthy_alarm_periods: whole(p("UnhealthyAlarmPeriods")?),
        };
        Ok(TimingModel {
            start,
            health_check,
            derived,
            grace_seconds: whole(grace),
            deregistration_delay_seconds: whole(need(dereg, "deregistration delay")?),
            stop_timeout_seconds: whole(stop),
            canary_percent: whole(need(
                resolve(
                    params,
                    canary.prop("TrafficRoutingConfig.TimeBasedCanary.CanaryPercentage"),
                ),
                "CanaryPercentage",
            )?),
            canary_minutes: whole(need(
                resolve(
                    params,
                    canary.prop("TrafficRoutingConfig.TimeBasedCanary.CanaryInterval"),
                ),
                "CanaryInterval",
            )?),
            blue_termination_minutes: whole(need(
                resolve(
                    params,
                    group.prop("BlueGreenDeploymentConfiguration.TerminateBlueInstancesOnDeploymentSuccess.TerminationWaitTimeInMinutes"),
                ),
                "TerminationWaitTimeInMinutes",
            )?),
            hook_timeout_seconds: whole(need(
                resolve(params, hook.prop("Timeout")),
                "hook function Timeout",
            )?),
            alb_idle_timeout_seconds: whole(idle),
            app_idle_timeout_seconds: app_idle,
            alarms,
        })
    }

    /// What the template's declared start times derive to.
    pub fn expected_derived(&self) -> Derived {
        derive(self.start, self.health_check)
    }
}
