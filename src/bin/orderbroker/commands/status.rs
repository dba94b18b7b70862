//! `orderbroker status`: the deployment in progress, the task sets, the scaling bounds and the
//! warm-up plan.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use orderbroker::deploy::status::render_status;
use orderbroker::warmup::Settings;

use crate::shared::{clients, StackArgs};

#[derive(Args)]
pub struct StatusArgs {
    /// Print as JSON
    #[arg(long)]
    json: bool,
    /// Exit 1 when the service is degraded (fewer tasks running than desired or than
    /// MinCapacity); without it, exit 0 whenever the status was reported
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: StatusArgs) -> Result<ExitCode> {
    let session = args.stack.connect().await?;
    let name = session.stack().to_string();
    let c = clients(&session);
    let now = chrono::Utc::now();
    let stack =
        orderbroker::aws::stack::require_stack(&c.cloudformation, &name, &session.region).await?;
    let v = orderbroker::deploy::aws::status(&c, &stack, now, &Settings::default().action_prefix)
        .await?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        crate::out!("{}", render_status(&v, now))?;
        for d in &v.degraded {
            crate::outln!("DEGRADED: {d}")?;
        }
    }
    Ok(if args.check && !v.degraded.is_empty() {
        crate::exit::from(crate::exit::REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}
