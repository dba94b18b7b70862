//! `orderbroker preflight`: refuses a stack update that would revert what CodeDeploy changed or
//! that lands in a spike window.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::deploy::schedule_from_parameters;
use orderbroker::preflight::{check, effective_parameters, Inputs, LiveState};

use crate::shared::{clients, parse_set, StackArgs};

#[derive(Args)]
pub struct PreflightArgs {
    /// The template about to be deployed
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Extra KEY=VALUE parameter overrides, as given to `orderbroker samconfig overrides`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Minutes a stack update may take: refused when a spike window starts within them
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(0..=1440))]
    window_margin_minutes: i64,
    /// Update anyway (each refusal is still printed)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: PreflightArgs) -> Result<ExitCode> {
    let new_t = Template::load(&args.template)?;
    let extra = parse_set(&args.set)?;
    let new_overrides: BTreeMap<String, String> =
        SamConfig::load(&args.stack.samconfig, &args.stack.config_env)?
            .deploy_overrides(&extra)?
            .into_iter()
            .collect();
    let (calendar, settings) =
        schedule_from_parameters(&effective_parameters(&new_t, &new_overrides))?;
    let session = args.stack.connect().await?;
    let name = session.stack().to_string();
    let c = clients(&session);
    let deployed = orderbroker::preflight::aws::read_deployed(&c, &name, &mut |n| {
        println!("preflight: note: {n}")
    })
    .await?;
    let old = match &deployed {
        Some(d) => Some((
            Template::parse(&d.template_body).context("the deployed template cannot be read")?,
            &d.parameters,
        )),
        None => None,
    };
    let no_live = LiveState::default();
    let report = check(&Inputs {
        new_template: &new_t,
        new_overrides: &new_overrides,
        deployed: old.as_ref().map(|(t, p)| (t, *p)),
        live: deployed.as_ref().map_or(&no_live, |d| &d.live),
        now: chrono::Utc::now(),
        calendar: &calendar,
        settings: &settings,
        span: chrono::Duration::minutes(args.window_margin_minutes),
    })?;
    for n in &report.notes {
        println!("preflight: note: {n}");
    }
    for r in &report.refusals {
        println!("preflight: REFUSED {}: {}", r.what, r.why);
    }
    if report.passed() {
        println!("preflight: stack {name}: the update is safe to deploy");
        Ok(ExitCode::SUCCESS)
    } else if args.force {
        println!(
            "preflight: --force: deploying despite {} refusal(s)",
            report.refusals.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "preflight: stack {name}: {} refusal(s); fix them or rerun with --force (make deploy PREFLIGHT_FLAGS=--force)",
            report.refusals.len()
        );
        Ok(ExitCode::from(1))
    }
}
