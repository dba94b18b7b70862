//! The timing-relevant values of template.yaml, read the way CloudFormation would resolve them
//! with every parameter at its default (pure over a parsed [`Template`]).

use serde::Serialize;
use serde_json::Value;

use crate::cfn::template::{lookup, Template};
use crate::timing::{derive, Derived, HealthCheck, StartTimes};

/// What can be missing from the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct ModelError(pub String);

/// How an alarm treats a minute without data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Missing {
    NotBreaching,
    Breaching,
    Ignore,
    Missing,
}

/// What a deployment-group alarm measures (recognised by its metrics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AlarmKind {
    /// Requests minus target 2xx-4xx: ALARM when (requests >= min AND errors >= rate% of them)
    /// OR errors >= count.
    Errors {
        min_requests: f64,
        rate_percent: f64,
        count: f64,
    },
    /// UnHealthyHostCount with this statistic, at or above `threshold`.
    Unhealthy { statistic: String, threshold: f64 },
    /// p99 response time above `threshold_seconds`, judged only with `min_requests` requests
    /// (0: always judged).
    P99 {
        threshold_seconds: f64,
        min_requests: f64,
    },
    /// Anything else (named by its metric): the budgets refuse it.
    Other(String),
}

/// One deployment-group alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmSpec {
    pub id: String,
    pub kind: AlarmKind,
    pub period: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub missing: Missing,
}

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
    pub alarms: Vec<AlarmSpec>,
}

