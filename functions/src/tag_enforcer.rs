//! tag-enforcer: the `Custom::TagPolicy` resource (every deploy) and an hourly schedule. It
//! answers CloudFormation on every path through `orderbroker::cfn::custom_resource`, and reports
//! tagging failures in Data, logs and the `NonCompliantResources` metric instead of failing the
//! stack: a tag never rolls the trading stack back.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::cfn::custom_resource;
use orderbroker::tagging::aws::{
    enforce, handle_tag_policy, publish, EnforcerClients, EnforcerConfig,
};
use serde_json::Value;

/// Runs the handler until the runtime stops (the `main` of this function's executable).
pub async fn run() -> Result<(), Error> {
    let cfg = EnforcerConfig::from_env(|k| std::env::var(k).ok());
    let sdk = orderbroker::aws::sdk_config(Duration::from_secs(20)).await;
    let clients = EnforcerClients::new(&sdk);
    let http = orderbroker::aws::tls::http_client_builder()
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let (clients, cfg, http) = (&clients, &cfg, &http);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = orderbroker::aws::lambda::deadline(event.context.deadline);
        if event.payload.get("RequestType").is_some() {
            let answered = custom_resource::handle(
                event.payload,
                http,
                deadline,
                Duration::from_secs(10),
                move |req, _until| handle_tag_policy(clients.clone(), cfg.clone(), req),
            )
            .await?;
            tracing::info!(status = answered.status, put_attempts = answered.put_attempts, "custom resource answered");
            Ok::<Value, Error>(serde_json::to_value(answered)?)
        } else {
            let cfg = cfg.as_ref().map_err(|e| Error::from(e.clone()))?;
            let report = enforce(clients, cfg, &cfg.cost_center).await;
            tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "scheduled tag enforcement");
            publish(&clients.cloudwatch, cfg, &report).await.map_err(Error::from)?;
            Ok(serde_json::to_value(report)?)
        }
    }))
    .await
}
