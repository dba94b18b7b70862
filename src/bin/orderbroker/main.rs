//! `orderbroker`: the OrderBroker platform command line. One file per command under
//! `commands/`; the arguments every AWS command shares are in `shared.rs`, the progress
//! display in `terminal.rs`. All decisions are in the `orderbroker` library.

mod commands;
mod exit;
mod out;
mod shared;
mod terminal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::*;

#[derive(Parser)]
#[command(
    name = "orderbroker",
    version,
    about = "OrderBroker platform tools: trading calendar, warm-up plan, deploy parameters, tagging policy",
    long_about = "OrderBroker platform tools.\n\nRun from the repository root (paths default to ./template.yaml and ./samconfig.toml)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// On an error, print every cause and the AWS SDK's full error context
    #[arg(long, global = true)]
    debug: bool,
    /// Seconds one AWS call may take, retries included (1-300; each attempt at most 10 s,
    /// each connect at most 3 s)
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = shared::OPERATION_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    aws_timeout: u64,
    /// Seconds the AWS work of a command may take as a whole (10-900): `status`, `preflight`,
    /// `appspec`, `warm-pool recommend`; `deploy` and `rollback` get this plus their
    /// --timeout-minutes of following; `readiness` takes its own --deadline, `load` its
    /// --duration. While it runs, a line on stderr every 10 s says it is still working (exit 4
    /// when it runs out)
    #[arg(long = "command-deadline", global = true, value_name = "SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(10..=900))]
    command_deadline: u64,
}

