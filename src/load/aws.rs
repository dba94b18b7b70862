//! The load-generator function's edge: its daily ledger in SSM, then one segment of load
//! (the decisions are [`crate::load::generator`]'s).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aws::AwsError;
use crate::load::generator::{admit, charge, read_ledger, GeneratorError, Ledger, Limits};
use crate::load::{run_segment, LoadReport};

/// Charges `orders` to today's ledger (New York date), or refuses: read, decide, write.
pub async fn charge_ledger(
    ssm: &aws_sdk_ssm::Client,
    limits: &Limits,
    now: DateTime<Utc>,
    orders: u64,
) -> Result<Ledger, String> {
    let parameter = &limits.ledger_parameter;
    let text = crate::aws::parameter_text(ssm, parameter).await?;
    let ledger = read_ledger(parameter, &text).map_err(|e| e.to_string())?;
    let today = crate::calendar::local_date(now);
    let next =
        charge(ledger, today, orders, limits.max_orders_per_day).map_err(|e| e.to_string())?;
    let value = serde_json::to_string(&next).map_err(|e| e.to_string())?;
    ssm.put_parameter()
        .name(parameter)
        .value(value)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| {
            AwsError::new("ssm:PutParameter", e)
                .on(parameter)
                .to_string()
        })?;
    Ok(next)
}

/// One invocation: the event admitted within the limits, the orders charged to the day, then
/// the segment. Nothing is sent when any step refuses.
pub async fn handle_segment(
    client: &reqwest::Client,
    ssm: &aws_sdk_ssm::Client,
    limits: &Result<Limits, GeneratorError>,
    event: serde_json::Value,
    remaining: Duration,
) -> Result<LoadReport, String> {
    let limits = limits.as_ref().map_err(|e| e.to_string())?;
    let (req, orders) = admit(event, limits).map_err(|e| e.to_string())?;
    let ledger = charge_ledger(ssm, limits, Utc::now(), orders).await?;
    tracing::info!(day = %ledger.day, orders_today = ledger.orders, orders, "load charged");
    run_segment(client, req, remaining).await
}
