//! load-generator: synthetic-trade load from inside the VPC, for the live tests only. One
//! synchronous invocation = one segment: the event is an `orderbroker::load::generator::SegmentRequest`
//! (which listener, rate, duration; the URLs and limits come from the environment), the answer
//! its `LoadReport`. All logic is in `orderbroker::load`.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::load::aws::handle_segment;
use orderbroker::load::generator::Limits;
use orderbroker::load::LoadReport;
use serde_json::Value;

/// Runs the handler until the runtime stops (the `main` of this function's executable).
pub async fn run() -> Result<(), Error> {
    // One client for every order of every segment: connections are reused as a real client's.
    let client = orderbroker::aws::tls::http_client_builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    // Every ledger call bounded (5 s): a stuck call never eats the segment.
    let sdk = orderbroker::aws::sdk_config(Duration::from_secs(5)).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    // Read once; a bad environment refuses every invocation, naming the variable.
    let limits = Limits::from_env(|k| std::env::var(k).ok());
    let (client, ssm, limits) = (&client, &ssm, &limits);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = orderbroker::aws::lambda::deadline(event.context.deadline);
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        let report = handle_segment(client, ssm, limits, event.payload, remaining)
            .await
            .map_err(Error::from)?;
        tracing::info!(
            run_id = %report.run_id,
            sent = report.sent,
            succeeded = report.succeeded,
            failed = report.failed,
            dropped = report.dropped,
            not_sent = report.not_sent,
            p99_ms = report.latency_p99_ms,
            "load segment"
        );
        Ok::<LoadReport, Error>(report)
    }))
    .await
}
