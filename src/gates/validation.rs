//! Traffic validation: real synthetic trades against a listener, and the verdict.
//!
//! A run: wait (bounded) for the health endpoint to answer 200 several times in a row, then send
//! W warm-up orders and N judged synthetic orders with bounded concurrency, each with its own
//! timeout and idempotency key, and judge: pass only if every order (warm-up ones included)
//! succeeded with the expected shape and the judged orders' p99 latency is under the threshold
//! (a just-started JVM's first answers are slow: they must not fail a good version). A clear failure (connection refused, a failed order, enough slow answers that
//! p99 is already lost) stops the run at once so CodeDeploy can roll back sooner.
//!
//! A synthetic order is harmless even if the green version ignores the dry-run marker: it carries
//! the `X-Synthetic-Order: true` header AND, in its body, the reserved test account and the test
//! symbol `ZVZZT`, which downstream systems reject.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The reserved account every synthetic order uses (rejected downstream).
pub const SYNTHETIC_ACCOUNT: &str = "SYNTHETIC-TEST-0000";
/// The exchange test symbol every synthetic order uses (rejected downstream).
pub const SYNTHETIC_SYMBOL: &str = "ZVZZT";
/// The header that marks a synthetic order.
pub const SYNTHETIC_HEADER: &str = "X-Synthetic-Order";
/// The header carrying each order's unique idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The pause between health answers once one answered 200 (the warm-up's quick confirmation).
pub const HEALTH_PAUSE_MS: u64 = 200;

/// How a run is done and judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationConfig {
    /// `http://host:port` of the listener (no trailing slash).
    pub base_url: String,
    pub health_path: String,
    /// Health must answer 200 this many times in a row before orders are sent.
    pub healthy_in_a_row: u32,
    /// Longest wait for the listener to converge (targets registering, 503s).
    pub warmup: Duration,
    pub warmup_interval: Duration,
    /// Consecutive refused connections, or application 5xx answers (not the load balancer's
    /// 502/503/504), that end the warm-up at once as a clear failure.
    pub refused_limit: u32,
    pub order_method: String,
    pub order_path: String,
    /// Order body; `{{key}}` is replaced by the idempotency key.
    pub order_body: String,
    /// Extra headers (name, value) on every order.
    pub order_headers: Vec<(String, String)>,
    /// The judged synthetic orders.
    pub orders: usize,
    /// Orders sent first whose latency is not judged (a freshly started JVM answers its first
    /// requests slowly while it compiles; a gate must not fail a good version for that). Every
    /// one must still succeed.
    pub warmup_orders: usize,
    /// Unjudged orders per healthy target: the application's declared cold start (its first
    /// answers may be slow), so every target is past it before any order is judged
    /// ([`ValidationConfig::for_targets`]).
    #[serde(default)]
    pub warmup_per_target: usize,
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub p99_threshold: Duration,
    /// Fields every order answer (a JSON object) must have.
    pub expected_fields: Vec<String>,
}

/// The default synthetic order body.
pub fn default_order_body() -> String {
    format!(
        r#"{{"account":"{SYNTHETIC_ACCOUNT}","symbol":"{SYNTHETIC_SYMBOL}","side":"BUY","type":"LIMIT","quantity":1,"limitPrice":0.01,"timeInForce":"IOC","dryRun":true,"clientOrderId":"{{{{key}}}}"}}"#
    )
}

impl ValidationConfig {
    /// Defaults for a base URL (what the template sets unless overridden).
    pub fn for_url(base_url: &str) -> Self {
        ValidationConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            health_path: "/health".into(),
            healthy_in_a_row: 3,
            warmup: Duration::from_secs(60),
            warmup_interval: Duration::from_secs(2),
            refused_limit: 3,
            order_method: "POST".into(),
            order_path: "/orders".into(),
            order_body: default_order_body(),
            order_headers: vec![("Content-Type".into(), "application/json".into())],
            orders: 20,
            warmup_orders: 0,
            warmup_per_target: 0,
            concurrency: 4,
            request_timeout: Duration::from_secs(2),
            p99_threshold: Duration::from_millis(500),
            expected_fields: vec!["orderId".into(), "status".into()],
        }
    }
}

/// Orders in flight per healthy target during a run, and the most in flight at all: the
/// warm-up of many targets takes about as long as that of one.
pub const CONCURRENCY_PER_TARGET: usize = 4;
pub const MAX_CONCURRENCY: usize = 64;

