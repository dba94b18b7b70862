//! `orderbroker preflight`: the update plan of `make deploy`'s stack update, every change with
//! its path, and a refusal for what a running platform cannot take that way (docs/stack-updates.md).
//! With --write-overrides it writes the parameter list it judged (samconfig's, the derived
//! values, --set and the Pinned* values) for `sam deploy --parameter-overrides`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::cfn::resolve::Parameters;
use orderbroker::cfn::samconfig::{render_pairs, SamConfig};
use orderbroker::cfn::template::Template;
use orderbroker::deploy::schedule_from_parameters;
use orderbroker::preflight::{check, effective_parameters, Inputs, LiveState};
use orderbroker::timing::deploy_parameters;
use orderbroker::update::{plan_stack_update, translate, Side};

use crate::commands::update_plan::{print_plan, TRANSLATE_LIMIT};
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
    /// Accept the flagged replacement or removal of this logical id (repeatable; still printed)
    #[arg(long = "accept", value_name = "LOGICAL_ID")]
    accept: Vec<String>,
    /// Update anyway (each refusal is still printed)
    #[arg(long)]
    force: bool,
    /// Write the judged parameter list (sam deploy --parameter-overrides form) to this file when
    /// the update may go ahead
    #[arg(long, value_name = "FILE")]
    write_overrides: Option<PathBuf>,
    /// Print the verdict as JSON: {stack, region, passed, forced, refusals, notes, changes}
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: PreflightArgs) -> Result<ExitCode> {
    let raw = Template::load(&args.template)?;
    let config = SamConfig::load(&args.stack.samconfig, &args.stack.config_env)?;
    let extra = parse_set(&args.set)?;
    let mut pairs = deploy_parameters(&config, &raw, &extra)
        .with_context(|| args.template.display().to_string())?;
    let (calendar, settings) = schedule_from_parameters(&effective_parameters(
        &raw,
        &pairs.iter().cloned().collect(),
    ))?;
    let session = args.stack.connect().await?;
    let name = session.stack().to_string();
    let c = clients(&session);
    let mut read_notes = Vec::new();
    let deployed =
        orderbroker::preflight::aws::read_deployed(&c, &name, &mut |n| read_notes.push(n)).await?;
    let plan = match &deployed {
        Some(d) => {
            let proposed = translate::translate_all(vec![raw.clone()], TRANSLATE_LIMIT)?
                .pop()
                .context("the translator returned nothing")?;
            let proposed = translate::keep_deployed_code(&d.stack.template, proposed)?;
            let deployed_pairs: Vec<(String, String)> =
                d.stack.stack.parameters.clone().into_iter().collect();
            let mut old = Side::new(&d.stack.template, &deployed_pairs, &session.region);
            old.parameters = old.parameters.with_physical(&d.stack.physical);
            Some(
                plan_stack_update(&old, &proposed, &pairs, &session.region, &d.stack.physical)
                    .context("the update plan")?,
            )
        }
        None => None,
    };
    if let Some(p) = &plan {
        pairs.retain(|(k, _)| !p.pins.iter().any(|(pk, _)| pk == k));
        pairs.extend(p.pins.iter().cloned());
    }
    // Every parameter the template declares, at the value the plan used (its default when
    // samconfig does not set it): sam deploy keeps a stack's previous value for a parameter it
    // is not given (UsePreviousValue; aws-sam-cli issues 4180 and 7103), which is not what the
    // plan judged.
    let pairs: Vec<(String, String)> = Parameters::new(&raw, &pairs)
        .values()
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS::"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let now = chrono::Utc::now();
    let events = crate::shared::declared_events(&session, &calendar, now).await;
    let no_live = LiveState::default();
    let report = check(&Inputs {
        plan: plan.as_ref(),
        live: deployed.as_ref().map_or(&no_live, |d| &d.live),
        in_progress: deployed.as_ref().and_then(|d| d.in_progress.clone()),
        accepted: &args.accept,
        now,
        calendar: &calendar,
        settings: &settings,
        span: chrono::Duration::minutes(args.window_margin_minutes),
        events: &events,
    })?;
    let mut notes: Vec<String> = read_notes.into_iter().chain(report.notes.clone()).collect();
    if let Some(p) = plan.as_ref().filter(|p| !p.pins.is_empty()) {
        notes.push(format!(
            "the service's rollout properties are pinned to what the stack gives it ({}): the stack update leaves them, the rollout carries the template's",
            p.pins
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let go = report.passed() || args.force;
    if let (true, Some(path)) = (go, &args.write_overrides) {
        std::fs::write(path, render_pairs(&pairs)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let code = if go {
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
                "changes": plan.as_ref().map(|p| &p.plan.changes),
            }))?
        )?;
        return Ok(code);
    }
    if let Some(p) = &plan {
        print_plan(
            &p.plan,
            &format!("stack {name}"),
            &args.template.display().to_string(),
            !p.pins.is_empty(),
        )?;
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
            "preflight: stack {name} in {}: {} refusal(s); fix them, accept a flagged one with --accept, or rerun with --force (make deploy PREFLIGHT_FLAGS=...)",
            session.region,
            report.refusals.len()
        )?;
    }
    Ok(code)
}
