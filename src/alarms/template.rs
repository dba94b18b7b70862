//! Alarm definitions read from the template as CloudFormation receives it (pure over a parsed
//! [`Template`] and [`Parameters`]).
//!
//! The SAM transform passes `AWS::CloudWatch::Alarm` and `AWS::CodeDeploy::DeploymentGroup`
//! through unchanged (only `AWS::Serverless::*` resources are rewritten), so reading them from
//! template.yaml in-process gives what CloudFormation gets; `make test` checks that against
//! scripts/sam-translate.py's output (`orderbroker alarms --json` on both).

use serde_json::Value;

use super::data::{MetricKey, Stat};
use super::math;
use super::{AlarmDefinition, Comparison, MetricStat, Query, QuerySource, TreatMissing};
use crate::cfn::resolve::{Parameters, ResolveError};
use crate::cfn::template::{lookup, Template};

/// What makes an alarm unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmReadError {
    #[error("the template has no AWS::CodeDeploy::DeploymentGroup")]
    NoDeploymentGroup,
    #[error(
        "deployment-group alarm {0:?} is not a Ref to an AWS::CloudWatch::Alarm of the template"
    )]
    NotAnAlarm(String),
    #[error("alarm {alarm}: {source}")]
    Resolve {
        alarm: String,
        #[source]
        source: ResolveError,
    },
    #[error("alarm {alarm}: {what}")]
    Field { alarm: String, what: String },
    #[error("alarm {alarm}, query {id}: {source}")]
    Math {
        alarm: String,
        id: String,
        #[source]
        source: math::MathError,
    },
}

/// The properties of an `AWS::CloudWatch::Alarm` that decide its state.
const DECISIVE: &[&str] = &[
    "Metrics",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
];

/// The deployment group's alarms, in the group's order.
pub fn deployment_group_alarms(
    t: &Template,
    params: &Parameters,
) -> Result<Vec<AlarmDefinition>, AlarmReadError> {
    let group = t
        .resources_of_type("AWS::CodeDeploy::DeploymentGroup")
        .next()
        .ok_or(AlarmReadError::NoDeploymentGroup)?;
    let mut out = Vec::new();
    for a in group
        .prop("AlarmConfiguration.Alarms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = a.get("Name");
        let id = name
            .and_then(|n| n.get("Ref"))
            .and_then(Value::as_str)
            .filter(|id| {
                t.resource(id)
                    .is_some_and(|r| r.type_name() == "AWS::CloudWatch::Alarm")
            })
            .ok_or_else(|| AlarmReadError::NotAnAlarm(format!("{name:?}")))?;
        out.push(alarm(t, params, id)?);
    }
    Ok(out)
}

/// One `AWS::CloudWatch::Alarm` resource.
pub fn alarm(
    t: &Template,
    params: &Parameters,
    id: &str,
) -> Result<AlarmDefinition, AlarmReadError> {
    let r = t
        .resource(id)
        .ok_or_else(|| AlarmReadError::NotAnAlarm(id.to_string()))?;
    // Only what decides the alarm's state (its tags and actions need values this model does
    // not have, such as a CostCenter without a default).
    let decisive: serde_json::Map<String, Value> = r
        .properties()
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| DECISIVE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let p = params
        .resolve(t, &Value::Object(decisive))
        .map_err(|source| AlarmReadError::Resolve {
            alarm: id.to_string(),
            source,
        })?;
    let field = |what: String| AlarmReadError::Field {
        alarm: id.to_string(),
        what,
    };
    let num = |k: &str| -> Result<Option<f64>, AlarmReadError> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| field(format!("{k} {s:?} is not a number"))),
            Some(other) => Err(field(format!("{k} {other} is not a number"))),
        }
    };
    let whole = |k: &str| -> Result<Option<u32>, AlarmReadError> {
        num(k)?
            .map(|v| {
                (v >= 1.0 && v.fract() == 0.0)
                    .then_some(v as u32)
                    .ok_or_else(|| field(format!("{k} {v} is not a whole number >= 1")))
            })
            .transpose()
    };
    let queries = queries(id, &p, &whole)?;
    let evaluation_periods =
        whole("EvaluationPeriods")?.ok_or_else(|| field("no EvaluationPeriods".into()))?;
    let period = match whole("Period")? {
        Some(v) => v,
        None => queries
            .iter()
            .find_map(|q| match &q.source {
                QuerySource::Metric(m) => Some(m.period),
                QuerySource::Expression(..) => None,
            })
            .ok_or_else(|| field("no Period".into()))?,
    };
    Ok(AlarmDefinition {
        logical_id: id.to_string(),
        queries,
        period,
        evaluation_periods,
        datapoints_to_alarm: whole("DatapointsToAlarm")?.unwrap_or(evaluation_periods),
        threshold: num("Threshold")?.ok_or_else(|| field("no Threshold".into()))?,
        comparison: comparison(p.get("ComparisonOperator")).map_err(field)?,
        treat_missing: treat_missing(p.get("TreatMissingData")).map_err(field)?,
    })
}