/// A parameter's default as a number.
fn param_default(t: &Template, name: &str) -> Option<f64> {
    number(t.section("Parameters").get(name)?.get("Default")?)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A property value: a literal, or `{"Ref": P}` resolved to P's default.
fn resolve(t: &Template, v: Option<&Value>) -> Option<f64> {
    let v = v?;
    if let Some(name) = v.get("Ref").and_then(Value::as_str) {
        return param_default(t, name);
    }
    number(v)
}

/// The value of the entry whose `key_field` is `key` in a list of `{Key, Value}`-like maps
/// (target-group and load-balancer attributes, container environment), resolved.
fn entry(
    t: &Template,
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

impl TimingModel {
    /// Reads the model from a parsed template.
    pub fn from_template(t: &Template) -> Result<Self, ModelError> {
        let p = |name: &str| need(param_default(t, name), &format!("parameter {name}"));
        let start = StartTimes {
            launch_to_running: whole(p(crate::timing::LAUNCH_TO_RUNNING_PARAM)?),
            running_to_healthy: whole(p(crate::timing::RUNNING_TO_HEALTHY_PARAM)?),
        };
        let tg = t
            .resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup")
            .next()
            .ok_or_else(|| ModelError("no target group".into()))?;
        let tgp = |k: &str| need(resolve(t, tg.prop(k)), &format!("{}.{k}", tg.id));
        let health_check = HealthCheck {
            interval_seconds: whole(tgp("HealthCheckIntervalSeconds")?),
            healthy_threshold: whole(tgp("HealthyThresholdCount")?),
            unhealthy_threshold: whole(tgp("UnhealthyThresholdCount")?),
        };
        let dereg = entry(
            t,
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
            resolve(t, service.prop("HealthCheckGracePeriodSeconds")),
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
            resolve(t, container.get("StopTimeout")),
            "container StopTimeout",
        )?;
        let app_idle = entry(
            t,
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
            t,
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
        let mut alarms = Vec::new();
        for a in group
            .prop("AlarmConfiguration.Alarms")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = a
                .get("Name")
                .and_then(|n| n.get("Ref"))
                .and_then(Value::as_str)
                .ok_or_else(|| ModelError("a deployment-group alarm is not a Ref".into()))?;
            let r = t
                .resource(id)
                .ok_or_else(|| ModelError(format!("alarm {id} is not in the template")))?;
            alarms.push(alarm_spec(t, id, r.properties())?);
        }
        let derived = Derived {
            health_check_grace_seconds: whole(p("HealthCheckGracePeriodSeconds")?),
            launch_to_healthy_seconds: whole(p("LaunchToHealthySeconds")?),
            gate_readiness_seconds: whole(p("GateReadinessSeconds")?),
            never_healthy_seconds: whole(p("NeverHealthySeconds")?),
            hook_timeout_seconds: whole(p("HookTimeoutSeconds")?),
            unhealthy_alarm_minutes: whole(p("UnhealthyAlarmMinutes")?),
            p99_alarm_minutes: whole(p("P99AlarmMinutes")?),
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
                    t,
                    canary.prop("TrafficRoutingConfig.TimeBasedCanary.CanaryPercentage"),
                ),
                "CanaryPercentage",
            )?),
            canary_minutes: whole(need(
                resolve(
                    t,
                    canary.prop("TrafficRoutingConfig.TimeBasedCanary.CanaryInterval"),
                ),
                "CanaryInterval",
            )?),
            blue_termination_minutes: whole(need(
                resolve(
                    t,
                    group.prop("BlueGreenDeploymentConfiguration.TerminateBlueInstancesOnDeploymentSuccess.TerminationWaitTimeInMinutes"),
                ),
                "TerminationWaitTimeInMinutes",
            )?),
            hook_timeout_seconds: whole(need(
                resolve(t, hook.prop("Timeout")),
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

/// The `${Name}` parameters a `!Sub` expression names, resolved to their defaults.
fn sub_param(t: &Template, expr: &Value, name: &str) -> Option<f64> {
    let text = expr.get("Fn::Sub").and_then(Value::as_str)?;
    text.contains(&format!("${{{name}}}"))
        .then(|| param_default(t, name))
        .flatten()
}

fn alarm_spec(t: &Template, id: &str, p: &Value) -> Result<AlarmSpec, ModelError> {
    let field = |k: &str| need(resolve(t, p.get(k)), &format!("{id}.{k}"));
    let metrics: Vec<&Value> = p
        .get("Metrics")
        .and_then(Value::as_array)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let metric_names: Vec<&str> = metrics
        .iter()
        .filter_map(|m| lookup(m, "MetricStat.Metric.MetricName").and_then(Value::as_str))
        .collect();
    let returned = metrics
        .iter()
        .find(|m| m.get("ReturnData").and_then(Value::as_bool) == Some(true));
    let expression = returned.and_then(|m| m.get("Expression"));
    let period = if metrics.is_empty() {
        field("Period")?
    } else {
        need(
            metrics
                .iter()
                .find_map(|m| resolve(t, lookup(m, "MetricStat.Period"))),
            &format!("{id} metric period"),
        )?
    };
    let kind = if metric_names.contains(&"RequestCount")
        && metric_names.contains(&"HTTPCode_Target_2XX_Count")
    {
        let e = need(expression, &format!("{id} expression"))?;
        let q = |n: &str| need(sub_param(t, e, n), &format!("{id} expression ${{{n}}}"));
        AlarmKind::Errors {
            min_requests: q("ErrorAlarmMinRequests")?,
            rate_percent: q("ErrorAlarmRatePercent")?,
            count: q("ErrorAlarmCount")?,
        }
    } else if metric_names.contains(&"TargetResponseTime") {
        AlarmKind::P99 {
            threshold_seconds: field("Threshold")?,
            min_requests: expression
                .and_then(|e| sub_param(t, e, "P99AlarmMinRequests"))
                .unwrap_or(0.0),
        }
    } else if p.get("MetricName").and_then(Value::as_str) == Some("TargetResponseTime") {
        AlarmKind::P99 {
            threshold_seconds: field("Threshold")?,
            min_requests: 0.0,
        }
    } else if p.get("MetricName").and_then(Value::as_str) == Some("UnHealthyHostCount") {
        AlarmKind::Unhealthy {
            statistic: p
                .get("Statistic")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            threshold: field("Threshold")?,
        }
    } else {
        AlarmKind::Other(
            p.get("MetricName")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| metric_names.join("+")),
        )
    };
    let missing = match p.get("TreatMissingData").and_then(Value::as_str) {
        Some("breaching") => Missing::Breaching,
        Some("ignore") => Missing::Ignore,
        Some("notBreaching") => Missing::NotBreaching,
        _ => Missing::Missing,
    };
    let evaluation_periods = whole(field("EvaluationPeriods")?);
    Ok(AlarmSpec {
        id: id.to_string(),
        kind,
        period: whole(period),
        evaluation_periods,
        datapoints_to_alarm: resolve(t, p.get("DatapointsToAlarm"))
            .map(whole)
            .unwrap_or(evaluation_periods),
        missing,
    })
}