impl ValidationConfig {
    /// The run for `targets` healthy targets: at least `warmup_per_target` unjudged orders per
    /// target (the listener spreads them round-robin), never fewer than `warmup_orders`, and
    /// [`CONCURRENCY_PER_TARGET`] orders in flight per target (at most [`MAX_CONCURRENCY`],
    /// never fewer than `concurrency`).
    pub fn for_targets(&self, targets: usize) -> Self {
        ValidationConfig {
            warmup_orders: self
                .warmup_orders
                .max(self.warmup_per_target.saturating_mul(targets)),
            concurrency: self.concurrency.max(
                targets
                    .saturating_mul(CONCURRENCY_PER_TARGET)
                    .min(MAX_CONCURRENCY),
            ),
            ..self.clone()
        }
    }
}

/// One synthetic order's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderResult {
    pub index: usize,
    pub idempotency_key: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed (transport error, bad status, bad shape); `None` when it succeeded.
    pub error: Option<String>,
    /// The start of the answer body, for the report (failures only).
    pub body_excerpt: Option<String>,
}

impl OrderResult {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// How the health warm-up ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthOutcome {
    pub healthy: bool,
    pub attempts: u32,
    pub waited_ms: u64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// Pass or fail, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail(String),
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// The whole report of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub url: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub health: HealthOutcome,
    pub planned: usize,
    pub sent: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    pub stopped_early: bool,
    pub duration_ms: u64,
    /// Each failed order: status, latency, cause, body excerpt.
    pub failures: Vec<OrderResult>,
    /// The wait for a healthy target before anything was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<crate::gates::targets::TargetWait>,
}

/// The report of a gate that sent nothing because no target became healthy (pure).
pub fn not_ready(cfg: &ValidationConfig, wait: crate::gates::targets::TargetWait) -> Report {
    Report {
        url: cfg.base_url.clone(),
        verdict: Verdict::Fail(format!("target health: {}", wait.reason)),
        health: HealthOutcome {
            healthy: false,
            attempts: 0,
            waited_ms: 0,
            last_status: None,
            last_error: None,
        },
        planned: cfg.warmup_orders + cfg.orders,
        sent: 0,
        succeeded: 0,
        failed: 0,
        p50_ms: 0,
        p99_ms: 0,
        max_ms: 0,
        stopped_early: true,
        duration_ms: wait.waited_ms,
        failures: Vec::new(),
        targets: Some(wait),
    }
}

/// Nearest-rank percentile (p in 0..=100) of sorted latencies; 0 for none.
pub fn percentile(sorted_ms: &[u64], p: f64) -> u64 {
    if sorted_ms.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted_ms.len() as f64).ceil().max(1.0) as usize;
    sorted_ms[rank.min(sorted_ms.len()) - 1]
}

/// How many answers above the threshold make p99 fail for `n` orders (nearest rank).
pub fn slow_answers_that_fail_p99(n: usize) -> usize {
    if n == 0 {
        return 1;
    }
    let rank = (0.99 * n as f64).ceil() as usize;
    n - rank + 1
}

/// The verdict over a run's results (pure).
pub fn judge(
    cfg: &ValidationConfig,
    health: &HealthOutcome,
    results: &[OrderResult],
    deadline_hit: bool,
) -> Verdict {
    if !health.healthy {
        return Verdict::Fail(format!(
            "health check {}{} never answered 200 {} times in a row (attempts {}, last {})",
            cfg.base_url,
            cfg.health_path,
            cfg.healthy_in_a_row,
            health.attempts,
            health
                .last_error
                .clone()
                .or(health.last_status.map(|s| format!("status {s}")))
                .unwrap_or_else(|| "nothing".into())
        ));
    }
    if deadline_hit {
        return Verdict::Fail(format!(
            "the time budget ran out after {} of {} synthetic orders",
            results.iter().filter(|r| r.ok()).count(),
            cfg.warmup_orders + cfg.orders
        ));
    }
    if let Some(f) = results.iter().find(|r| !r.ok()) {
        let failed = results.iter().filter(|r| !r.ok()).count();
        return Verdict::Fail(format!(
            "{failed} of {} synthetic orders failed; first: order {} {}",
            results.len(),
            f.index,
            f.error.as_deref().unwrap_or_default()
        ));
    }
    let mut lat = judged_latencies(cfg, results);
    let limit = cfg.p99_threshold.as_millis() as u64;
    // Judged on what was sent: enough slow answers already lose p99 for the full run.
    let slow = lat.iter().filter(|l| **l > limit).count();
    lat.sort_unstable();
    if slow >= slow_answers_that_fail_p99(cfg.orders) {
        let p99 = percentile(&lat, 99.0);
        return Verdict::Fail(format!(
            "p99 latency above the {limit} ms threshold ({slow} answers slower; p99 so far {p99} ms)"
        ));
    }
    let total = cfg.warmup_orders + cfg.orders;
    if results.len() < total {
        return Verdict::Fail(format!(
            "only {} of {} synthetic orders were sent",
            results.len(),
            total
        ));
    }
    Verdict::Pass
}

