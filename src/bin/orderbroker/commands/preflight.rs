//! `orderbroker preflight`: refuses a stack update that would revert what CodeDeploy changed or
//! that lands in a spike window.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::cfn::template::Template;
use orderbroker::deploy::schedule_from_parameters;
use orderbroker::preflight::{check, effective_parameters, Inputs, LiveState};

use crate::shared::{clients, StackArgs};

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
    /// Print the verdict as JSON: {stack, region, passed, forced, refusals, notes}
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: PreflightArgs) -> Result<ExitCode> {
    let new_t = Template::load(&args.template)?;
    let new_overrides = args.stack.deploy_overrides(&args.set)?;
    let (calendar, settings) =
        schedule_from_parameters(&effective_parameters(&new_t, &new_overrides))?;
    let session = args.stack.connect().await?;
    let name = session.stack().to_string();
    let c = clients(&session);
    let mut read_notes = Vec::new();
    let deployed =
        orderbroker::preflight::aws::read_deployed(&c, &name, &mut |n| read_notes.push(n)).await?;
    let old = match &deployed {
        Some(d) => Some((
            Template::parse(&d.template_body).context("the deployed template cannot be read")?,
            &d.parameters,
        )),
        None => None,
    };
    let now = chrono::Utc::now();
    let events = crate::shared::declared_events(&session, &calendar, now).await;
    let no_live = LiveState::default();
    let report = check(&Inputs {
        new_template: &new_t,
        new_overrides: &new_overrides,
        deployed: old.as_ref().map(|(t, p)| (t, *p)),
        live: deployed.as_ref().map_or(&no_live, |d| &d.live),
        now,
        calendar: &calendar,
        settings: &settings,
        span: chrono::Duration::minutes(args.window_margin_minutes),
        events: &events,
    })?;
    let notes: Vec<String> = read_notes.into_iter().chain(report.notes.clone()).collect();
    let code = if report.passed() || args.force {
        ExitCode::SUCCESS
    } else {
        crate::exit::from(crate::exit::REFUSED)
    };
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "stack": name,
                "region": session.region,
                "passed": report.passed(),
                "forced": args.force && !report.passed(),
                "refusals": report.refusals,
                "notes": notes,
            }))?
        )?;
        return Ok(code);
    }
    for n in &notes {
        crate::outln!("preflight: note: {n}")?;
    }
    for r in &report.refusals {
        crate::outln!("preflight: REFUSED {}: {}", r.what, r.why)?;
    }
    if report.passed() {
        crate::outln!(
            "preflight: stack {name} in {}: the update is safe to deploy",
            session.region
        )?;
    } else if args.force {
        crate::outln!(
            "preflight: --force: deploying despite {} refusal(s)",
            report.refusals.len()
        )?;
    } else {
        crate::outln!(
            "preflight: stack {name} in {}: {} refusal(s); fix them or rerun with --force (make deploy PREFLIGHT_FLAGS=--force)",
            session.region,
            report.refusals.len()
        )?;
    }
    Ok(code)
}
