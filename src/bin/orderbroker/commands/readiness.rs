//! `orderbroker readiness`: the account readiness check `make deploy` runs before the build.
//! Read-only unless `--create-service-linked-role`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::cfn::template::Template;
use orderbroker::preflight::effective_parameters;
use orderbroker::readiness::aws::{run as check, Options, ReadinessClients};
use orderbroker::readiness::{render, Needs};

use crate::shared::{Session, StackArgs};

#[derive(Args)]
pub struct ReadinessArgs {
    /// The template about to be deployed
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Extra KEY=VALUE parameter overrides, as given to `orderbroker samconfig overrides`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Create the ECS service-linked role when it is missing, wait until IAM returns it, then
    /// --settle-seconds (`make deploy` passes this; without it the check only reads)
    #[arg(long)]
    create_service_linked_role: bool,
    /// Seconds to wait after IAM returns a role this run created (IAM is eventually consistent)
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(0..=300))]
    settle_seconds: u64,
    /// The most the checks may take together, 10-900 s (each AWS call is bounded on its own by
    /// --aws-timeout; the checks run at once); a check still waiting then is UNREAD (exit 3)
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(10..=900))]
    deadline: u64,
    /// Override a refusal by the check's name (repeatable): it is still run and printed,
    /// marked skipped, and no longer fails the run
    #[arg(long = "skip", value_name = "CHECK", value_parser = clap::builder::PossibleValuesParser::new(orderbroker::readiness::CHECK_NAMES))]
    skip: Vec<String>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

/// Exit codes: 0 every check passed, 1 a check failed, 2 bad input (template, samconfig, a
/// parameter), 3 AWS could not be asked (no credentials, unreachable).
pub async fn run(args: ReadinessArgs) -> Result<ExitCode> {
    let template = Template::load(&args.template)?;
    let params = effective_parameters(&template, &args.stack.deploy_overrides(&args.set)?);
    let (name, place) = args.stack.place().await?;
    let needs =
        Needs::from_template(&template, &params, &name, &place.region).with_context(|| {
            format!(
                "{}: the parameters cannot be checked",
                args.samconfig_name()
            )
        })?;
    let session = Session::open(place, Some(name)).await?;
    let c = ReadinessClients::new(&session.sdk);
    let opts = Options {
        create_service_linked_role: args.create_service_linked_role,
        settle: Duration::from_secs(args.settle_seconds),
        deadline: Duration::from_secs(args.deadline),
        ..Options::default()
    };
    // Each check is said on stderr as it ends, and what is still read every 10 s.
    let say = |line: &str| eprintln!("readiness: {line}");
    // A stack that cannot be read is an AWS error: exit 3 by the one table (exit.rs).
    let mut report = check(&c, &needs, opts, &session.account, &say).await?;
    report.skip(&args.skip).map_err(anyhow::Error::msg)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        crate::out!("{}", render(&report))?;
    }
    // A failed check is a refusal (1); otherwise a fact that could not be read is AWS not
    // answering (3).
    Ok(if report.failures() > 0 {
        ExitCode::from(crate::exit::REFUSED)
    } else if report.unread() > 0 {
        ExitCode::from(crate::exit::AWS)
    } else {
        ExitCode::SUCCESS
    })
}

impl ReadinessArgs {
    fn samconfig_name(&self) -> String {
        self.stack.samconfig.display().to_string()
    }
}
