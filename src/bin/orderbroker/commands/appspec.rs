//! `orderbroker appspec`: the deployment AppSpec from the stack outputs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::shared::StackArgs;

#[derive(Args)]
pub struct AppspecArgs {
    /// Task-definition revision to deploy
    #[arg(long, value_name = "ARN")]
    task_definition: String,
    /// Its CPU architecture (default: the stack's CpuArchitecture output); ARM64 is refused
    /// with a FARGATE_SPOT share
    #[arg(long, value_parser = ["ARM64", "X86_64"])]
    arch: Option<String>,
    /// Stack outputs as JSON (`aws cloudformation describe-stacks` output, or a {key: value}
    /// map); without it, the outputs of the deployed stack
    #[arg(long, value_name = "FILE")]
    outputs: Option<PathBuf>,
    /// Print the AppSpec as JSON (CodeDeploy takes either form)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: AppspecArgs) -> Result<ExitCode> {
    use orderbroker::deploy::appspec::{parse_outputs, render};
    if let (Some(path), Some(_)) = (&args.outputs, &args.stack.stack) {
        eprintln!(
            "orderbroker: --stack/ORDERBROKER_STACK ignored: --outputs {} gives the outputs",
            path.display()
        );
    }
    let outputs = match &args.outputs {
        Some(path) => parse_outputs(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )?,
        None => {
            let session = args.stack.connect().await?;
            let cfn = aws_sdk_cloudformation::Client::new(&session.sdk);
            orderbroker::aws::stack::require_stack(&cfn, session.stack(), &session.region)
                .await?
                .outputs
        }
    };
    let arch = match &args.arch {
        Some(a) => a.clone(),
        None => outputs
            .get("CpuArchitecture")
            .cloned()
            .context("give --arch: the stack has no CpuArchitecture output")?,
    };
    let yaml = render(&outputs, &args.task_definition, &arch)?;
    if args.json {
        let v: serde_json::Value = serde_norway::from_str(&yaml)?;
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        crate::out!("{yaml}")?;
    }
    Ok(ExitCode::SUCCESS)
}
