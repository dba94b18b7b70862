//! `orderbroker carry`: after a stack update, roll out what it could not change on the running
//! service (the template's task definition, network configuration, platform version,
//! capacity-provider strategy) with the image digest the PRIMARY task set runs, through the same
//! pre-flight, gates, alarms and watchdog as any deployment. Nothing to carry: no deployment.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use orderbroker::deploy::aws::{self, DeployRequest, Progress};

use crate::exit;
use crate::shared::{clients, StackArgs, WaitArgs};
use crate::terminal::Terminal;

#[derive(Args)]
pub struct CarryArgs {
    /// CodeDeploy deployment configuration (default: the deployment group's, canary 10 % / 3 min)
    #[arg(long, value_name = "NAME")]
    config: Option<String>,
    /// Carry inside a spike window, or past a failed or unreadable quota check
    #[arg(long)]
    force: bool,
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

impl CarryArgs {
    /// It always follows the deployment it creates.
    pub fn follow_bound(&self) -> std::time::Duration {
        self.waiting.timeout()
    }
}

pub async fn run(args: CarryArgs) -> Result<ExitCode> {
    let session = args.stack.connect().await?;
    let name = session.stack().to_string();
    let c = clients(&session);
    let mut out = Terminal::new(args.json);
    let (stack, base) = crate::shared::deploy_request(&session, &c, String::new()).await?;
    let req = DeployRequest {
        config: args.config.clone(),
        wait: true,
        force: args.force,
        margin: chrono::Duration::minutes(args.window_margin_minutes),
        poll: args.waiting.poll(),
        timeout: args.waiting.timeout(),
        ..base
    };
    let carried = aws::carry(&c, &stack, &req, &mut out).await?;
    let outcome = carried.deployed.as_ref().and_then(|d| d.outcome.clone());
    match &outcome {
        Some(o) => out.line(&o.describe()),
        None => out.line(&format!("carry: stack {name}: nothing to roll out")),
    }
    if outcome.as_ref().is_some_and(|o| !o.succeeded()) {
        out.line(&format!(
            "carry: the stack update of {name} stays; the service still runs the previous settings with {}. Run `orderbroker carry` (or make deploy) again to retry only this rollout",
            carried.image
        ));
    }
    drop(out);
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&carried)?)?;
    }
    Ok(match &outcome {
        Some(orderbroker::deploy::Outcome::TimedOut { .. }) => exit::from(exit::WAITED),
        Some(o) if !o.succeeded() => exit::from(exit::REFUSED),
        _ => ExitCode::SUCCESS,
    })
}