type Whole<'a> = dyn Fn(&str) -> Result<Option<u32>, AlarmReadError> + 'a;

fn queries(id: &str, p: &Value, whole: &Whole) -> Result<Vec<Query>, AlarmReadError> {
    let field = |what: String| AlarmReadError::Field {
        alarm: id.to_string(),
        what,
    };
    let Some(metrics) = p.get("Metrics").and_then(Value::as_array) else {
        // A single-metric alarm: one metric query.
        let stat = p
            .get("Statistic")
            .or_else(|| p.get("ExtendedStatistic"))
            .and_then(Value::as_str)
            .ok_or_else(|| field("no Statistic or ExtendedStatistic".into()))?;
        let metric = metric_key(p).ok_or_else(|| field("no Namespace/MetricName".into()))?;
        return Ok(vec![Query {
            id: "m".into(),
            return_data: true,
            source: QuerySource::Metric(MetricStat {
                metric,
                stat: Stat::parse(stat)
                    .ok_or_else(|| field(format!("statistic {stat} is not modelled")))?,
                period: whole("Period")?.ok_or_else(|| field("no Period".into()))?,
            }),
        }]);
    };
    let mut out = Vec::new();
    for m in metrics {
        let qid = m
            .get("Id")
            .and_then(Value::as_str)
            .ok_or_else(|| field("a query has no Id".into()))?
            .to_string();
        let return_data = m.get("ReturnData").and_then(Value::as_bool).unwrap_or(true);
        let source = if let Some(text) = m.get("Expression").and_then(Value::as_str) {
            let e = math::parse(text).map_err(|source| AlarmReadError::Math {
                alarm: id.to_string(),
                id: qid.clone(),
                source,
            })?;
            QuerySource::Expression(text.to_string(), e)
        } else {
            let ms = m.get("MetricStat").ok_or_else(|| {
                field(format!("query {qid} has neither Expression nor MetricStat"))
            })?;
            let metric = ms
                .get("Metric")
                .and_then(metric_key)
                .ok_or_else(|| field(format!("query {qid} has no Metric")))?;
            let stat = ms.get("Stat").and_then(Value::as_str).unwrap_or_default();
            let period = lookup(ms, "Period")
                .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
                .ok_or_else(|| field(format!("query {qid} has no Period")))?;
            QuerySource::Metric(MetricStat {
                metric,
                stat: Stat::parse(stat).ok_or_else(|| {
                    field(format!("query {qid}: statistic {stat:?} is not modelled"))
                })?,
                period: period as u32,
            })
        };
        out.push(Query {
            id: qid,
            return_data,
            source,
        });
    }
    let returning = out.iter().filter(|q| q.return_data).count();
    if returning != 1 {
        return Err(field(format!(
            "{returning} queries return data; an alarm needs exactly one"
        )));
    }
    Ok(out)
}

fn metric_key(m: &Value) -> Option<MetricKey> {
    let dimensions = m
        .get("Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.get("Name")?.as_str()?.to_string(),
                d.get("Value")?.as_str()?.to_string(),
            ))
        })
        .collect();
    Some(MetricKey {
        namespace: m.get("Namespace")?.as_str()?.to_string(),
        name: m.get("MetricName")?.as_str()?.to_string(),
        dimensions,
    })
}

fn comparison(v: Option<&Value>) -> Result<Comparison, String> {
    Ok(match v.and_then(Value::as_str) {
        Some("GreaterThanOrEqualToThreshold") => Comparison::GreaterThanOrEqualToThreshold,
        Some("GreaterThanThreshold") => Comparison::GreaterThanThreshold,
        Some("LessThanThreshold") => Comparison::LessThanThreshold,
        Some("LessThanOrEqualToThreshold") => Comparison::LessThanOrEqualToThreshold,
        other => return Err(format!("ComparisonOperator {other:?} is not modelled")),
    })
}

fn treat_missing(v: Option<&Value>) -> Result<TreatMissing, String> {
    Ok(match v.and_then(Value::as_str) {
        None | Some("missing") => TreatMissing::Missing,
        Some("ignore") => TreatMissing::Ignore,
        Some("breaching") => TreatMissing::Breaching,
        Some("notBreaching") => TreatMissing::NotBreaching,
        Some(other) => {
            return Err(format!(
                "TreatMissingData {other:?} is not a CloudWatch value"
            ))
        }
    })
}
