//! CodeDeploy lifecycle hooks: run the traffic validation and report exactly one status.
//!
//! Every invocation with a well-formed event ends in exactly one reported status
//! (`PutLifecycleEventHookExecutionStatus`, retried with backoff until it is delivered or the
//! Lambda deadline is near): Succeeded only when the validation passed; Failed when it failed,
//! panicked, or ran out of its time budget. An event without its ids cannot be reported: zero
//! status calls and an error (a failed invocation), never a panic and never a success.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use serde::Serialize;

use crate::gates::targets::WaitBudget;
use crate::gates::validation::{Report, ValidationConfig, Verdict};

/// Which listener a hook function checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Listener {
    /// :9090, the green task set (AfterAllowTestTraffic, BeforeAllowTraffic).
    Test,
    /// The production listener (AfterAllowTraffic).
    Production,
}

/// What can go wrong before or while reporting.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("malformed CodeDeploy lifecycle event, no status can be reported: {0}")]
    Malformed(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("status {status} for deployment {deployment_id} was not delivered after {attempts} attempt(s): {message}")]
    StatusNotDelivered {
        deployment_id: String,
        status: String,
        attempts: u32,
        message: String,
    },
}

/// The hook's settings (from the function environment).
#[derive(Debug, Clone)]
pub struct HookConfig {
    pub listener: Listener,
    pub stack: String,
    pub validation: ValidationConfig,
    /// The listener whose target group's health is read before anything is sent.
    pub listener_arn: String,
    /// NeverHealthySeconds, GateReadinessSeconds and the poll interval.
    pub wait: WaitBudget,
    /// Time kept back from the Lambda deadline to report the status.
    pub report_reserve: Duration,
    /// Longest a validation may run, whatever the Lambda timeout.
    pub max_run: Duration,
}

impl HookConfig {
    /// Reads `LISTENER`, `TEST_LISTENER_URL` / `PRODUCTION_LISTENER_URL`, `LISTENER_ARN`,
    /// `STACK_NAME`, the derived `NEVER_HEALTHY_SECONDS` and `READINESS_SECONDS`, and the
    /// optional tuning variables through `get`. The longest run defaults to the readiness wait
    /// plus the orders' time (`timing::GATE_ORDERS_SECONDS`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, HookError> {
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| HookError::Config(format!("{k} is not set")))
        };
        let (listener, url) = listener_url(&req)?;
        let mut v = ValidationConfig::for_url(&url);
        let num = |k: &str, default: u64| -> Result<u64, HookError> {
            match get(k).filter(|s| !s.trim().is_empty()) {
                None => Ok(default),
                Some(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| HookError::Config(format!("{k}={s:?} is not a whole number"))),
            }
        };
        v.orders = num("SYNTHETIC_ORDERS", v.orders as u64)? as usize;
        // 10 unjudged orders first: the green JVM has just started (its first answers are slow
        // while it compiles); they must still succeed.
        v.warmup_orders = num("WARMUP_ORDERS", 10)? as usize;
        v.concurrency = num("CONCURRENCY", v.concurrency as u64)?.max(1) as usize;
        v.p99_threshold = Duration::from_millis(num("P99_THRESHOLD_MS", 500)?);
        v.warmup_per_target = num("WARMUP_ORDERS_PER_TARGET", 0)? as usize;
        v.request_timeout = Duration::from_millis(num("REQUEST_TIMEOUT_MS", 2000)?);
        // Only after a target is healthy: the listener's own answers settle in seconds.
        v.warmup = Duration::from_secs(num("WARMUP_SECONDS", 20)?);
        if let Some(p) = get("HEALTH_PATH").filter(|s| !s.is_empty()) {
            v.health_path = p;
        }
        if let Some(p) = get("ORDER_PATH").filter(|s| !s.is_empty()) {
            v.order_path = p;
        }
        if let Some(f) = get("EXPECTED_FIELDS").filter(|s| !s.is_empty()) {
            v.expected_fields = f.split(',').map(|s| s.trim().to_string()).collect();
        }
        if v.orders == 0 {
            return Err(HookError::Config(
                "SYNTHETIC_ORDERS must be at least 1".into(),
            ));
        }
        let listener_arn = req("LISTENER_ARN")?;
        let readiness = num("READINESS_SECONDS", u64::MAX)?;
        let never_healthy = num("NEVER_HEALTHY_SECONDS", u64::MAX)?;
        if readiness == u64::MAX || never_healthy == u64::MAX {
            return Err(HookError::Config(
                "READINESS_SECONDS and NEVER_HEALTHY_SECONDS must be set (derived template parameters)"
                    .into(),
            ));
        }
        let poll_ms = num(
            "TARGET_POLL_MS",
            u64::from(crate::gates::targets::POLL_SECONDS) * 1000,
        )?;
        let orders = u64::from(crate::timing::GATE_ORDERS_SECONDS);
        Ok(HookConfig {
            listener,
            stack: req("STACK_NAME")?,
            validation: v,
            listener_arn,
            wait: WaitBudget {
                never_healthy: Duration::from_secs(never_healthy),
                readiness: Duration::from_secs(readiness),
                poll: Duration::from_millis(poll_ms.max(1)),
            },
            report_reserve: Duration::from_secs(num("REPORT_RESERVE_SECONDS", 15)?),
            max_run: Duration::from_secs(num("MAX_RUN_SECONDS", readiness.saturating_add(orders))?),
        })
    }
}

