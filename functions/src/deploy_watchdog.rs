//! deploy-watchdog: ECS Task State Change events (STOPPED, this service) and a per-minute check
//! while a deployment is in progress; stops a deployment whose green tasks keep failing where no
//! lifecycle hook runs. All logic is in `orderbroker::watchdog` and `orderbroker::watchdog::aws`.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::watchdog::aws::{handle, Memory, Outcome, WatchdogClients, WatchdogConfig};
use serde_json::Value;

/// Runs the handler until the runtime stops (the `main` of this function's executable).
pub async fn run() -> Result<(), Error> {
    let cfg = WatchdogConfig::from_env(|k| std::env::var(k).ok());
    let sdk = orderbroker::aws::sdk_config(Duration::from_secs(5)).await;
    let clients = WatchdogClients {
        ecs: aws_sdk_ecs::Client::new(&sdk),
        codedeploy: aws_sdk_codedeploy::Client::new(&sdk),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
    };
    let memory = Memory::default();
    let (clients, cfg, memory) = (&clients, &cfg, &memory);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let cfg = cfg.as_ref().map_err(|e| e.to_string())?;
        let deadline = orderbroker::aws::lambda::deadline(event.context.deadline);
        if event.payload.get("source").and_then(Value::as_str) == Some("aws.ecs") {
            // The raw event (no secrets in an ECS task event): `make live-test` records one
            // as a test fixture.
            tracing::info!(raw_event = %event.payload, "task event received");
        }
        match handle(clients, cfg, memory, &event.payload, deadline).await {
            Ok(o) => {
                tracing::info!(
                    handled = %o.handled,
                    detail = %o.detail,
                    stopped_deployment = ?o.stopped_deployment,
                    "watchdog"
                );
                Ok::<Outcome, Error>(o)
            }
            Err(e) => {
                // A failed read or stop fails the invocation: EventBridge retries it and the
                // OnFailure queue's alarm tells SRE.
                tracing::error!(error = %e, "watchdog could not decide");
                Err(e.to_string().into())
            }
        }
    }))
    .await
}
