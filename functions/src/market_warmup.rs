//! market-warmup: EventBridge Scheduler (hourly, and every 10 minutes in session) and
//! `make deploy` invoke it; it writes the warm-up plan as scheduled actions. All logic is in
//! `orderbroker::warmup` (decisions) and `orderbroker::warmup::aws` (the AWS edge).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::warmup::aws::{self, Clients, RunReport, WarmupConfig, WarmupRequest};
use serde_json::Value;

/// Runs the handler until the runtime stops (the `main` of this function's executable).
pub async fn run() -> Result<(), Error> {
    // Bad configuration fails every invocation with the reason, rather than the init.
    let cfg = WarmupConfig::from_env(|k| std::env::var(k).ok());
    let sdk = orderbroker::aws::sdk_config(std::time::Duration::from_secs(20)).await;
    let clients = Clients {
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
    };
    let (clients, cfg) = (&clients, &cfg);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let cfg = cfg.as_ref().map_err(|e| e.to_string())?;
        let request: WarmupRequest = match event.payload {
            Value::Null => WarmupRequest::default(),
            v => serde_json::from_value(v).map_err(|e| format!("bad warm-up request: {e}"))?,
        };
        match aws::run(clients, cfg, &request, chrono::Utc::now()).await {
            Ok(report) => {
                log(&report);
                Ok::<RunReport, Error>(report)
            }
            Err(e) => {
                tracing::error!(error = %e, "warm-up run failed");
                Err(e.into())
            }
        }
    }))
    .await
}

fn log(r: &RunReport) {
    tracing::info!(
        trigger = r.trigger.as_deref().unwrap_or("unknown"),
        dry_run = r.dry_run,
        paused = r.paused,
        floor_now = r.floor_now,
        min_capacity_before = r.min_capacity_before,
        put = r.put.len(),
        deleted = r.deleted.len(),
        unchanged = r.unchanged,
        next_spike_covered = r.next_spike_covered,
        forecast = %r.forecast,
        notes = ?r.notes,
        "warm-up run"
    );
}
