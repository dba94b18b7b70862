//! Small pieces every AWS edge and Lambda `main` shares: logging set-up, the SDK configuration,
//! the deadline, SDK time conversions and panic messages.

use std::time::{Duration, Instant};

use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Utc};

/// Structured JSON logs to stdout (Lambda's JSON log format keeps them as they are).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .init();
}

/// The SDK configuration from the environment, with a bound on every operation so a stuck call
/// cannot eat the Lambda's deadline.
pub async fn sdk_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(operation_timeout)
                .build(),
        )
        .load()
        .await
}

/// The invocation's deadline (Lambda gives epoch milliseconds) as an `Instant`.
pub fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

pub fn to_smithy(t: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_secs(t.timestamp())
}

pub fn from_smithy(t: &SmithyTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// The message of a caught panic.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Publishes metrics with the one dimension every metric of this project carries (`Stack`).
pub async fn put_stack_metrics(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    stack: &str,
    metrics: &[(&str, f64, aws_sdk_cloudwatch::types::StandardUnit)],
) -> Result<(), String> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let dimension = Dimension::builder().name("Stack").value(stack).build();
    let data = metrics
        .iter()
        .map(|(name, value, unit)| {
            MetricDatum::builder()
                .metric_name(*name)
                .dimensions(dimension.clone())
                .value(*value)
                .unit(unit.clone())
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "PutMetricData: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        })
}

/// Every datapoint the returning queries of a `GetMetricData` request give for
/// `[start, end)`, across all pages.
pub async fn metric_series(
    cw: &aws_sdk_cloudwatch::Client,
    queries: Vec<aws_sdk_cloudwatch::types::MetricDataQuery>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, f64)>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cw
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(to_smithy(start))
            .end_time(to_smithy(end))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetMetricData: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            })?;
        for r in page.metric_data_results() {
            for (t, v) in r.timestamps().iter().zip(r.values()) {
                if let Some(at) = from_smithy(t) {
                    out.push((at, *v));
                }
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

/// The service's running tasks (Container Insights `RunningTaskCount`) as a `GetMetricData` query.
pub fn running_tasks_query(
    cluster: &str,
    service: &str,
    period_seconds: i32,
    stat: &str,
) -> aws_sdk_cloudwatch::types::MetricDataQuery {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let dim = |n: &str, v: &str| Dimension::builder().name(n).value(v).build();
    MetricDataQuery::builder()
        .id("running")
        .return_data(true)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("ECS/ContainerInsights")
                        .metric_name("RunningTaskCount")
                        .dimensions(dim("ClusterName", cluster))
                        .dimensions(dim("ServiceName", service))
                        .build(),
                )
                .period(period_seconds)
                .stat(stat)
                .build(),
        )
        .build()
}
