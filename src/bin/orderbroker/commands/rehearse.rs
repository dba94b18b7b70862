//! `orderbroker rehearse`: the blue/green deployment rehearsed offline (src/rehearse) for a
//! built-in scenario or a scenario file, with the template's values as `make deploy` passes
//! them (samconfig plus the derived timing), `parameters:` of the scenario on top. The I/O edge:
//! reading the files; the model itself is pure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::rehearse::scenario::{self, Scenario, BUILT_IN};
use orderbroker::rehearse::world::Setup;
use orderbroker::rehearse::{rehearse, report, Rehearsal};
use orderbroker::timing::deploy_parameters;

use crate::shared::ConfigArgs;

#[derive(Args)]
pub struct RehearseArgs {
    /// A built-in scenario (good-slow-jvm, ..., hook-never-reports) or a scenario file (an
    /// argument containing `/` or ending in .yaml)
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    scenario: Option<String>,
    /// Every built-in scenario, as a table; exit 1 if any misses its bound
    #[arg(long)]
    all: bool,
    /// Print JSON (the nominal run at top level, best_case and worst_case)
    #[arg(long)]
    json: bool,
    /// Print the nominal run's events, one a line
    #[arg(long)]
    timeline: bool,
    /// With --all: the table docs/deployments.md keeps (Markdown)
    #[arg(long, requires = "all")]
    markdown: bool,
    /// The template
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
}

fn load_scenario(arg: &str) -> Result<Scenario> {
    if scenario::is_file(arg) {
        let text = std::fs::read_to_string(arg).with_context(|| format!("scenario file {arg}"))?;
        Ok(scenario::parse(arg, &text)?)
    } else {
        Ok(scenario::built_in(arg)?)
    }
}

/// The setup for one scenario; a value the template refuses is bad input (exit 2).
fn setup(t: &Template, base: &[(String, String)], s: &Scenario) -> Result<Setup> {
    Setup::for_scenario(t, base, s).with_context(|| format!("scenario {}", s.name))
}

/// Each scenario rehearsed (the model is pure and each run independent: the scenarios are
/// spread over the machine's cores), in the order given.
fn rehearse_all(
    scenarios: &[Scenario],
    setups: &[Setup],
    timeline: bool,
) -> Vec<(Rehearsal, Vec<String>)> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(scenarios.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (Some(s), Some(setup)) = (scenarios.get(i), setups.get(i)) else {
                    break;
                };
                let r = rehearse(setup, s, timeline);
                let misses = report::misses(&r, setup);
                done.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, (r, misses)));
            });
        }
    });
    let mut rows = done.into_inner().unwrap_or_else(|p| p.into_inner());
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, row)| row).collect()
}

fn print_one(r: &Rehearsal, misses: &[String], a: &RehearseArgs) -> Result<()> {
    if a.json {
        crate::outln!("{}", serde_json::to_string_pretty(r)?)?;
        return Ok(());
    }
    crate::outln!("{}\n{}", report::HEADER, report::row(r, misses))?;
    if a.timeline {
        crate::out!("{}", report::timeline(r))?;
    }
    Ok(())
}

pub fn run(a: RehearseArgs) -> Result<ExitCode> {
    let t = Template::load(&a.template)?;
    let c = SamConfig::load(&a.config.samconfig, &a.config.config_env)?;
    let base = deploy_parameters(&c, &t, &[]).with_context(|| a.template.display().to_string())?;
    let names: Vec<String> = match &a.scenario {
        Some(s) => vec![s.clone()],
        None => BUILT_IN.iter().map(|s| s.to_string()).collect(),
    };
    let scenarios: Vec<Scenario> = names
        .iter()
        .map(|n| load_scenario(n))
        .collect::<Result<_>>()?;
    let setups: Vec<Setup> = scenarios
        .iter()
        .map(|s| setup(&t, &base, s))
        .collect::<Result<_>>()?;
    let timeline = a.timeline && !a.all;
    let rows = rehearse_all(&scenarios, &setups, timeline);
    let missed = rows.iter().any(|(_, m)| !m.is_empty());
    if !a.all {
        for (r, m) in &rows {
            print_one(r, m, &a)?;
        }
    }
    if a.all {
        if a.json {
            let all: Vec<&Rehearsal> = rows.iter().map(|(r, _)| r).collect();
            crate::outln!("{}", serde_json::to_string_pretty(&all)?)?;
        } else if a.markdown {
            crate::out!("{}", report::markdown(&rows))?;
        } else {
            crate::outln!("{}", report::HEADER)?;
            for (r, m) in &rows {
                crate::outln!("{}", report::row(r, m))?;
            }
        }
    }
    Ok(if missed {
        crate::exit::from(crate::exit::REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}
