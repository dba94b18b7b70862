//! Synthetic-trade load: orders at a steady rate, every request recorded.
//!
//! The orders are the traffic validator's harmless synthetic orders (`X-Synthetic-Order: true`,
//! the reserved test account and the test symbol `ZVZZT`, see [`crate::gates::validation`]), each with a
//! unique idempotency key. The generator is open-loop: order `i` is sent at `start + i / rate`
//! whatever the earlier ones are doing, so a slow or restarting service cannot slow the load
//! down and hide drops. Nothing is retried: every order is counted exactly once as
//!
//! - **succeeded**: a 2xx answer with the expected fields (the validator's check);
//! - **failed**: an answer, but not a good one (status, shape);
//! - **dropped**: no answer at all (refused, reset, timed out).

pub mod aws;
pub mod generator;
// The CLI's side of the in-VPC load (it invokes the load-generator function): feature `cli`.
#[cfg(feature = "cli")]
pub mod in_vpc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::gates::validation::{
    check_answer, idempotency_key, percentile, ValidationConfig, IDEMPOTENCY_HEADER,
    SYNTHETIC_HEADER,
};

/// How a load run is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadConfig {
    /// Where and what to send: the validator's order contract (base URL, path, body, headers,
    /// per-request timeout, expected answer fields).
    pub target: ValidationConfig,
    /// Orders per second.
    pub rate: f64,
    pub duration: Duration,
    /// Orders waiting for an answer at most; beyond it the generator itself is saturated and
    /// the order is counted as not sent (the run fails: it could not keep the rate).
    pub max_in_flight: usize,
}

/// What a load run is asked to do, as the CLI and the in-VPC function take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    /// `http(s)://host[:port]` of the listener.
    pub url: String,
    pub rate: f64,
    pub duration_seconds: f64,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Names this run in the idempotency keys (default: the start time).
    #[serde(default)]
    pub run_id: Option<String>,
    /// Start at this time (epoch milliseconds) rather than at once: segments of one run join
    /// without gap or overlap.
    #[serde(default)]
    pub start_at_ms: Option<u64>,
}

fn default_path() -> String {
    "/orders".into()
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_in_flight() -> usize {
    512
}

/// Refusals of a load request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("url {0:?} is not http(s)://host[:port]")]
    BadUrl(String),
    #[error("rate {0} is not a positive number of orders per second (at most 2000)")]
    BadRate(String),
    #[error("duration {0} s is not positive (at most 86400)")]
    BadDuration(String),
    #[error("path {0:?} must start with /")]
    BadPath(String),
    #[error("timeout {0} ms must be between 100 and 60000")]
    BadTimeout(u64),
    #[error("max_in_flight must be at least 1")]
    BadInFlight,
}

impl LoadRequest {
    /// The run configuration, or what is wrong with the request.
    pub fn config(&self) -> Result<LoadConfig, LoadError> {
        let url = self.url.trim_end_matches('/');
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| LoadError::BadUrl(self.url.clone()))?;
        if host.is_empty() || host.contains('/') || host.contains(' ') {
            return Err(LoadError::BadUrl(self.url.clone()));
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 2000.0) {
            return Err(LoadError::BadRate(self.rate.to_string()));
        }
        if !(self.duration_seconds.is_finite()
            && self.duration_seconds > 0.0
            && self.duration_seconds <= 86400.0)
        {
            return Err(LoadError::BadDuration(self.duration_seconds.to_string()));
        }
        if !self.path.starts_with('/') {
            return Err(LoadError::BadPath(self.path.clone()));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(LoadError::BadTimeout(self.timeout_ms));
        }
        if self.max_in_flight == 0 {
            return Err(LoadError::BadInFlight);
        }
        let mut target = ValidationConfig::for_url(url);
        target.order_path = self.path.clone();
        target.request_timeout = Duration::from_millis(self.timeout_ms);
        Ok(LoadConfig {
            target,
            rate: self.rate,
            duration: Duration::from_secs_f64(self.duration_seconds),
            max_in_flight: self.max_in_flight,
        })
    }
}

/// How one order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeOutcome {
    Succeeded,
    Failed,
    Dropped,
    /// The generator was saturated (`max_in_flight`) and did not send it.
    NotSent,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub index: usize,
    pub idempotency_key: String,
    /// When it was sent.
    pub at: DateTime<Utc>,
    pub outcome: TradeOutcome,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed or was dropped.
    pub cause: Option<String>,
}

