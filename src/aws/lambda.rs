//! What every Lambda `main` shares: structured logs, the invocation deadline, panic messages.

use std::time::{Duration, Instant};

use chrono::Utc;
use tracing_subscriber::Layer;

/// Structured JSON logs to stdout (Lambda's JSON log format keeps them as they are), filtered
/// by `RUST_LOG` (see [`log_filter`]).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, refused) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .without_time()
                .with_filter(filter),
        )
        .init();
    if let Some(why) = refused {
        tracing::warn!(rust_log = ?std::env::var("RUST_LOG").ok(), "{why}");
    }
}

/// The log filter from `RUST_LOG`: a level (`info`) or `target=level` pairs separated by commas
/// (`info,orderbroker=debug`), as `tracing_subscriber::filter::Targets` parses them. Unset: INFO.
/// A value it cannot parse keeps INFO and says why (the second value), rather than silencing
/// the function's logs.
pub fn log_filter(rust_log: Option<&str>) -> (tracing_subscriber::filter::Targets, Option<String>) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let info = Targets::new().with_default(LevelFilter::INFO);
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => (info, None),
        Some(v) => match v.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (
                info,
                Some(format!(
                    "RUST_LOG {v:?} is not `level` or `target=level,...` ({e}): logging at INFO"
                )),
            ),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_takes_a_level_or_targets_and_a_bad_value_keeps_info_and_says_so() {
        let (t, why) = log_filter(None);
        assert!(why.is_none());
        assert!(t.would_enable("orderbroker", &Level::INFO));
        assert!(!t.would_enable("orderbroker", &Level::DEBUG));
        let (t, why) = log_filter(Some("warn,orderbroker=debug"));
        assert!(why.is_none());
        assert!(t.would_enable("orderbroker::gates::hook", &Level::DEBUG));
        assert!(!t.would_enable("hyper_util", &Level::INFO));
        let (t, why) = log_filter(Some("orderbroker=loud"));
        assert!(t.would_enable("orderbroker", &Level::INFO));
        assert!(why.unwrap().contains("\"orderbroker=loud\""));
    }
}
