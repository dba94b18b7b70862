//! tag-enforcer: the `Custom::TagPolicy` resource (every deploy) and an hourly schedule. It
//! answers CloudFormation on every path through `orderbroker::custom_resource`, and reports
//! tagging failures in Data, logs and the `NonCompliantResources` metric instead of failing the
//! stack: a tag never rolls the trading stack back.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use orderbroker::custom_resource::{self, Success};
use orderbroker::tag_enforcer_aws::{
    enforce, parse_properties, publish, EnforcerClients, EnforcerConfig,
};
use serde_json::{Map, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderbroker::edge::init_tracing();
    let cfg = EnforcerConfig::from_env(|k| std::env::var(k).ok());
    let sdk = orderbroker::edge::sdk_config(Duration::from_secs(20)).await;
    let clients = EnforcerClients {
        cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
        tagging: aws_sdk_resourcegroupstagging::Client::new(&sdk),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()?;
    let (clients, cfg, http) = (&clients, &cfg, &http);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = orderbroker::edge::deadline(event.context.deadline);
        if event.payload.get("RequestType").is_some() {
            let answered = custom_resource::handle(
                event.payload,
                http,
                deadline,
                Duration::from_secs(10),
                move |req, _until| {
                    let cfg = cfg.clone();
                    let clients = clients.clone();
                    async move {
                        let physical = format!("tag-policy:{}", req.logical_resource_id);
                        let cfg = cfg.map_err(|e| format!("tag enforcer misconfigured: {e}"))?;
                        if req.kind == custom_resource::RequestKind::Delete {
                            // Nothing to undo: tags stay on whatever remains.
                            return Ok(Success {
                                physical_resource_id: req.physical_resource_id.unwrap_or(physical),
                                data: Map::new(),
                            });
                        }
                        // Malformed properties are a template error: FAILED stops the deploy.
                        let props = parse_properties(&req.properties)?;
                        let report = enforce(&clients, &cfg, &props.cost_center).await;
                        tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "tag policy enforced");
                        if let Err(e) = publish(&clients.cloudwatch, &cfg, &report).await {
                            tracing::warn!(error = %e, "NonCompliantResources not published");
                        }
                        let Value::Object(data) = serde_json::json!({
                            "Compliant": report.compliant,
                            "Fixed": report.fixed,
                            "Failed": report.failed,
                            "Untaggable": report.untaggable,
                            "Errors": report.errors.join("; "),
                            "FirstFailures": report.failures.join("; "),
                        }) else {
                            unreachable!("a JSON object literal")
                        };
                        Ok(Success {
                            physical_resource_id: physical,
                            data,
                        })
                    }
                },
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