/// A failure or drop, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub at: DateTime<Utc>,
    pub index: usize,
    pub idempotency_key: String,
    pub outcome: TradeOutcome,
    pub status: Option<u16>,
    pub cause: String,
}

/// The report of a run (the `--json` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub url: String,
    pub run_id: String,
    pub rate: f64,
    pub duration_seconds: f64,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Orders scheduled by the rate and duration.
    pub scheduled: usize,
    /// Orders sent (scheduled minus not sent).
    pub sent: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub dropped: usize,
    pub not_sent: usize,
    /// Latency of answered orders (succeeded or failed), milliseconds.
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    /// Every failure and drop, in time order.
    pub incidents: Vec<Incident>,
    /// Anything that makes the counts less than the whole story (a late segment start).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl LoadReport {
    /// True when every scheduled order was sent and answered well.
    pub fn clean(&self) -> bool {
        self.failed == 0
            && self.dropped == 0
            && self.not_sent == 0
            && self.sent == self.scheduled
            && self.notes.is_empty()
    }

    /// The human summary the CLI prints.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} at {}/s for {} s ({} .. {})",
            self.url,
            self.rate,
            self.duration_seconds,
            self.started_at.format("%H:%M:%S%.3fZ"),
            self.ended_at.format("%H:%M:%S%.3fZ")
        );
        let _ = writeln!(
            s,
            "sent {} / succeeded {} / failed {} / dropped {}{}",
            self.sent,
            self.succeeded,
            self.failed,
            self.dropped,
            if self.not_sent > 0 {
                format!(" / NOT SENT {} (generator saturated)", self.not_sent)
            } else {
                String::new()
            }
        );
        if self.succeeded + self.failed == 0 {
            // No answer, no latency: never a percentile of 0 ms.
            let _ = writeln!(s, "latency: no order was answered");
        } else {
            let _ = writeln!(
                s,
                "latency p50 {} ms / p99 {} ms / max {} ms",
                self.latency_p50_ms, self.latency_p99_ms, self.latency_max_ms
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        for i in &self.incidents {
            let _ = writeln!(
                s,
                "  {} #{} {:?}{}: {}",
                i.at.format("%H:%M:%S%.3fZ"),
                i.index,
                i.outcome,
                i.status.map(|c| format!(" {c}")).unwrap_or_default(),
                i.cause
            );
        }
        s
    }
}

/// How many orders a rate and duration schedule: `floor(rate x duration)`, at least one.
pub fn scheduled_orders(rate: f64, duration: Duration) -> usize {
    ((rate * duration.as_secs_f64()).floor() as usize).max(1)
}

