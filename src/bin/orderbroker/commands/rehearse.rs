//! `orderbroker rehearse`: the blue/green deployment rehearsed offline (src/rehearse) for a
//! built-in scenario or a scenario file, with the template's values as `make deploy` passes
//! them (samconfig plus the derived timing), `parameters:` of the scenario on top. The I/O edge:
//! reading the files; the model itself is pure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use orderbroker::cfn::resolve::{check_values, Parameters};
use orderbroker::cfn::rules;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::rehearse::scenario::{self, Scenario, BUILT_IN};
use orderbroker::rehearse::world::{scenario_pairs, Setup};
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
    let pairs = scenario_pairs(base, s);
    let wrong = check_values(t, &pairs);
    if !wrong.is_empty() {
        bail!("scenario {}: parameters: {}", s.name, wrong.join("; "));
    }
    let p = Parameters::new(t, &pairs);
    let verdict = rules::check(t, &p);
    if let Some(r) = verdict.refused.first() {
        bail!(
            "scenario {}: the template's rule {} refuses these parameters: {}",
            s.name,
            r.rule,
            r.description
        );
    }
    Setup::new(t, &p).with_context(|| format!("scenario {}", s.name))
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
    let mut missed = false;
    let mut rows = Vec::new();
    for name in &names {
        let s = load_scenario(name)?;
        let setup = setup(&t, &base, &s)?;
        let r = rehearse(&setup, &s, a.timeline && !a.all);
        let misses = report::misses(&r, &setup);
        missed |= !misses.is_empty();
        if a.all {
            rows.push((r, misses));
        } else {
            print_one(&r, &misses, &a)?;
        }
    }
    if a.all {
        if a.json {
            let all: Vec<&Rehearsal> = rows.iter().map(|(r, _)| r).collect();
            crate::outln!("{}", serde_json::to_string_pretty(&all)?)?;
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
