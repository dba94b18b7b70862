//! warm-pool: every minute (EventBridge Scheduler) measures task starts and load, sizes the
//! standby task count N and publishes it as `OrderBroker/WarmPool StandbyTasks`, which the
//! service's target-tracking expression reads. All logic is in `orderbroker::warm_pool` and
//! `orderbroker::warm_pool::aws`.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::warm_pool::aws::{self, PoolClients, PoolConfig, PoolReport};
use serde_json::Value;

/// Runs the handler until the runtime stops (the `main` of this function's executable).
pub async fn run() -> Result<(), Error> {
    let cfg = PoolConfig::from_env(|k| std::env::var(k).ok());
    let sdk = orderbroker::aws::sdk_config(Duration::from_secs(10)).await;
    let clients = PoolClients {
        ecs: aws_sdk_ecs::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        ssm: aws_sdk_ssm::Client::new(&sdk),
    };
    let (clients, cfg) = (&clients, &cfg);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let cfg = cfg.as_ref().map_err(|e| e.to_string())?;
        let report = aws::run(clients, cfg, chrono::Utc::now()).await;
        log(&report);
        if report.degraded.is_empty() {
            Ok::<PoolReport, Error>(report)
        } else {
            // A value was still published (last good N or the safe default); failing the
            // invocation sends it to the OnFailure queue and its alarm.
            Err(Error::from(format!(
                "degraded run: {}",
                report.degraded.join("; ")
            )))
        }
    }))
    .await
}

fn log(r: &PoolReport) {
    tracing::info!(
        standby_tasks = r.published,
        previous = ?r.previous,
        decision = %r.decision,
        task_start_seconds = ?r.task_start_seconds,
        reasoning = ?r.recommendation.as_ref().map(|x| &x.reasoning),
        degraded = ?r.degraded,
        "warm-pool run"
    );
}
