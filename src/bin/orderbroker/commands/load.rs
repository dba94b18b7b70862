//! `orderbroker load`: synthetic trades at a steady rate, every order counted; `--in-vpc`
//! through the stack's load-generator function.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::load::in_vpc::{run_via_function, Segments, SEGMENT_LEAD};
use orderbroker::load::{self, LoadRequest};

use crate::shared::StackArgs;

#[derive(Args)]
pub struct LoadArgs {
    /// Listener to load: http(s)://host[:port] (the production listener: stack output ProductionUrl)
    #[arg(long)]
    url: String,
    /// Orders per second
    #[arg(long)]
    rate: f64,
    /// Seconds
    #[arg(long)]
    duration: f64,
    /// Write the full report (every failure and drop) to this JSON file
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Order path (the template's SyntheticOrderPath)
    #[arg(long, default_value = "/orders")]
    path: String,
    /// Per-order timeout: no answer within it = dropped
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Orders waiting for an answer at most (beyond: counted as not sent, the run fails)
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Run inside the VPC through the stack's load-generator function (output
    /// LoadGeneratorFunctionName), in segments; for an internal ALB
    #[arg(long)]
    in_vpc: bool,
    /// Segment length with --in-vpc: one synchronous invocation each, silent until it ends, so
    /// well under the 350 s a NAT gateway keeps an idle flow (the function's timeout is 900 s)
    #[arg(long, default_value_t = 300)]
    segment_seconds: u64,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: LoadArgs) -> Result<ExitCode> {
    let req = LoadRequest {
        url: args.url.clone(),
        rate: args.rate,
        duration_seconds: args.duration,
        path: args.path.clone(),
        timeout_ms: args.timeout_ms,
        max_in_flight: args.max_in_flight,
        run_id: None,
        start_at_ms: None,
    };
    let cfg = req.config()?;
    let run_id = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let report = if args.in_vpc {
        let session = args.stack.connect().await?;
        let sdk = session.sdk.clone();
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let stack =
            orderbroker::aws::stack::require_stack(&cfn, session.stack(), &session.region).await?;
        let function = stack.output("LoadGeneratorFunctionName")?.to_string();
        let segment = std::time::Duration::from_secs(args.segment_seconds.clamp(10, 840));
        // No automatic retry (a retried Invoke re-runs a segment), TCP keepalive, a read
        // timeout just above the segment.
        let lambda = orderbroker::load::in_vpc::lambda_client(&sdk, segment)?;
        let mut say = |l: String| eprintln!("{l}");
        run_via_function(
            &lambda,
            &function,
            &LoadRequest {
                run_id: Some(run_id.clone()),
                ..req.clone()
            },
            Segments {
                total: cfg.duration,
                segment,
                lead: SEGMENT_LEAD,
            },
            None,
            &mut say,
        )
        .await?
    } else {
        let client = reqwest::Client::builder().build()?;
        load::run(&client, &cfg, &run_id, None).await
    };
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
