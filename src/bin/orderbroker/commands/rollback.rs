//! `orderbroker rollback`: stop a deployment with automatic rollback and confirm the previous
//! version serves all production traffic.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use orderbroker::deploy::aws::{self, Progress};

use crate::exit;
use crate::shared::{clients, StackArgs, WaitArgs};
use crate::terminal::Terminal;

#[derive(Args)]
pub struct RollbackArgs {
    /// Deployment id (default: the one in progress)
    #[arg(long, value_name = "ID")]
    deployment: Option<String>,
    /// Print the result as JSON on stdout (progress goes to stderr)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    waiting: WaitArgs,
}

impl RollbackArgs {
    /// How long it may follow the rollback (--timeout-minutes).
    pub fn follow_bound(&self) -> std::time::Duration {
        self.waiting.timeout()
    }
}

pub async fn run(args: RollbackArgs) -> Result<ExitCode> {
    let session = args.stack.connect().await?;
    let name = session.stack().to_string();
    let c = clients(&session);
    let mut out = Terminal::new(args.json);
    let stack =
        orderbroker::aws::stack::require_stack(&c.cloudformation, &name, &session.region).await?;
    let r = aws::rollback(
        &c,
        &stack,
        args.deployment.clone(),
        args.waiting.poll(),
        args.waiting.timeout(),
        &mut out,
    )
    .await?;
    out.line(&r.outcome.describe());
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&r)?)?;
    }
    if matches!(r.outcome, orderbroker::deploy::Outcome::TimedOut { .. }) {
        return Ok(exit::from(exit::WAITED));
    }
    if r.holds_all_traffic {
        out.line(&format!(
            "the previous version serves all production traffic: {}",
            r.serving_task_definition.as_deref().unwrap_or("?")
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        out.line(&format!(
            "NOT CONFIRMED: production task set runs {} (previous: {}); check `orderbroker status`",
            r.serving_task_definition.as_deref().unwrap_or("?"),
            r.previous_task_definition.as_deref().unwrap_or("unknown")
        ));
        Ok(ExitCode::from(1))
    }
}
