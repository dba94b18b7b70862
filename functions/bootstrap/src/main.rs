//! The one Lambda executable of this application: every function ships this `bootstrap` and
//! runs the handler its `Handler` setting names. For `provided.al2023` Lambda always executes
//! `bootstrap` and passes the configured handler in the `_HANDLER` environment variable (Lambda
//! developer guide, "Defined runtime environment variables"). One binary means one release link
//! instead of one per function, and SAM builds it once for all functions (identical build
//! definitions share one build): see docs/build.md for the measurements behind this choice.
//!
//! Each handler module is what a function's `main` would be: it wires the runtime and the SDK
//! clients to one library call.

mod deploy_watchdog;
mod load_generator;
mod market_warmup;
mod tag_enforcer;
mod traffic_validator;
mod warm_pool;

use lambda_runtime::Error;

/// The handlers, by the `Handler` value the template gives each function.
const HANDLERS: [&str; 6] = [
    "market-warmup",
    "traffic-validator",
    "warm-pool",
    "tag-enforcer",
    "load-generator",
    "deploy-watchdog",
];

#[tokio::main]
async fn main() -> Result<(), Error> {
    orderbroker::aws::lambda::init_tracing();
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    match handler.as_str() {
        "market-warmup" => market_warmup::run().await,
        "traffic-validator" => traffic_validator::run().await,
        "warm-pool" => warm_pool::run().await,
        "tag-enforcer" => tag_enforcer::run().await,
        "load-generator" => load_generator::run().await,
        "deploy-watchdog" => deploy_watchdog::run().await,
        other => {
            // Init fails with the reason in the function's log; Lambda reports an init error.
            let message = format!(
                "unknown handler {other:?}: the function's Handler must be one of {}",
                HANDLERS.join(", ")
            );
            tracing::error!(handler = other, "{message}");
            Err(Error::from(message))
        }
    }
}
