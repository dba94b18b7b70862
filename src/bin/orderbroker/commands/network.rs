//! `orderbroker network`: which paths the template's security groups open (the gates and the
//! load generator to the listeners, the ALB to the tasks) and every source admitted to the
//! listeners and the tasks, for `make deploy`'s parameters plus `--set`; offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::cfn::resolve::Parameters;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::network::reachability;
use orderbroker::timing::deploy_parameters;

use crate::shared::{parse_set, ConfigArgs};

#[derive(Args)]
pub struct NetworkArgs {
    /// The template: template.yaml, or its SAM translation (JSON)
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
    /// Extra KEY=VALUE parameters (repeatable), e.g. LoadBalancerScheme=internet-facing
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: NetworkArgs) -> Result<ExitCode> {
    let t = Template::load(&a.template)?;
    let c = SamConfig::load(&a.config.samconfig, &a.config.config_env)?;
    let extra = parse_set(&a.set)?;
    let params = Parameters::new(
        &t,
        &deploy_parameters(&c, &t, &extra).with_context(|| a.template.display().to_string())?,
    );
    let r = reachability(&t, &params)?;
    if a.json {
        crate::outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        crate::outln!("scheme: {:?}", r.scheme)?;
        for p in &r.paths {
            let state = if p.open { "OPEN  " } else { "CLOSED" };
            crate::outln!("{state} {} :{} ({})", p.name, p.port, p.why)?;
        }
        for ad in &r.admitted {
            crate::outln!(
                "admits {:?} to {} on {}-{} ({})",
                ad.peer,
                ad.group,
                ad.from_port,
                ad.to_port,
                ad.rule
            )?;
        }
        for problem in &r.problems {
            crate::outln!("PROBLEM {problem}")?;
        }
    }
    Ok(if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        crate::exit::from(crate::exit::REFUSED)
    })
}