/// The latencies the p99 judges: every order after the warm-up orders (pure).
pub fn judged_latencies(cfg: &ValidationConfig, results: &[OrderResult]) -> Vec<u64> {
    results
        .iter()
        .filter(|r| r.index >= cfg.warmup_orders)
        .map(|r| r.latency_ms)
        .collect()
}

/// Checks an order answer: 2xx and a JSON object with the expected fields.
pub fn check_answer(cfg: &ValidationConfig, status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("status {status}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|_| "answer is not JSON".to_string())?;
    let obj = v.as_object().ok_or("answer is not a JSON object")?;
    let missing: Vec<&str> = cfg
        .expected_fields
        .iter()
        .filter(|f| !obj.contains_key(f.as_str()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("answer lacks {}", missing.join(", ")))
    }
}

fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if body.chars().count() > 200 {
        s.push('…');
    }
    s
}

const CUT_OFF: &str = "cut off by the time budget";

/// A unique idempotency key per synthetic order.
pub fn idempotency_key(run: &str, index: usize) -> String {
    format!("synthetic-{run}-{index:04}")
}

fn describe(e: &reqwest::Error) -> String {
    error_chain(e, ["timed out", "connection failed", "request failed"])
}

/// A transport error as one line: `kind[0]` for a timeout, `kind[1]` for a connection failure,
/// `kind[2]` otherwise, then every underlying cause.
pub fn error_chain(e: &reqwest::Error, kind: [&str; 3]) -> String {
    let mut cause = if e.is_timeout() {
        kind[0]
    } else if e.is_connect() {
        kind[1]
    } else {
        kind[2]
    }
    .to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    cause
}

