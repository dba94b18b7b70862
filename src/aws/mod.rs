//! Shared AWS plumbing: the one error type every edge returns ([`AwsError`]), the SDK
//! configuration with its timeouts, SDK time conversions, the stack reader ([`stack`]), the
//! CloudWatch helpers ([`cloudwatch`]), the Lambda runtime helpers ([`lambda`]) and the
//! process's trust roots ([`tls`]).

pub mod cloudwatch;
mod error;
pub mod lambda;
pub mod stack;
pub mod tls;

use std::time::Duration;

use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Utc};

pub use error::{AwsError, AwsResultExt};

/// The SDK configuration from the environment, with a bound on every operation so a stuck call
/// cannot eat the Lambda's deadline, and one HTTPS client for every SDK client made from it
/// ([`tls::sdk_http_client`]: its TLS connector built once, not once per SDK client).
pub async fn sdk_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(tls::sdk_http_client())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(operation_timeout)
                .build(),
        )
        .load()
        .await
}

/// An SSM parameter's text (`{}` when it has no value), the error naming the call and the
/// parameter.
pub async fn parameter_text(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .map_err(|e| AwsError::new("ssm:GetParameter", e).on(name).to_string())?;
    Ok(out
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or("{}")
        .to_string())
}

pub fn to_smithy(t: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_secs(t.timestamp())
}

pub fn from_smithy(t: &SmithyTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
