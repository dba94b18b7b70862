//! What every Lambda `main` shares: structured logs, the invocation deadline, panic messages.

use std::time::{Duration, Instant};

use chrono::Utc;

/// Structured JSON logs to stdout (Lambda's JSON log format keeps them as they are).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time()
        .init();
}

/// The invocation's deadline (Lambda gives epoch milliseconds) as an `Instant`.
pub fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

/// The message of a caught panic.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}
