//! `orderbroker warm-pool recommend`: the standby-task model on a file of inputs or measured
//! from the account.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use orderbroker::warm_pool::aws::{measure, parse_settings, ServiceConfig};
use orderbroker::warm_pool::{self, ModelInputs};

use crate::shared::{resolve, RegionArgs, Session};

#[derive(Subcommand)]
pub enum WarmPoolCommand {
    /// Run the standby-task model and print N with its reasoning: on a file of inputs
    /// (`--input`, the JSON `--json` prints back as `inputs`), or measured from the account
    Recommend(RecommendArgs),
}

#[derive(Args)]
pub struct RecommendArgs {
    /// Model inputs as JSON (task_starts, healthy_threshold, health_interval_seconds, load,
    /// per_task_capacity, settings); see events/warm-pool-model-input.json
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cluster", "service"])]
    input: Option<PathBuf>,
    /// ECS cluster (outputs ClusterName), to measure from the account
    #[arg(long, requires = "service")]
    cluster: Option<String>,
    /// ECS service (outputs ServiceName)
    #[arg(long, requires = "cluster")]
    service: Option<String>,
    #[command(flatten)]
    target: RegionArgs,
    /// Scaling target CPU % (the template's CpuTargetValue): one task's capacity (measuring
    /// only: a file given with --input carries its own)
    #[arg(long, default_value_t = 60.0, conflicts_with = "input")]
    cpu_target: f64,
    /// Target-group healthy threshold (2-10) and interval (5-300 s); the template uses 2 x 5 s
    #[arg(long, default_value_t = 2, conflicts_with = "input",
          value_parser = clap::value_parser!(u32).range(2..=10))]
    healthy_threshold: u32,
    #[arg(long, default_value_t = 5, conflicts_with = "input",
          value_parser = clap::value_parser!(u32).range(5..=300))]
    health_interval: u32,
    /// Declared RUNNING -> healthy seconds (the template's TaskRunningToHealthySeconds): part
    /// of the replacement time R
    #[arg(long, default_value_t = 60.0, conflicts_with = "input")]
    running_to_healthy: f64,
    /// Settings as JSON (min, max, safety_factor, ...), as in the SSM parameter (measuring only:
    /// a file given with --input carries its own)
    #[arg(long, default_value = "{}", conflicts_with = "input")]
    settings: String,
    /// Print the recommendation and its inputs as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: WarmPoolCommand) -> Result<ExitCode> {
    match cmd {
        WarmPoolCommand::Recommend(args) => recommend(args).await,
    }
}

async fn recommend(args: RecommendArgs) -> Result<ExitCode> {
    let inputs: ModelInputs = match (&args.input, &args.cluster, &args.service) {
        (Some(path), _, _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let inputs: ModelInputs = serde_json::from_str(&text)
                .with_context(|| format!("{} is not warm-pool model input", path.display()))?;
            inputs
                .validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            inputs
        }
        (None, Some(cluster), Some(service)) => {
            let settings = parse_settings("--settings", &args.settings)?;
            for (name, v, range) in [
                ("--cpu-target", args.cpu_target, 1.0..=100.0),
                ("--running-to-healthy", args.running_to_healthy, 0.0..=900.0),
            ] {
                if !(v.is_finite() && range.contains(&v)) {
                    anyhow::bail!("{name} {v} is not within {}-{}", range.start(), range.end());
                }
            }
            let cfg = ServiceConfig {
                cluster: cluster.clone(),
                service: service.clone(),
                per_task_capacity: args.cpu_target,
                healthy_threshold: args.healthy_threshold,
                health_interval_seconds: args.health_interval,
                history_days: 10,
                running_to_healthy_seconds: args.running_to_healthy,
            };
            let place = resolve(&args.target, None, std::path::Path::new("")).await?;
            let sdk = Session::open(place, None).await?.sdk;
            measure(
                &aws_sdk_ecs::Client::new(&sdk),
                &aws_sdk_cloudwatch::Client::new(&sdk),
                &cfg,
                settings,
                chrono::Utc::now(),
            )
            .await
            .context("measuring from the account (credentials from the standard chain)")?
        }
        _ => anyhow::bail!(
            "give --input FILE, or --cluster and --service to measure from the account"
        ),
    };
    let r = warm_pool::recommend(&inputs);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"recommendation": r, "inputs": inputs})
            )?
        )?;
    } else {
        crate::outln!("standby tasks N = {}", r.n)?;
        for line in &r.reasoning {
            crate::outln!("  {line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
