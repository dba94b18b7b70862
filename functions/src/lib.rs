//! The Lambda functions of this application: one executable per function (`src/bin/<name>.rs`,
//! named like the function's `Handler`), each linking only its own handler and the SDK clients
//! it uses. For `provided.al2023` Lambda runs the package's `bootstrap`; `sam build` builds the
//! function's `BuildProperties.Binary` with cargo-lambda and ships it as that `bootstrap`.
//! docs/build.md has the package sizes, cold starts and build times behind this layout.
//!
//! Each handler module is what a function's `main` needs: it wires the runtime and the SDK
//! clients to one library call. [`start`] is the `main` they share.

pub mod deploy_watchdog;
pub mod load_generator;
pub mod market_warmup;
pub mod tag_enforcer;
pub mod traffic_validator;
pub mod warm_pool;

use std::future::Future;

pub use lambda_runtime::Error;

/// Every function, by the name of its executable (= the template's `Handler` and
/// `BuildProperties.Binary`, a template test checks both).
pub const FUNCTIONS: [&str; 6] = [
    "market-warmup",
    "traffic-validator",
    "warm-pool",
    "tag-enforcer",
    "load-generator",
    "deploy-watchdog",
];

/// What an executable says of the `_HANDLER` Lambda passes it (the function's `Handler`), or
/// `None` when it names this executable (or is absent, as outside Lambda).
pub fn handler_mismatch(executable: &str, handler: Option<&str>) -> Option<String> {
    match handler {
        Some(h) if h != executable => Some(format!(
            "this package's executable runs the {executable} handler, but the function's \
             Handler is {h:?}: the template's Handler and BuildProperties.Binary must be equal"
        )),
        _ => None,
    }
}

/// The `main` of every function: structured logs, the trust roots' one file (before any
/// thread: `orderbroker::aws::tls::prefer_bundle_file`), the tokio runtime, then the handler's
/// `run` until the runtime stops. A `Handler` that names another executable is logged
/// (the function still runs the code it was built with).
pub fn start<F, Fut>(executable: &'static str, run: F) -> Result<(), Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    orderbroker::aws::lambda::init_tracing();
    // SAFETY: nothing has started a thread yet: the tracing subscriber starts none, and the
    // tokio runtime is built below.
    let roots = unsafe { orderbroker::aws::tls::prefer_bundle_file() };
    tracing::debug!(bundle = ?roots.map(|r| &r.source), "trust roots");
    if let Some(why) = handler_mismatch(executable, std::env::var("_HANDLER").ok().as_deref()) {
        tracing::error!(executable, "{why}");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_naming_another_executable_is_reported_with_both_names() {
        assert_eq!(handler_mismatch("warm-pool", Some("warm-pool")), None);
        assert_eq!(handler_mismatch("warm-pool", None), None);
        let why = handler_mismatch("warm-pool", Some("market-warmup")).unwrap();
        assert!(
            why.contains("warm-pool") && why.contains("\"market-warmup\""),
            "{why}"
        );
    }
}
