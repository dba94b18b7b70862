//! `orderbroker load`: synthetic trades at a steady rate, every order counted; `--in-vpc`
//! through the stack's load-generator function.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::load::generator::{Listener, SegmentRequest};
use orderbroker::load::in_vpc::{run_via_function, Segments, SEGMENT_LEAD};
use orderbroker::load::{self, LoadRequest};

use crate::shared::StackArgs;

#[derive(Args)]
pub struct LoadArgs {
    /// Listener to load: http(s)://host[:port] (the production listener: stack output
    /// ProductionUrl). Not with --in-vpc: the load-generator function loads only the stack's own
    /// listeners (--listener)
    #[arg(long, required_unless_present = "in_vpc", conflicts_with = "in_vpc")]
    url: Option<String>,
    /// With --in-vpc: which of the stack's listeners the function loads
    #[arg(long, value_enum, default_value_t = ListenerArg::Production)]
    listener: ListenerArg,
    /// Orders per second
    #[arg(long)]
    rate: f64,
    /// Seconds
    #[arg(long)]
    duration: f64,
    /// Write the full report (every failure and drop) to this JSON file; checked writable
    /// before the first order, written on Ctrl-C too
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print the full report as JSON on stdout (the summary and progress go to stderr)
    #[arg(long)]
    json: bool,
    /// Order path (the template's SyntheticOrderPath; with --in-vpc the function uses the stack's)
    #[arg(long, default_value = "/orders", conflicts_with = "in_vpc")]
    path: String,
    /// Per-order timeout: no answer within it = dropped
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Orders waiting for an answer at most (beyond: counted as not sent, the run fails)
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Run inside the VPC through the stack's load-generator function (output
    /// LoadGeneratorFunctionName; it exists only when the stack was deployed with
    /// LiveTestsEnabled=true), in segments, within its rate and order caps
    #[arg(long)]
    in_vpc: bool,
    /// Segment length with --in-vpc, 10-840 s: one synchronous invocation each, silent until it
    /// ends, so well under the 350 s a NAT gateway keeps an idle flow (the function's timeout is
    /// 900 s). A running segment cannot be cancelled: Ctrl-C stops within this bound
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=840))]
    segment_seconds: u64,
    #[command(flatten)]
    stack: StackArgs,
}

/// The stack's listeners the load-generator function may load.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ListenerArg {
    Production,
    Test,
}

pub async fn run(args: LoadArgs) -> Result<ExitCode> {
    // With --in-vpc the URL is the stack's; a stand-in checks the numbers here.
    let url = args.url.clone().unwrap_or_else(|| "http://in-vpc".into());
    let req = LoadRequest {
        url: url.clone(),
        rate: args.rate,
        duration_seconds: args.duration,
        path: args.path.clone(),
        timeout_ms: args.timeout_ms,
        max_in_flight: args.max_in_flight,
        run_id: None,
        start_at_ms: None,
    };
    let cfg = req.config()?;
    // The target and the report file are checked before the first order: a typo is an input
    // error, not a run of "dropped trades", and no run is lost to an unwritable path.
    if !args.in_vpc {
        check_target(&url, true).await?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, "{}")
            .with_context(|| format!("--report {}: cannot write", path.display()))?;
    }
    let run_id = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let stop = Arc::new(tokio::sync::Notify::new());
    let interrupted = watch_ctrl_c(stop.clone(), args.in_vpc, args.segment_seconds);
    // Segments that failed (--in-vpc): the finished ones' report is still written and shown.
    let mut failed_segments: Vec<(usize, orderbroker::load::in_vpc::InVpcError)> = Vec::new();
    let report = if args.in_vpc {
        let session = args.stack.connect().await?;
        let sdk = session.sdk.clone();
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let stack =
            orderbroker::aws::stack::require_stack(&cfn, session.stack(), &session.region).await?;
        let function = stack
            .output("LoadGeneratorFunctionName")
            .map_err(|_| {
                anyhow::anyhow!(
                    "stack {} has no load-generator function: it exists only with LiveTestsEnabled=true (make deploy LIVE_TESTS=true)",
                    session.stack()
                )
            })?
            .to_string();
        // A run shorter than one segment is one segment of its own length: the read timeout
        // follows the segment actually sent, not --segment-seconds.
        let segment = std::time::Duration::from_secs(args.segment_seconds).min(cfg.duration);
        // No automatic retry (a retried Invoke re-runs a segment), TCP keepalive, a read
        // timeout just above the segment.
        let lambda = orderbroker::load::in_vpc::lambda_client(&sdk, segment)?;
        let mut say = |l: String| eprintln!("{l}");
        let run = run_via_function(
            &lambda,
            &function,
            &SegmentRequest {
                listener: match args.listener {
                    ListenerArg::Production => Listener::Production,
                    ListenerArg::Test => Listener::Test,
                },
                rate: args.rate,
                duration_seconds: args.duration,
                timeout_ms: Some(args.timeout_ms),
                max_in_flight: Some(args.max_in_flight),
                run_id: Some(run_id.clone()),
                start_at_ms: None,
            },
            Segments {
                total: cfg.duration,
                segment,
                lead: SEGMENT_LEAD,
            },
            Some(stop),
            &mut say,
        )
        .await?;
        failed_segments = run.failures;
        match run.report {
            Some(r) => r,
            // Nothing finished: the failures are the whole answer.
            None => return Err(segments_error(failed_segments)),
        }
    } else {
        let client = reqwest::Client::builder().build()?;
        let counters = Arc::new(load::Counters::default());
        let ticker = progress(
            counters.clone(),
            load::scheduled_orders(cfg.rate, cfg.duration),
        );
        let report = load::run_counted(&client, &cfg, &run_id, Some(stop), &counters).await;
        ticker.abort();
        report
    };
    let summary = report.summary();
    if args.json {
        eprint!("{summary}");
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::out!("{summary}")?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("load: report written to {}", path.display());
    }
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("load: interrupted (Ctrl-C): the report covers the orders sent until then");
        return Ok(ExitCode::from(crate::exit::INTERRUPTED));
    }
    if !failed_segments.is_empty() {
        // The finished segments are reported above; a failed one leaves orders uncounted.
        return Err(segments_error(failed_segments));
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        crate::exit::from(crate::exit::REFUSED)
    })
}

