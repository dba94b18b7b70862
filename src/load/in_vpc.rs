//! The load from inside the VPC: consecutive segments of the load-generator function (a Lambda
//! invocation lasts at most 15 minutes; a blue/green deployment with its blue termination wait
//! takes longer). Each segment is invoked a few seconds early and starts at an exact time
//! (`start_at_ms`), so the segments join without a gap or an overlap; the reports are merged.
//!
//! A segment is one synchronous invocation with no byte on the wire until it ends. A NAT gateway
//! drops a TCP flow idle for 350 s (../shared/aws-facts.md): segments are at most
//! [`DEFAULT_SEGMENT`] (300 s) by default, the Lambda client's sockets send TCP keepalives
//! ([`lambda_client`]), and Invoke is never retried automatically (a retry would re-run a
//! segment: double load). Its read timeout is just above the segment, exempt from any
//! CLI-wide timeout.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::aws::{AwsError, AwsResultExt};
use crate::load::generator::SegmentRequest;
use crate::load::{merge, LoadReport};

/// Why a segment, or the run, has no report.
#[derive(Debug, thiserror::Error)]
pub enum InVpcError {
    #[error("the segment request cannot be encoded: {0}")]
    Request(#[source] serde_json::Error),
    #[error("{0}")]
    Invoke(#[from] AwsError),
    #[error("{function} failed ({kind}): {message}")]
    Function {
        function: String,
        kind: String,
        message: String,
    },
    #[error("{function} answered no load report: {source}")]
    NoReport {
        function: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("nothing to run: total and segment must be positive")]
    NothingToRun,
    /// A segment without a report is load nobody counted: the run cannot be judged.
    #[error("{}", .0.join("; "))]
    Segments(Vec<String>),
    #[error("no segment ran")]
    NoSegment,
    #[error("cannot build the Lambda client's HTTP client: {0}")]
    HttpClient(String),
}

/// Offsets and lengths of the segments covering `total` (the last one shorter).
pub fn plan_segments(total: Duration, segment: Duration) -> Vec<(Duration, Duration)> {
    let mut out = Vec::new();
    if segment.is_zero() {
        return out;
    }
    let mut offset = Duration::ZERO;
    while offset < total {
        let len = segment.min(total - offset);
        out.push((offset, len));
        offset += len;
    }
    out
}

/// How early a segment is invoked before its start (cold start, VPC network interface).
pub const SEGMENT_LEAD: Duration = Duration::from_secs(5);
/// The default segment: well under the 350 s a NAT gateway keeps an idle flow.
pub const DEFAULT_SEGMENT: Duration = Duration::from_secs(300);
/// TCP keepalive probes on the Lambda client's sockets (idle time before the first probe).
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// What a segment's invocation may take beyond its load: the lead, the function's cold start
/// and report.
pub const SEGMENT_SLACK: Duration = Duration::from_secs(30);

/// How the Lambda client for segments is configured (pure, for the report and the tests).
pub fn segment_client_settings(
    segment: Duration,
) -> (
    aws_config::retry::RetryConfig,
    aws_config::timeout::TimeoutConfig,
) {
    let read = segment + SEGMENT_LEAD + SEGMENT_SLACK;
    (
        aws_config::retry::RetryConfig::disabled(),
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(read)
            .operation_attempt_timeout(read + Duration::from_secs(10))
            .operation_timeout(read + Duration::from_secs(10))
            .build(),
    )
}

/// The Lambda client for segments: TCP keepalive on its sockets (the SDK's own HTTP client,
/// built directly: the SDK config has no keepalive switch, awslabs/aws-sdk-rust issue 1296),
/// no automatic retry, a read timeout just above the segment.
pub fn lambda_client(
    sdk: &aws_config::SdkConfig,
    segment: Duration,
) -> Result<aws_sdk_lambda::Client, InVpcError> {
    use aws_smithy_http_client::pool::{Client as PoolClient, ConnectionPool};
    use aws_smithy_http_client::tls;
    let pool = ConnectionPool::builder()
        .tcp_keepalive(TCP_KEEPALIVE)
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
        .map_err(|e| InVpcError::HttpClient(e.to_string()))?;
    let http = PoolClient::new(&pool).map_err(|e| InVpcError::HttpClient(e.to_string()))?;
    let (retry, timeout) = segment_client_settings(segment);
    let conf = aws_sdk_lambda::config::Builder::from(sdk)
        .http_client(http)
        .retry_config(retry)
        .timeout_config(timeout)
        .build();
    Ok(aws_sdk_lambda::Client::from_conf(conf))
}

/// Invokes one segment and reads its report.
pub async fn invoke_segment(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    req: &SegmentRequest,
) -> Result<LoadReport, InVpcError> {
    let payload = serde_json::to_vec(req).map_err(InVpcError::Request)?;
    let out = lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
        .payload(aws_smithy_types::Blob::new(payload))
        .send()
        .await
        .aws("lambda:Invoke")
        .map_err(|e| e.on(function))?;
    let body = out
        .payload()
        .map(|b| String::from_utf8_lossy(b.as_ref()).to_string())
        .unwrap_or_default();
    if let Some(kind) = out.function_error() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(500).collect());
        return Err(InVpcError::Function {
            function: function.to_string(),
            kind: kind.to_string(),
            message,
        });
    }
    serde_json::from_str(&body).map_err(|source| InVpcError::NoReport {
        function: function.to_string(),
        source,
    })
}