/// The arguments, with negative numbers read as numbers in every command (so `--baseline -1`
/// says the flag's range instead of "unexpected argument").
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    fn negatives(c: clap::Command) -> clap::Command {
        let names: Vec<String> = c
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        let mut c = c.allow_negative_numbers(true);
        for n in names {
            c = c.mut_subcommand(n, negatives);
        }
        c
    }
    let matches = negatives(Cli::command()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// How long the command may take as a whole: `--command-deadline` for the commands that make
/// several AWS calls, plus `--timeout-minutes` for those that follow a deployment; `None` for
/// the offline ones, `readiness` (its own --deadline) and `load` (its --duration).
fn bound(c: &Command, deadline: std::time::Duration) -> Option<std::time::Duration> {
    match c {
        Command::Status(_) | Command::Preflight(_) | Command::Appspec(_) | Command::WarmPool(_) => {
            Some(deadline)
        }
        Command::UpdatePlan(a) if a.reads_stack() => Some(deadline),
        Command::Deploy(a) => Some(deadline + a.follow_bound()),
        Command::Carry(a) => Some(deadline + a.follow_bound()),
        Command::Rollback(a) => Some(deadline + a.follow_bound()),
        _ => None,
    }
}

/// Runs `f`, at most `deadline`, saying every 10 s that it still waits.
async fn within<F>(deadline: std::time::Duration, f: F) -> anyhow::Result<ExitCode>
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let started = std::time::Instant::now();
    let mut f = std::pin::pin!(tokio::time::timeout(deadline, f));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            done = &mut f => {
                return done.unwrap_or_else(|_| {
                    Err(anyhow::Error::new(shared::DeadlineError(deadline.as_secs())))
                });
            }
            _ = tick.tick() => eprintln!(
                "orderbroker: still working, waiting for AWS ({} s of at most {} s: --command-deadline, plus --timeout-minutes when following)",
                started.elapsed().as_secs(),
                deadline.as_secs()
            ),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print the NYSE sessions in a date range, one `YYYY-MM-DD,HH:MM,HH:MM` line each
    /// (date, open, close; New York local time), oldest first
    Calendar(calendar::CalendarArgs),
    /// Print the market warm-up plan for one day, offline: windows, floors and their sources
    Plan(plan::PlanArgs),
    /// Print the ECS AppSpec (YAML) for a CodeDeploy deployment of a task-definition revision:
    /// service, container and port, the capacity-provider strategy (always) and the deployment
    /// gates, from the stack outputs
    Appspec(appspec::AppspecArgs),
    /// Roll out a new image through CodeDeploy blue/green: pre-flight (image platform, no
    /// deployment in progress, spike windows, Fargate vCPU quota), register the derived
    /// task-definition revision, create the deployment, and with --wait follow it (and its
    /// rollback) to the end. Exit 0 = succeeded (or created, without --wait); 1 = refused,
    /// failed or rolled back; 2 = bad input; 3 = AWS error; 4 = gave up waiting (docs/cli.md)
    Deploy(deploy::DeployArgs),
    /// After a stack update: roll out what it could not change on the running service (the
    /// template's task definition, network configuration, platform version, strategy) with the
    /// image digest the PRIMARY task set runs, like any deployment (gates, alarms, watchdog,
    /// spike windows); nothing to carry creates no deployment. Exit 0 carried or nothing to do,
    /// 1 refused, failed or rolled back, 2 bad input, 3 AWS error, 4 gave up waiting
    Carry(carry::CarryArgs),
    /// Stop the named (or the in-progress) deployment with automatic rollback and wait until the
    /// previous version serves all production traffic
    Rollback(rollback::RollbackArgs),
    /// The deployment in progress, the task sets, running/desired/min/max and the warm-up plan
    Status(status::StatusArgs),
    /// Refuse a stack update (`sam deploy`) that would revert what CodeDeploy changed (listener
    /// default actions, the service's task definition, target groups) or lands in a spike window
    Preflight(preflight::PreflightArgs),
    /// Check the account, region and VPC before a first deploy (ECS service-linked role, Lambda
    /// concurrency, VPC DNS, subnets and their egress, endpoint conflicts, Fargate quota, image,
    /// stack name): PASS/FAIL with what was read and the fix. Exit 0 all passed, 1 a check
    /// failed, 2 bad input, 3 AWS not reachable or no credentials
    Readiness(readiness::ReadinessArgs),
    /// Synthetic trades at a steady rate (the validator's harmless orders, unique idempotency
    /// keys); prints sent / succeeded / failed / dropped, latency and every failure. Exit 1 if
    /// any order failed or was dropped
    Load(load::LoadArgs),
    /// The warm pool (standby tasks)
    #[command(subcommand)]
    WarmPool(warm_pool::WarmPoolCommand),
    /// Read samconfig.toml: the full `sam deploy` parameter list, the stack tags, the stack name
    #[command(subcommand)]
    Samconfig(samconfig::SamconfigCommand),
    /// The tagging policy (CostCenter, Project=TradingPlatform, Service=OrderBroker)
    #[command(subcommand)]
    Tags(tags::TagsCommand),
    /// The deployment group's alarms as CloudFormation receives them (template.yaml with the
    /// parameters `make deploy` passes), offline; --detection evaluates how fast each catches a
    /// bad version (exit 1 if one never fires)
    Alarms(alarms::AlarmsArgs),
    /// Which network paths the template's security groups open (gates and load generator to the
    /// listeners, ALB to the tasks) and every source admitted to the listeners and the tasks,
    /// for the ALB scheme and parameters given; offline (exit 1 on a closed path or an
    /// unexpected source)
    Network(network::NetworkArgs),
    /// Every change between the deployed and the proposed template, each with the path that
    /// carries it on a running platform: frozen, rollout, replacement or stack-update, with its
    /// source and cause (exit 1 when anything is frozen or a flagged replacement)
    UpdatePlan(update_plan::UpdatePlanArgs),
    /// Rehearse a blue/green deployment offline: a discrete-event model of CodeDeploy, ECS, the
    /// ALB and EventBridge with the gates', the watchdog's and the alarms' own decisions inside,
    /// for a built-in scenario or a scenario file; --all runs every built-in one (exit 1 if one
    /// misses its bound)
    Rehearse(rehearse::RehearseArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    restore_sigpipe();
    if !out::stdout_is_open() {
        eprintln!("orderbroker: standard output is closed: nothing could be printed");
        return exit::from(exit::INPUT);
    }
    let cli = parse_cli();
    shared::set_operation_timeout(cli.aws_timeout);
    let debug = cli.debug;
    let deadline = bound(
        &cli.command,
        std::time::Duration::from_secs(cli.command_deadline),
    );
    let run = run(cli.command);
    let result = match deadline {
        Some(d) => within(d, run).await,
        None => run.await,
    };
    let result = result.and_then(|code| {
        out::flush()?;
        Ok(code)
    });
    result.unwrap_or_else(|e| {
        if debug {
            eprintln!("orderbroker: {}", exit::debug(&e));
        } else {
            eprintln!("orderbroker: {}", exit::one_line(&e));
        }
        exit::from(exit::code(&e))
    })
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Calendar(a) => calendar::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Appspec(a) => appspec::run(a).await,
        Command::Deploy(a) => deploy::run(a).await,
        Command::Carry(a) => carry::run(a).await,
        Command::Rollback(a) => rollback::run(a).await,
        Command::Status(a) => status::run(a).await,
        Command::Preflight(a) => preflight::run(a).await,
        Command::Readiness(a) => readiness::run(a).await,
        Command::Load(a) => load::run(a).await,
        Command::WarmPool(c) => warm_pool::run(c).await,
        Command::Samconfig(c) => samconfig::run(c),
        Command::Tags(c) => tags::run(c),
        Command::Alarms(a) => alarms::run(a),
        Command::Network(a) => network::run(a),
        Command::UpdatePlan(a) => update_plan::run(a).await,
        Command::Rehearse(a) => rehearse::run(a),
    }
}

/// A closed pipe ends the process quietly, as it does for other Unix tools (`orderbroker calendar
/// ... | head -1`): Rust ignores SIGPIPE, so `println!` would panic on EPIPE instead.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread or I/O; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