/// `LISTENER` and the URL of that listener (`TEST_LISTENER_URL` / `PRODUCTION_LISTENER_URL`).
fn listener_url(
    req: &impl Fn(&str) -> Result<String, HookError>,
) -> Result<(Listener, String), HookError> {
    let listener = match req("LISTENER")?.as_str() {
        "test" => Listener::Test,
        "production" => Listener::Production,
        other => {
            return Err(HookError::Config(format!(
                "LISTENER={other:?}: expected test or production"
            )))
        }
    };
    let url_var = match listener {
        Listener::Test => "TEST_LISTENER_URL",
        Listener::Production => "PRODUCTION_LISTENER_URL",
    };
    let url = req(url_var)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(HookError::Config(format!(
            "{url_var}={url:?} is not an http(s) URL"
        )));
    }
    Ok((listener, url))
}

/// The ids a status is reported against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookIds {
    pub deployment_id: String,
    pub hook_execution_id: String,
}

/// Reads the typed event; missing or empty ids are malformed.
pub fn parse_event(payload: serde_json::Value) -> Result<HookIds, HookError> {
    let e: CodeDeployLifecycleEvent =
        serde_json::from_value(payload).map_err(|e| HookError::Malformed(e.to_string()))?;
    if e.deployment_id.trim().is_empty() {
        return Err(HookError::Malformed("DeploymentId is empty".into()));
    }
    if e.lifecycle_event_hook_execution_id.trim().is_empty() {
        return Err(HookError::Malformed(
            "LifecycleEventHookExecutionId is empty".into(),
        ));
    }
    Ok(HookIds {
        deployment_id: e.deployment_id,
        hook_execution_id: e.lifecycle_event_hook_execution_id,
    })
}

/// What one invocation decided and reported.
#[derive(Debug, Clone, Serialize)]
pub struct HookOutcome {
    pub ids: HookIds,
    pub listener: Listener,
    pub succeeded: bool,
    pub reason: String,
    pub report: Option<Report>,
    pub status_attempts: u32,
    pub elapsed_ms: u64,
}

