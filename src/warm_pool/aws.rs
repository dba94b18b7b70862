//! The warm pool's AWS edge: measure task starts (ECS) and load (CloudWatch), read the operator
//! settings (SSM), size N with [`crate::warm_pool`], publish `StandbyTasks` and
//! `TaskStartSeconds`. It never writes MinCapacity and never edits scaling policies.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit};
use aws_sdk_ecs::types::DesiredStatus;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::cloudwatch::metric_series;
use crate::aws::{from_smithy, AwsError, AwsResultExt};
use crate::warm_pool::{
    next_n, recommend, LoadPoint, ModelInputs, PoolSettings, Published, Recommendation, TaskStart,
};

/// Names the pool publishes under (namespace `OrderBroker/WarmPool`, dimension `Stack`).
pub const STANDBY_METRIC: &str = "StandbyTasks";
pub const START_METRIC: &str = "TaskStartSeconds";

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("warm-pool settings in {parameter} are not valid: {message}")]
    Settings { parameter: String, message: String },
    // Not transparent: the AwsError itself stays in the source chain (exit code 3).
    #[error("{0}")]
    Aws(#[from] AwsError),
}

/// The function's environment.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub cluster: String,
    pub service: String,
    pub stack: String,
    pub namespace: String,
    pub settings_parameter: String,
    /// The value the policy's FILL uses when N is missing: published on every failure path.
    pub safe_default: u32,
    pub per_task_capacity: f64,
    pub healthy_threshold: u32,
    pub health_interval_seconds: u32,
    pub history_days: i64,
    /// The declared `TaskRunningToHealthySeconds` (part of R).
    pub running_to_healthy_seconds: f64,
    /// The declared `TaskLaunchToRunningSeconds`: the start assumed when none was measured,
    /// unless the operator settings name one.
    pub declared_start_seconds: Option<f64>,
}

/// What measuring a service needs: the function's other settings (stack, metric namespace,
/// settings parameter) play no part, so the CLI measures with this alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub cluster: String,
    pub service: String,
    pub per_task_capacity: f64,
    pub healthy_threshold: u32,
    pub health_interval_seconds: u32,
    pub history_days: i64,
    pub running_to_healthy_seconds: f64,
}

impl PoolConfig {
    /// The measuring part of the configuration.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            cluster: self.cluster.clone(),
            service: self.service.clone(),
            per_task_capacity: self.per_task_capacity,
            healthy_threshold: self.healthy_threshold,
            health_interval_seconds: self.health_interval_seconds,
            history_days: self.history_days,
            running_to_healthy_seconds: self.running_to_healthy_seconds,
        }
    }

    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, PoolError> {
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| PoolError::Config(format!("{k} is not set")))
        };
        fn num<T: std::str::FromStr>(k: &str, v: String) -> Result<T, PoolError> {
            v.trim()
                .parse()
                .map_err(|_| PoolError::Config(format!("{k}={v:?} is not a number")))
        }
        Ok(PoolConfig {
            cluster: req("CLUSTER_NAME")?,
            service: req("SERVICE_NAME")?,
            stack: req("STACK_NAME")?,
            namespace: get("METRICS_NAMESPACE").unwrap_or_else(|| "OrderBroker/WarmPool".into()),
            settings_parameter: req("SETTINGS_PARAMETER")?,
            safe_default: num("STANDBY_DEFAULT", req("STANDBY_DEFAULT")?)?,
            per_task_capacity: num("CPU_TARGET", req("CPU_TARGET")?)?,
            healthy_threshold: num("HEALTHY_THRESHOLD", req("HEALTHY_THRESHOLD")?)?,
            health_interval_seconds: num(
                "HEALTH_INTERVAL_SECONDS",
                req("HEALTH_INTERVAL_SECONDS")?,
            )?,
            history_days: num(
                "HISTORY_DAYS",
                get("HISTORY_DAYS").unwrap_or_else(|| "10".into()),
            )?,
            running_to_healthy_seconds: num(
                "RUNNING_TO_HEALTHY_SECONDS",
                req("RUNNING_TO_HEALTHY_SECONDS")?,
            )?,
            declared_start_seconds: get("DEFAULT_START_SECONDS")
                .filter(|v| !v.trim().is_empty())
                .map(|v| num("DEFAULT_START_SECONDS", v))
                .transpose()?,
        })
    }
}

/// The SDK clients a run uses.
#[derive(Debug, Clone)]
pub struct PoolClients {
    pub ecs: aws_sdk_ecs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ssm: aws_sdk_ssm::Client,
}

/// What a run published and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    pub published: u32,
    pub previous: Option<u32>,
    pub decision: String,
    pub recommendation: Option<Recommendation>,
    pub task_start_seconds: Option<f64>,
    pub degraded: Vec<String>,
}

