//! traffic-validator: deployed twice, as `CodeDeployHook_<stack>-test` (LISTENER=test, for
//! AfterAllowTestTraffic and BeforeAllowTraffic) and `CodeDeployHook_<stack>-prod`
//! (LISTENER=production, for AfterAllowTraffic). All logic is in `orderbroker::gates::hook` and
//! `orderbroker::gates::validation`.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::gates::aws::gate;
use orderbroker::gates::hook::{emf_line, handle, report_failure, HookConfig};
use serde_json::Value;

/// Runs the handler until the runtime stops (the `main` of this function's executable).
pub async fn run() -> Result<(), Error> {
    let cfg = HookConfig::from_env(|k| std::env::var(k).ok());
    let sdk = orderbroker::aws::sdk_config(Duration::from_secs(5)).await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let http = orderbroker::aws::tls::http_client_builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(8)
        .build()?;
    let (cfg, codedeploy, http, elb) = (&cfg, &codedeploy, &http, &elb);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Budget from the Lambda deadline (epoch ms), not from the configured timeout.
        let deadline = orderbroker::aws::lambda::deadline(event.context.deadline);
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => {
                // Nothing can be validated, but the deployment must not wait an hour for a
                // status: report Failed (so it rolls back), then fail the invocation.
                tracing::error!(error = %e, "traffic validator is misconfigured");
                let reported = report_failure(event.payload, codedeploy, deadline).await;
                tracing::error!(
                    reported_failed = reported.is_ok(),
                    "misconfiguration handled"
                );
                return Err(Error::from(e.to_string()));
            }
        };
        let request_id = event.context.request_id.clone();
        let validation = cfg.validation.clone();
        let (http, elb) = (http.clone(), elb.clone());
        let (listener_arn, wait) = (cfg.listener_arn.clone(), cfg.wait);
        // Target health first: nothing is sent before the listener's target group has a
        // healthy target (orderbroker::gates::aws::gate).
        let outcome = handle(
            event.payload,
            codedeploy,
            cfg,
            deadline,
            move |until| async move {
                gate(
                    &elb,
                    &http,
                    &validation,
                    &listener_arn,
                    wait,
                    &request_id,
                    until,
                )
                .await
            },
        )
        .await;
        match outcome {
            Ok(o) => {
                println!(
                    "{}",
                    emf_line(&cfg.stack, &o, chrono::Utc::now().timestamp_millis())
                );
                tracing::info!(
                    deployment_id = %o.ids.deployment_id,
                    succeeded = o.succeeded,
                    reason = %o.reason,
                    status_attempts = o.status_attempts,
                    report = %serde_json::to_string(&o.report).unwrap_or_default(),
                    "lifecycle hook reported"
                );
                Ok::<Value, Error>(serde_json::to_value(&o)?)
            }
            Err(e) => {
                tracing::error!(error = %e, "lifecycle hook could not report");
                Err(e.into())
            }
        }
    }))
    .await
}