/// The failed segments as one error; an AWS error among them keeps its type (exit 3).
fn segments_error(failures: Vec<(usize, orderbroker::load::in_vpc::InVpcError)>) -> anyhow::Error {
    let text = failures
        .iter()
        .map(|(k, e)| format!("segment {k}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    match failures
        .into_iter()
        .find(|(_, e)| matches!(e, orderbroker::load::in_vpc::InVpcError::Invoke(_)))
    {
        Some((_, aws)) => anyhow::Error::new(aws).context(text),
        None => anyhow::anyhow!(text),
    }
}

/// The URL parses (scheme, host, a port within 1-65535) and, when sending from here, its host
/// resolves.
async fn check_target(url: &str, resolve: bool) -> Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
    let host = parsed
        .host_str()
        .with_context(|| format!("--url {url:?} has no host"))?;
    let port = parsed
        .port_or_known_default()
        .with_context(|| format!("--url {url:?} has no port"))?;
    if resolve {
        let found = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .with_context(|| format!("--url {url:?}: resolving {host} took more than 10 s"))?
        .with_context(|| format!("--url {url:?}: cannot resolve {host}"))?;
        anyhow::ensure!(
            found.count() > 0,
            "--url {url:?}: {host} resolves to no address"
        );
    }
    Ok(())
}

/// A progress line on stderr every 5 s (rewritten in place, with a bar, on a terminal).
fn progress(counters: Arc<load::Counters>, scheduled: usize) -> tokio::task::JoinHandle<()> {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let sent = counters.sent.load(Ordering::Relaxed);
            let line = format!("load: {} of {scheduled} scheduled", counters.line());
            if tty {
                let width = 30;
                let done = (sent * width)
                    .checked_div(scheduled)
                    .unwrap_or(width)
                    .min(width);
                eprint!(
                    "\r\x1b[K[{}{}] {line}",
                    "#".repeat(done),
                    ".".repeat(width - done)
                );
            } else {
                eprintln!("{line}");
            }
        }
    })
}

static CTRL_C: AtomicBool = AtomicBool::new(false);

extern "C" fn on_ctrl_c(_: libc::c_int) {
    CTRL_C.store(true, Ordering::SeqCst);
}

/// The first Ctrl-C stops the run (the report is still written); a second one ends the process
/// at once. Returns whether it was pressed.
fn watch_ctrl_c(stop: Arc<tokio::sync::Notify>, in_vpc: bool, segment: u64) -> Arc<AtomicBool> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_ctrl_c as *const () as libc::sighandler_t);
    }
    let pressed = Arc::new(AtomicBool::new(false));
    let flag = pressed.clone();
    // Detached: it ends at the first Ctrl-C, or with the process.
    drop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if CTRL_C.load(Ordering::SeqCst) {
                flag.store(true, Ordering::SeqCst);
                // SAFETY: restores the default disposition: the next Ctrl-C ends the process.
                unsafe {
                    libc::signal(libc::SIGINT, libc::SIG_DFL);
                }
                if in_vpc {
                    let until = chrono::Utc::now() + chrono::Duration::seconds(segment as i64);
                    eprintln!(
                        "\nload: Ctrl-C: no new segment starts; a running segment cannot be cancelled and keeps sending until {} at the latest ({segment} s); the report follows when it ends (Ctrl-C again: quit now, no report)",
                        until.format("%H:%M:%SZ")
                    );
                } else {
                    eprintln!("\nload: Ctrl-C: stopping; answers in flight are awaited, then the report (Ctrl-C again: quit now, no report)");
                }
                stop.notify_one();
                return;
            }
        }
    }));
    pressed
}
