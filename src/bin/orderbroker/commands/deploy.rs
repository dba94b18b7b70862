//! `orderbroker deploy`: pre-flight, register the derived revision, create the deployment and
//! with --wait follow it (and its rollback) to the end.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use orderbroker::deploy::aws::{self, DeployRequest, Progress};

use crate::exit;
use crate::shared::{clients, StackArgs, WaitArgs};
use crate::terminal::Terminal;

#[derive(Args)]
pub struct DeployArgs {
    /// Image to deploy: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:...
    #[arg(long, value_name = "URI")]
    image: String,
    /// CPU architecture of the new revision (default: the stack's CpuArchitecture output); the
    /// image must have a linux platform for it
    #[arg(long, value_parser = ["ARM64", "X86_64"])]
    arch: Option<String>,
    /// CodeDeploy deployment configuration (default: the deployment group's, canary 10 % / 3 min)
    #[arg(long, value_name = "NAME")]
    config: Option<String>,
    /// Follow the deployment (and its rollback) until it ends
    #[arg(long)]
    wait: bool,
    /// Deploy inside a spike window, or past a failed or unreadable quota check
    #[arg(long)]
    force: bool,
    /// Hotfix while a deployment-group alarm fires: the firing alarms are ignored for this
    /// deployment, the quiet ones stay armed (needs codedeploy:UpdateDeploymentGroup)
    #[arg(long)]
    override_alarms: bool,
    /// Minutes a deployment needs to move traffic: refused when a spike window starts within them
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(0..=1440))]
    window_margin_minutes: i64,
    /// Print the result as JSON on stdout (progress goes to stderr)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    waiting: WaitArgs,
}

impl DeployArgs {
    /// How long it may follow the deployment: --timeout-minutes with --wait, else nothing.
    pub fn follow_bound(&self) -> std::time::Duration {
        if self.wait {
            self.waiting.timeout()
        } else {
            std::time::Duration::ZERO
        }
    }
}

pub async fn run(args: DeployArgs) -> Result<ExitCode> {
    // Local input first: a bad image, or one in another region than the stack's, is said
    // before any AWS call.
    let img = orderbroker::deploy::parse_image(&args.image)?;
    let (name, place) = args.stack.place().await?;
    orderbroker::deploy::check_region(&img, &args.image, &place.region)?;
    let session = crate::shared::Session::open(place, Some(name)).await?;
    let c = clients(&session);
    let mut out = Terminal::new(args.json);
    let (stack, base) = crate::shared::deploy_request(&session, &c, args.image.clone()).await?;
    let req = DeployRequest {
        arch: args.arch.clone(),
        config: args.config.clone(),
        wait: args.wait,
        force: args.force,
        override_alarms: args.override_alarms,
        margin: chrono::Duration::minutes(args.window_margin_minutes),
        poll: args.waiting.poll(),
        timeout: args.waiting.timeout(),
        ..base
    };
    let result = aws::deploy(&c, &stack, &req, &mut out).await?;
    if let Some(o) = &result.outcome {
        out.line(&o.describe());
    }
    drop(out);
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&result)?)?;
    }
    Ok(match &result.outcome {
        Some(orderbroker::deploy::Outcome::TimedOut { .. }) => exit::from(exit::WAITED),
        Some(o) if !o.succeeded() => exit::from(exit::REFUSED),
        _ => ExitCode::SUCCESS,
    })
}