/// Builds the report from every order (pure).
pub fn summarize(
    cfg: &LoadConfig,
    run_id: &str,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    mut trades: Vec<Trade>,
) -> LoadReport {
    trades.sort_by_key(|t| t.index);
    let count = |o: TradeOutcome| trades.iter().filter(|t| t.outcome == o).count();
    let mut answered: Vec<u64> = trades
        .iter()
        .filter(|t| matches!(t.outcome, TradeOutcome::Succeeded | TradeOutcome::Failed))
        .map(|t| t.latency_ms)
        .collect();
    answered.sort_unstable();
    let mut incidents: Vec<Incident> = trades
        .iter()
        .filter(|t| t.outcome != TradeOutcome::Succeeded)
        .map(|t| Incident {
            at: t.at,
            index: t.index,
            idempotency_key: t.idempotency_key.clone(),
            outcome: t.outcome,
            status: t.status,
            cause: t.cause.clone().unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    incidents.sort_by_key(|i| (i.at, i.index));
    let not_sent = count(TradeOutcome::NotSent);
    LoadReport {
        url: cfg.target.base_url.clone(),
        run_id: run_id.to_string(),
        rate: cfg.rate,
        duration_seconds: cfg.duration.as_secs_f64(),
        started_at,
        ended_at,
        scheduled: scheduled_orders(cfg.rate, cfg.duration),
        sent: trades.len() - not_sent,
        succeeded: count(TradeOutcome::Succeeded),
        failed: count(TradeOutcome::Failed),
        dropped: count(TradeOutcome::Dropped),
        not_sent,
        latency_p50_ms: percentile(&answered, 50.0),
        latency_p99_ms: percentile(&answered, 99.0),
        latency_max_ms: answered.last().copied().unwrap_or(0),
        incidents,
        notes: Vec::new(),
    }
}

/// Merges the reports of consecutive (possibly overlapping) segments of one run.
pub fn merge(reports: &[LoadReport]) -> Option<LoadReport> {
    let first = reports.first()?;
    let mut incidents: Vec<Incident> = reports.iter().flat_map(|r| r.incidents.clone()).collect();
    incidents.sort_by_key(|i| i.at);
    let sum = |f: fn(&LoadReport) -> usize| reports.iter().map(f).sum::<usize>();
    let started_at = reports.iter().map(|r| r.started_at).min()?;
    let ended_at = reports.iter().map(|r| r.ended_at).max()?;
    Some(LoadReport {
        url: first.url.clone(),
        run_id: first.run_id.clone(),
        rate: first.rate,
        duration_seconds: (ended_at - started_at).num_milliseconds() as f64 / 1000.0,
        started_at,
        ended_at,
        scheduled: sum(|r| r.scheduled),
        sent: sum(|r| r.sent),
        succeeded: sum(|r| r.succeeded),
        failed: sum(|r| r.failed),
        dropped: sum(|r| r.dropped),
        not_sent: sum(|r| r.not_sent),
        // Percentiles of segments do not combine exactly: the worst segment's is reported.
        latency_p50_ms: reports.iter().map(|r| r.latency_p50_ms).max().unwrap_or(0),
        latency_p99_ms: reports.iter().map(|r| r.latency_p99_ms).max().unwrap_or(0),
        latency_max_ms: reports.iter().map(|r| r.latency_max_ms).max().unwrap_or(0),
        incidents,
        notes: reports.iter().flat_map(|r| r.notes.clone()).collect(),
    })
}

fn cause(e: &reqwest::Error) -> String {
    crate::gates::validation::error_chain(
        e,
        ["timed out (no answer)", "connection failed", "no answer"],
    )
}

/// Live counts of a run, for a progress display while it goes on.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: std::sync::atomic::AtomicUsize,
    pub succeeded: std::sync::atomic::AtomicUsize,
    pub failed: std::sync::atomic::AtomicUsize,
    pub dropped: std::sync::atomic::AtomicUsize,
    pub not_sent: std::sync::atomic::AtomicUsize,
}

impl Counters {
    fn count(&self, t: &Trade) {
        use std::sync::atomic::Ordering::Relaxed;
        match t.outcome {
            TradeOutcome::Succeeded => self.succeeded.fetch_add(1, Relaxed),
            TradeOutcome::Failed => self.failed.fetch_add(1, Relaxed),
            TradeOutcome::Dropped => self.dropped.fetch_add(1, Relaxed),
            TradeOutcome::NotSent => self.not_sent.fetch_add(1, Relaxed),
        };
    }

    /// `sent S, succeeded A, failed F, dropped D[, not sent N]`.
    pub fn line(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let not_sent = self.not_sent.load(Relaxed);
        format!(
            "sent {}, succeeded {}, failed {}, dropped {}{}",
            self.sent.load(Relaxed),
            self.succeeded.load(Relaxed),
            self.failed.load(Relaxed),
            self.dropped.load(Relaxed),
            if not_sent > 0 {
                format!(", not sent {not_sent}")
            } else {
                String::new()
            }
        )
    }
}

/// Runs the load; `stop` ends it early (orders not yet due are then not scheduled).
pub async fn run(
    client: &reqwest::Client,
    cfg: &LoadConfig,
    run_id: &str,
    stop: Option<Arc<tokio::sync::Notify>>,
) -> LoadReport {
    run_counted(client, cfg, run_id, stop, &Counters::default()).await
}

/// [`run`], keeping `counters` current as orders go out and answers come back.
pub async fn run_counted(
    client: &reqwest::Client,
    cfg: &LoadConfig,
    run_id: &str,
    stop: Option<Arc<tokio::sync::Notify>>,
    counters: &Counters,
) -> LoadReport {
    use tokio::task::JoinSet;
    let total = scheduled_orders(cfg.rate, cfg.duration);
    let method = reqwest::Method::from_bytes(cfg.target.order_method.as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let url = format!("{}{}", cfg.target.base_url, cfg.target.order_path);
    let started_at = Utc::now();
    let t0 = tokio::time::Instant::now();
    let mut set: JoinSet<Trade> = JoinSet::new();
    let mut trades = Vec::with_capacity(total);
    let mut stopped = false;
    for index in 0..total {
        let due = t0 + Duration::from_secs_f64(index as f64 / cfg.rate);
        // Collect answers while waiting for the next order's time.
        loop {
            tokio::select! {
                biased;
                _ = async { stop.as_ref().unwrap().notified().await }, if stop.is_some() && !stopped => {
                    stopped = true;
                }
                Some(done) = set.join_next(), if !set.is_empty() => {
                    let t = joined(done);
                    counters.count(&t);
                    trades.push(t);
                    continue;
                }
                _ = tokio::time::sleep_until(due) => {}
            }
            break;
        }
        if stopped {
            break;
        }
        let key = idempotency_key(run_id, index);
        let at = Utc::now();
        if set.len() >= cfg.max_in_flight {
            counters
                .not_sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            trades.push(Trade {
                index,
                idempotency_key: key,
                at,
                outcome: TradeOutcome::NotSent,
                status: None,
                latency_ms: 0,
                cause: Some(format!(
                    "generator saturated: {} orders already waiting",
                    set.len()
                )),
            });
            continue;
        }
        let mut req = client
            .request(method.clone(), &url)
            .timeout(cfg.target.request_timeout)
            .header(SYNTHETIC_HEADER, "true")
            .header(IDEMPOTENCY_HEADER, &key)
            .body(cfg.target.order_body.replace("{{key}}", &key));
        for (k, v) in &cfg.target.order_headers {
            req = req.header(k, v);
        }
        let target = cfg.target.clone();
        counters
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        set.spawn(async move {
            let sent = Instant::now();
            let (outcome, status, cause) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.text().await {
                        Ok(body) => match check_answer(&target, status, &body) {
                            Ok(()) => (TradeOutcome::Succeeded, Some(status), None),
                            Err(why) => (TradeOutcome::Failed, Some(status), Some(why)),
                        },
                        // Headers came, the body did not: the answer was lost.
                        Err(e) => (TradeOutcome::Dropped, Some(status), Some(cause(&e))),
                    }
                }
                Err(e) => (TradeOutcome::Dropped, None, Some(cause(&e))),
            };
            Trade {
                index,
                idempotency_key: key,
                at,
                outcome,
                status,
                latency_ms: sent.elapsed().as_millis() as u64,
                cause,
            }
        });
    }
    while let Some(done) = set.join_next().await {
        let t = joined(done);
        counters.count(&t);
        trades.push(t);
    }
    let mut cfg = cfg.clone();
    if stopped {
        // Stopped early: the report covers what was scheduled until then.
        let elapsed = t0.elapsed();
        cfg.duration = elapsed.min(cfg.duration);
    }
    let mut report = summarize(&cfg, run_id, started_at, Utc::now(), trades);
    if stopped {
        report.scheduled = report.sent + report.not_sent;
    }
    report
}