/// Handles one hook invocation. `validate` runs the validation until the deadline it is given;
/// it runs in its own task so a panic inside it becomes a Failed status.
pub async fn handle<F, Fut>(
    payload: serde_json::Value,
    codedeploy: &aws_sdk_codedeploy::Client,
    cfg: &HookConfig,
    lambda_deadline: Instant,
    validate: F,
) -> Result<HookOutcome, HookError>
where
    F: FnOnce(Instant) -> Fut,
    Fut: Future<Output = Report> + Send + 'static,
{
    let started = Instant::now();
    let ids = parse_event(payload)?;
    let report_by = lambda_deadline
        .checked_sub(cfg.report_reserve)
        .unwrap_or(started)
        .max(started);
    let run_until = report_by.min(started + cfg.max_run);

    let task = tokio::spawn(validate(run_until));
    let abort = task.abort_handle();
    // A little grace past the validation's own deadline, never past the reporting time.
    let grace = (run_until + Duration::from_secs(2)).min(report_by);
    let (succeeded, reason, report) =
        match tokio::time::timeout_at(tokio::time::Instant::from_std(grace), task).await {
            Ok(Ok(report)) => match &report.verdict {
                Verdict::Pass => (
                    true,
                    format!(
                        "{} synthetic orders succeeded, p99 {} ms",
                        report.succeeded, report.p99_ms
                    ),
                    Some(report),
                ),
                Verdict::Fail(why) => (false, why.clone(), Some(report)),
            },
            Ok(Err(join)) if join.is_panic() => {
                let msg = crate::aws::lambda::panic_message(join.into_panic());
                (false, format!("validation panicked: {msg}"), None)
            }
            Ok(Err(join)) => (false, format!("validation task failed: {join}"), None),
            Err(_) => {
                abort.abort();
                (
                    false,
                    "validation did not finish within its time budget".to_string(),
                    None,
                )
            }
        };

    let status = if succeeded {
        LifecycleEventStatus::Succeeded
    } else {
        LifecycleEventStatus::Failed
    };
    let attempts = report_status(codedeploy, &ids, status, lambda_deadline).await?;
    Ok(HookOutcome {
        ids,
        listener: cfg.listener,
        succeeded,
        reason,
        report,
        status_attempts: attempts,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Reports Failed for an event when nothing can be validated (e.g. the function is
/// misconfigured): the deployment rolls back now instead of waiting an hour for a status.
pub async fn report_failure(
    payload: serde_json::Value,
    codedeploy: &aws_sdk_codedeploy::Client,
    lambda_deadline: Instant,
) -> Result<HookIds, HookError> {
    let ids = parse_event(payload)?;
    report_status(
        codedeploy,
        &ids,
        LifecycleEventStatus::Failed,
        lambda_deadline,
    )
    .await?;
    Ok(ids)
}

/// How the status call is retried: the SDK's standard retry (transient and throttling errors
/// only; a modelled error such as an invalid id is answered at once), 200 ms doubling to 3 s, at
/// most 8 attempts, all of them inside an operation timeout that ends 1 s before the Lambda
/// deadline.
pub fn status_retry() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(3))
}

/// Counts the attempts the SDK makes (the outcome reports them).
#[derive(Debug, Clone, Default)]
struct AttemptCounter(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "AttemptCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Reports the status once; the SDK retries transient failures until delivered or the deadline
/// is 1 s away. Returns the number of attempts.
async fn report_status(
    codedeploy: &aws_sdk_codedeploy::Client,
    ids: &HookIds,
    status: LifecycleEventStatus,
    lambda_deadline: Instant,
) -> Result<u32, HookError> {
    use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusError as E;
    let budget = lambda_deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_secs(1))
        .max(Duration::from_millis(100));
    let counter = AttemptCounter::default();
    let result = codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&ids.deployment_id)
        .lifecycle_event_hook_execution_id(&ids.hook_execution_id)
        .status(status.clone())
        .customize()
        .config_override(
            aws_sdk_codedeploy::config::Builder::default()
                .retry_config(status_retry())
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_timeout(budget)
                        .build(),
                )
                .interceptor(counter.clone()),
        )
        .send()
        .await;
    let attempts = counter.0.load(std::sync::atomic::Ordering::Relaxed).max(1);
    match result {
        Ok(_) => Ok(attempts),
        // An earlier attempt got through and only its answer was lost.
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(E::LifecycleEventAlreadyCompletedException(_))
            ) =>
        {
            Ok(attempts)
        }
        Err(e) => {
            let message =
                crate::aws::AwsError::new("codedeploy:PutLifecycleEventHookExecutionStatus", e)
                    .to_string();
            tracing::warn!(attempts, error = %message, "status not delivered");
            Err(HookError::StatusNotDelivered {
                deployment_id: ids.deployment_id.clone(),
                status: status.as_str().to_string(),
                attempts,
                message,
            })
        }
    }
}

/// The verdict and its numbers as one CloudWatch Embedded Metric Format line
/// (namespace `OrderBroker/Deployments`, dimensions Stack and Listener).
pub fn emf_line(stack: &str, outcome: &HookOutcome, timestamp_ms: i64) -> String {
    let r = outcome.report.as_ref();
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "OrderBroker/Deployments",
                "Dimensions": [["Stack", "Listener"]],
                "Metrics": [
                    {"Name": "ValidationPassed", "Unit": "Count"},
                    {"Name": "SyntheticOrdersSent", "Unit": "Count"},
                    {"Name": "SyntheticOrdersFailed", "Unit": "Count"},
                    {"Name": "ValidationP99Latency", "Unit": "Milliseconds"},
                    {"Name": "ValidationDuration", "Unit": "Milliseconds"}
                ]
            }]
        },
        "Stack": stack,
        "Listener": outcome.listener,
        "DeploymentId": outcome.ids.deployment_id,
        "ValidationPassed": if outcome.succeeded { 1 } else { 0 },
        "SyntheticOrdersSent": r.map_or(0, |r| r.sent),
        "SyntheticOrdersFailed": r.map_or(0, |r| r.failed),
        "ValidationP99Latency": r.map_or(0, |r| r.p99_ms),
        "ValidationDuration": outcome.elapsed_ms,
        "Reason": outcome.reason,
    })
    .to_string()
}