/// Reads the operator settings document (`{}` = defaults).
pub fn parse_settings(parameter: &str, text: &str) -> Result<PoolSettings, PoolError> {
    parse_settings_with_start(parameter, text, None)
}

/// Reads the operator settings document; `declared_start` (the declared launch -> RUNNING)
/// replaces the built-in default start unless the document names `default_start_seconds`.
pub fn parse_settings_with_start(
    parameter: &str,
    text: &str,
    declared_start: Option<f64>,
) -> Result<PoolSettings, PoolError> {
    let bad = |message: String| PoolError::Settings {
        parameter: parameter.into(),
        message,
    };
    let mut doc: serde_json::Value =
        serde_json::from_str(if text.trim().is_empty() { "{}" } else { text })
            .map_err(|e| bad(e.to_string()))?;
    if let (Some(obj), Some(start)) = (doc.as_object_mut(), declared_start) {
        obj.entry("default_start_seconds")
            .or_insert(serde_json::json!(start));
    }
    let s: PoolSettings = serde_json::from_value(doc.clone()).map_err(|e| {
        // serde's message names the type, not the key: find the key that fails alone.
        let key = doc.as_object().and_then(|o| {
            o.iter().find_map(|(k, v)| {
                let one = serde_json::json!({ k: v });
                serde_json::from_value::<PoolSettings>(one)
                    .is_err()
                    .then(|| k.clone())
            })
        });
        bad(match key {
            Some(k) => format!("{k}: {e}"),
            None => e.to_string(),
        })
    })?;
    s.validate().map_err(bad)?;
    Ok(s)
}

/// One run at `now`: always publishes a value (the sized N, the last good one, or the safe
/// default), then reports what it did.
pub async fn run(c: &PoolClients, cfg: &PoolConfig, now: DateTime<Utc>) -> PoolReport {
    let mut degraded = Vec::new();
    let last = match last_published(&c.cloudwatch, cfg, now).await {
        Ok(l) => l,
        Err(e) => {
            degraded.push(format!("last value unknown: {e}"));
            None
        }
    };
    let settings = match read_settings(&c.ssm, cfg).await {
        Ok(s) => Some(s),
        Err(e) => {
            degraded.push(e.to_string());
            None
        }
    };
    let starts = match task_starts(&c.ecs, &cfg.service_config()).await {
        Ok(s) => Some(s),
        Err(e) => {
            degraded.push(e.to_string());
            None
        }
    };
    let load = match load_history(&c.cloudwatch, &cfg.service_config(), now).await {
        Ok(l) => Some(l),
        Err(e) => {
            degraded.push(e.to_string());
            None
        }
    };

    let (published, decision, recommendation, start_seconds) = match (settings, starts, load) {
        (Some(settings), Some(starts), Some(load)) if !settings.paused => {
            let r = recommend(&ModelInputs {
                task_starts: starts,
                healthy_threshold: cfg.healthy_threshold,
                health_interval_seconds: cfg.health_interval_seconds,
                running_to_healthy_seconds: cfg.running_to_healthy_seconds,
                load,
                per_task_capacity: cfg.per_task_capacity,
                settings: settings.clone(),
            });
            let (n, why) = next_n(last, r.n, now, &settings);
            let start = (r.start_measured_from > 0).then_some(r.start_seconds);
            (n, why, Some(r), start)
        }
        (Some(settings), _, _) if settings.paused => {
            let keep = last.map_or(cfg.safe_default, |l| l.n);
            (keep, format!("paused by operator: {keep} kept"), None, None)
        }
        _ => {
            let keep = last.map_or(cfg.safe_default, |l| l.n);
            (
                keep,
                format!("inputs missing: kept {keep} (last good value, else the safe default)"),
                None,
                None,
            )
        }
    };
    if let Err(e) = publish(&c.cloudwatch, cfg, published, start_seconds).await {
        degraded.push(e.to_string());
    }
    PoolReport {
        published,
        previous: last.map(|l| l.n),
        decision,
        recommendation,
        task_start_seconds: start_seconds,
        degraded,
    }
}

/// Measures the model's inputs from the account (what `orderbroker warm-pool recommend` uses
/// without `--input`).
pub async fn measure(
    ecs: &aws_sdk_ecs::Client,
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &ServiceConfig,
    settings: PoolSettings,
    now: DateTime<Utc>,
) -> Result<ModelInputs, PoolError> {
    Ok(ModelInputs {
        task_starts: task_starts(ecs, cfg).await?,
        healthy_threshold: cfg.healthy_threshold,
        health_interval_seconds: cfg.health_interval_seconds,
        running_to_healthy_seconds: cfg.running_to_healthy_seconds,
        load: load_history(cw, cfg, now).await?,
        per_task_capacity: cfg.per_task_capacity,
        settings,
    })
}

