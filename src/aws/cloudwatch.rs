//! CloudWatch helpers every edge shares: Stack-dimension metrics, paginated `GetMetricData`,
//! the Container Insights running-task query.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat};
use chrono::{DateTime, Utc};

use super::{from_smithy, to_smithy, AwsError, AwsResultExt};

/// Publishes metrics with the one dimension every metric of this project carries (`Stack`).
pub async fn put_stack_metrics(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    stack: &str,
    metrics: &[(&str, f64, aws_sdk_cloudwatch::types::StandardUnit)],
) -> Result<(), AwsError> {
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
        .aws("PutMetricData")
        .map(|_| ())
}

/// Every datapoint the returning queries of a `GetMetricData` request give for
/// `[start, end)`, across all pages (the SDK's paginator).
pub async fn metric_series(
    cw: &aws_sdk_cloudwatch::Client,
    queries: Vec<MetricDataQuery>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, f64)>, AwsError> {
    let mut pages = cw
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(to_smithy(start))
        .end_time(to_smithy(end))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.aws("GetMetricData")?;
        for r in page.metric_data_results() {
            for (t, v) in r.timestamps().iter().zip(r.values()) {
                if let Some(at) = from_smithy(t) {
                    out.push((at, *v));
                }
            }
        }
    }
    Ok(out)
}

/// The service's running tasks (Container Insights `RunningTaskCount`) as a `GetMetricData` query.
pub fn running_tasks_query(
    cluster: &str,
    service: &str,
    period_seconds: i32,
    stat: &str,
) -> MetricDataQuery {
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