fn joined(done: Result<Trade, tokio::task::JoinError>) -> Trade {
    done.unwrap_or_else(|e| Trade {
        index: usize::MAX,
        idempotency_key: String::new(),
        at: Utc::now(),
        outcome: TradeOutcome::Dropped,
        status: None,
        latency_ms: 0,
        cause: Some(format!("order task failed: {e}")),
    })
}

/// Time the in-VPC function keeps after a segment to answer (the last orders' timeout is added).
pub const SEGMENT_RESERVE: Duration = Duration::from_secs(10);

/// One segment of load, fitted to the time the function has (the request is already admitted
/// within the function's limits: [`generator::admit`]).
pub async fn run_segment(
    client: &reqwest::Client,
    req: LoadRequest,
    remaining: Duration,
) -> Result<LoadReport, String> {
    let cfg = req.config().map_err(|e| e.to_string())?;
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    let wait = Duration::from_millis(req.start_at_ms.map_or(0, |t| t.saturating_sub(now_ms)));
    let late_ms = req.start_at_ms.map_or(0, |t| now_ms.saturating_sub(t));
    let needed = wait + cfg.duration + cfg.target.request_timeout + SEGMENT_RESERVE;
    if needed > remaining {
        return Err(format!(
            "a {} s segment needs {} s with the request timeout and reserve; the function has {} s: use shorter segments",
            cfg.duration.as_secs_f64(),
            needed.as_secs(),
            remaining.as_secs()
        ));
    }
    let run_id = req
        .run_id
        .clone()
        .unwrap_or_else(|| Utc::now().format("%Y%m%dT%H%M%S").to_string());
    tokio::time::sleep(wait).await;
    let mut report = run(client, &cfg, &run_id, None).await;
    if late_ms > 1000 {
        report.notes.push(format!(
            "segment {run_id} started {late_ms} ms after its planned start: the load paused that long"
        ));
    }
    Ok(report)
}