async fn read_settings(
    ssm: &aws_sdk_ssm::Client,
    cfg: &PoolConfig,
) -> Result<PoolSettings, PoolError> {
    let out = ssm
        .get_parameter()
        .name(&cfg.settings_parameter)
        .send()
        .await
        .aws("GetParameter")?;
    parse_settings_with_start(
        &cfg.settings_parameter,
        out.parameter().and_then(|p| p.value()).unwrap_or("{}"),
        cfg.declared_start_seconds,
    )
}

async fn task_starts(
    ecs: &aws_sdk_ecs::Client,
    cfg: &ServiceConfig,
) -> Result<Vec<TaskStart>, PoolError> {
    let mut pages = ecs
        .list_tasks()
        .cluster(&cfg.cluster)
        .service_name(&cfg.service)
        .desired_status(DesiredStatus::Running)
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        arns.extend(page.aws("ListTasks")?.task_arns().iter().cloned());
    }
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let d = ecs
            .describe_tasks()
            .cluster(&cfg.cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .aws("DescribeTasks")?;
        for t in d.tasks() {
            let Some(created_at) = t.created_at().and_then(from_smithy) else {
                continue;
            };
            out.push(TaskStart {
                created_at,
                pull_started_at: t.pull_started_at().and_then(from_smithy),
                pull_stopped_at: t.pull_stopped_at().and_then(from_smithy),
                started_at: t.started_at().and_then(from_smithy),
            });
        }
    }
    Ok(out)
}

fn dims(cfg: &ServiceConfig) -> [Dimension; 2] {
    [
        Dimension::builder()
            .name("ClusterName")
            .value(&cfg.cluster)
            .build(),
        Dimension::builder()
            .name("ServiceName")
            .value(&cfg.service)
            .build(),
    ]
}

fn stat(
    id: &str,
    namespace: &str,
    metric: &str,
    dimensions: &[Dimension],
    stat: &str,
    returning: bool,
) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .return_data(returning)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(namespace)
                        .metric_name(metric)
                        .set_dimensions(Some(dimensions.to_vec()))
                        .build(),
                )
                .period(60)
                .stat(stat)
                .build(),
        )
        .build()
}

/// Load = average CPU x running tasks, per minute, over recent days (every target group's
/// traffic lands on these tasks, so no ALB metric is needed).
async fn load_history(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &ServiceConfig,
    now: DateTime<Utc>,
) -> Result<Vec<LoadPoint>, PoolError> {
    let d = dims(cfg);
    let queries = vec![
        stat("cpu", "AWS/ECS", "CPUUtilization", &d, "Average", false),
        stat(
            "running",
            "ECS/ContainerInsights",
            "RunningTaskCount",
            &d,
            "Average",
            false,
        ),
        MetricDataQuery::builder()
            .id("load")
            .expression("cpu * running")
            .return_data(true)
            .build(),
    ];
    let points = metric_series(cw, queries, now - Duration::days(cfg.history_days), now).await?;
    Ok(points
        .into_iter()
        .map(|(at, value)| LoadPoint { at, value })
        .collect())
}

/// The last published N and since when it has had that value (from the metric itself: the
/// function keeps no other state).
async fn last_published(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &PoolConfig,
    now: DateTime<Utc>,
) -> Result<Option<Published>, PoolError> {
    let q = stat(
        "standby",
        &cfg.namespace,
        STANDBY_METRIC,
        &[Dimension::builder().name("Stack").value(&cfg.stack).build()],
        "Maximum",
        true,
    );
    let mut points = metric_series(cw, vec![q], now - Duration::hours(3), now).await?;
    points.sort_by_key(|p| p.0);
    let Some(&(latest_at, latest)) = points.last() else {
        return Ok(None);
    };
    let since = points
        .iter()
        .rev()
        .take_while(|(_, v)| (*v - latest).abs() < 0.5)
        .last()
        .map_or(latest_at, |p| p.0);
    Ok(Some(Published {
        n: latest.max(0.0).round() as u32,
        since,
    }))
}

async fn publish(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &PoolConfig,
    n: u32,
    start_seconds: Option<f64>,
) -> Result<(), PoolError> {
    let mut metrics = vec![(STANDBY_METRIC, f64::from(n), StandardUnit::Count)];
    if let Some(s) = start_seconds {
        metrics.push((START_METRIC, s, StandardUnit::Seconds));
    }
    crate::aws::cloudwatch::put_stack_metrics(cw, &cfg.namespace, &cfg.stack, &metrics)
        .await
        .map_err(PoolError::from)
}