fn is_refused(e: &reqwest::Error) -> bool {
    if !e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// Runs a validation until `deadline` at the latest.
pub async fn validate(
    client: &reqwest::Client,
    cfg: &ValidationConfig,
    run_id: &str,
    deadline: Instant,
) -> Report {
    let started = Instant::now();
    let health = warm_up(client, cfg, deadline).await;
    let mut results: Vec<OrderResult> = Vec::new();
    let mut stopped_early = false;
    let mut deadline_hit = Instant::now() >= deadline;
    if health.healthy {
        let (r, stopped, hit) = send_orders(client, cfg, run_id, deadline).await;
        results = r;
        stopped_early = stopped;
        deadline_hit = hit;
    }
    let verdict = judge(cfg, &health, &results, deadline_hit);
    let mut lat = judged_latencies(cfg, &results);
    lat.sort_unstable();
    Report {
        url: cfg.base_url.clone(),
        verdict,
        health,
        planned: cfg.warmup_orders + cfg.orders,
        sent: results.len(),
        succeeded: results.iter().filter(|r| r.ok()).count(),
        failed: results.iter().filter(|r| !r.ok()).count(),
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        max_ms: lat.last().copied().unwrap_or(0),
        stopped_early,
        duration_ms: started.elapsed().as_millis() as u64,
        failures: results.into_iter().filter(|r| !r.ok()).collect(),
        targets: None,
    }
}

async fn warm_up(
    client: &reqwest::Client,
    cfg: &ValidationConfig,
    deadline: Instant,
) -> HealthOutcome {
    let started = Instant::now();
    let stop = deadline.min(started + cfg.warmup);
    let url = format!("{}{}", cfg.base_url, cfg.health_path);
    let mut out = HealthOutcome {
        healthy: false,
        attempts: 0,
        waited_ms: 0,
        last_status: None,
        last_error: None,
    };
    let (mut in_a_row, mut refused, mut hard) = (0u32, 0u32, 0u32);
    loop {
        out.attempts += 1;
        let remaining = stop.saturating_duration_since(Instant::now());
        let timeout = cfg
            .request_timeout
            .min(remaining.max(Duration::from_millis(1)));
        match client.get(&url).timeout(timeout).send().await {
            Ok(resp) => {
                refused = 0;
                let status = resp.status().as_u16();
                out.last_status = Some(status);
                out.last_error = None;
                if status == 200 {
                    in_a_row += 1;
                    hard = 0;
                    if in_a_row >= cfg.healthy_in_a_row {
                        out.healthy = true;
                        break;
                    }
                } else {
                    in_a_row = 0;
                    // 502/503/504 come from the load balancer while targets register: wait.
                    // Any other 5xx is the new version itself answering that it is broken.
                    if status >= 500 && !(502..=504).contains(&status) {
                        hard += 1;
                        if hard >= cfg.refused_limit {
                            break; // repeated 5xx from the application: fail fast
                        }
                    } else {
                        hard = 0;
                    }
                }
            }
            Err(e) => {
                in_a_row = 0;
                out.last_error = Some(describe(&e));
                if is_refused(&e) {
                    refused += 1;
                    if refused >= cfg.refused_limit {
                        break; // nothing listens: a clear failure, fail fast
                    }
                }
            }
        }
        let pause = if in_a_row > 0 {
            Duration::from_millis(HEALTH_PAUSE_MS)
        } else {
            cfg.warmup_interval
        };
        if Instant::now() + pause >= stop {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    out.waited_ms = started.elapsed().as_millis() as u64;
    out
}

async fn send_orders(
    client: &reqwest::Client,
    cfg: &ValidationConfig,
    run_id: &str,
    deadline: Instant,
) -> (Vec<OrderResult>, bool, bool) {
    use tokio::task::JoinSet;
    let method =
        reqwest::Method::from_bytes(cfg.order_method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let url = format!("{}{}", cfg.base_url, cfg.order_path);
    let slow_limit = slow_answers_that_fail_p99(cfg.orders);
    let threshold_ms = cfg.p99_threshold.as_millis() as u64;
    let total = cfg.warmup_orders + cfg.orders;
    let mut set = JoinSet::new();
    let mut results = Vec::with_capacity(total);
    let (mut next, mut slow, mut stop) = (0usize, 0usize, false);
    let mut deadline_hit = false;
    loop {
        while !stop && set.len() < cfg.concurrency.max(1) && next < total {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                deadline_hit = true;
                stop = true;
                break;
            }
            let key = idempotency_key(run_id, next);
            let clipped = remaining < cfg.request_timeout;
            let mut req = client
                .request(method.clone(), &url)
                .timeout(cfg.request_timeout.min(remaining))
                .header(SYNTHETIC_HEADER, "true")
                .header(IDEMPOTENCY_HEADER, &key)
                .body(cfg.order_body.replace("{{key}}", &key));
            for (k, v) in &cfg.order_headers {
                req = req.header(k, v);
            }
            let index = next;
            let cfg = cfg.clone();
            set.spawn(async move {
                let t0 = Instant::now();
                let outcome = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body = resp.text().await.unwrap_or_default();
                        match check_answer(&cfg, status, &body) {
                            Ok(()) => (Some(status), None, None),
                            Err(why) => (Some(status), Some(why), Some(excerpt(&body))),
                        }
                    }
                    Err(e) if e.is_timeout() && clipped => (None, Some(CUT_OFF.to_string()), None),
                    Err(e) => (None, Some(describe(&e)), None),
                };
                OrderResult {
                    index,
                    idempotency_key: key,
                    status: outcome.0,
                    latency_ms: t0.elapsed().as_millis() as u64,
                    error: outcome.1,
                    body_excerpt: outcome.2,
                }
            });
            next += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let r = match done {
            Ok(r) => r,
            Err(e) => OrderResult {
                index: usize::MAX,
                idempotency_key: String::new(),
                status: None,
                latency_ms: 0,
                error: Some(format!("order task failed: {e}")),
                body_excerpt: None,
            },
        };
        if r.error.as_deref() == Some(CUT_OFF) {
            deadline_hit = true;
            stop = true;
            continue; // not an order failure: the budget ended first
        }
        if r.index >= cfg.warmup_orders && r.latency_ms > threshold_ms {
            slow += 1;
        }
        if !r.ok() || slow >= slow_limit {
            stop = true; // the verdict is already lost: stop sending
        }
        results.push(r);
    }
    results.sort_by_key(|r| r.index);
    let stopped_early = results.len() < total;
    (results, stopped_early, deadline_hit)
}