/// How a run is cut into function invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// The whole run (unless stopped earlier).
    pub total: Duration,
    /// One invocation's load (at most the function's timeout minus the reserve).
    pub segment: Duration,
    /// How early each invocation starts before its segment.
    pub lead: Duration,
}

/// What a run through the function produced: the finished segments' merged report (kept when
/// others failed: no counted order is lost) and each segment that failed.
#[derive(Debug)]
pub struct InVpcRun {
    pub report: Option<LoadReport>,
    pub failures: Vec<(usize, InVpcError)>,
}

impl InVpcRun {
    /// The report when every segment ran; a run with a failed segment cannot be judged.
    pub fn into_result(self) -> Result<LoadReport, InVpcError> {
        if self.failures.is_empty() {
            return self.report.ok_or(InVpcError::NoSegment);
        }
        Err(InVpcError::Segments(
            self.failures
                .iter()
                .map(|(k, e)| format!("segment {k}: {e}"))
                .collect(),
        ))
    }
}

/// Runs `base` (its duration ignored) for `segments.total`, or until `stop` is notified (then
/// the running segment finishes and no new one starts), one segment per invocation of
/// `function`.
pub async fn run_via_function(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    base: &SegmentRequest,
    segments: Segments,
    stop: Option<Arc<tokio::sync::Notify>>,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<InVpcRun, InVpcError> {
    let Segments {
        total,
        segment,
        lead,
    } = segments;
    let plan = plan_segments(total, segment);
    if plan.is_empty() {
        return Err(InVpcError::NothingToRun);
    }
    let run_id = base
        .run_id
        .clone()
        .unwrap_or_else(|| Utc::now().format("%Y%m%dT%H%M%S").to_string());
    let t0 = tokio::time::Instant::now() + lead;
    let start_epoch_ms = Utc::now().timestamp_millis() as u64 + lead.as_millis() as u64;
    let mut set = tokio::task::JoinSet::new();
    let mut stopped = false;
    for (k, (offset, len)) in plan.iter().enumerate() {
        let invoke_at = (t0 + *offset).checked_sub(lead).unwrap_or(t0);
        if let Some(s) = &stop {
            tokio::select! {
                _ = s.notified() => { stopped = true; }
                _ = tokio::time::sleep_until(invoke_at) => {}
            }
        } else {
            tokio::time::sleep_until(invoke_at).await;
        }
        if stopped {
            progress(format!("load: stopped; {k} segment(s) started"));
            break;
        }
        let mut req = base.clone();
        req.duration_seconds = len.as_secs_f64();
        req.run_id = Some(format!("{run_id}-s{k:02}"));
        req.start_at_ms = Some(start_epoch_ms + offset.as_millis() as u64);
        progress(format!(
            "load: segment {k} ({} s from +{} s) through {function}",
            len.as_secs_f64(),
            offset.as_secs_f64()
        ));
        let (lambda, function) = (lambda.clone(), function.to_string());
        set.spawn(async move { (k, invoke_segment(&lambda, &function, &req).await) });
    }
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((k, Ok(r))) => reports.push((k, r)),
            Ok((k, Err(e))) => failures.push((k, e)),
            Err(e) => failures.push((usize::MAX, InVpcError::Segments(vec![e.to_string()]))),
        }
    }
    reports.sort_by_key(|(k, _)| *k);
    failures.sort_by_key(|(k, _)| *k);
    let reports: Vec<LoadReport> = reports.into_iter().map(|(_, r)| r).collect();
    Ok(InVpcRun {
        report: merge(&reports),
        failures,
    })
}
