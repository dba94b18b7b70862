//! `orderbroker samconfig`: samconfig.toml's full `sam deploy` parameter list, stack tags and
//! stack name.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use orderbroker::cfn::samconfig::{render_pairs, SamConfig};
use orderbroker::cfn::template::Template;
use orderbroker::timing::deploy_parameters;

use crate::shared::{parse_set, ConfigArgs};

#[derive(Subcommand)]
pub enum SamconfigCommand {
    /// Print the COMPLETE --parameter-overrides value for `sam deploy`: samconfig's overrides,
    /// CostCenter from the stack tags, each --set (sam replaces, never merges, the list), then
    /// the values derived from the declared task start times (refused if set by hand to another
    /// value)
    Overrides {
        #[command(flatten)]
        config: ConfigArgs,
        /// The template whose declared defaults and health checks the derivation uses
        #[arg(long, default_value = "template.yaml")]
        template: std::path::PathBuf,
        /// Extra KEY=VALUE, added or replacing (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print a JSON object {KEY: VALUE} instead
        #[arg(long)]
        json: bool,
    },
    /// Print the stack tags as a --tags value
    Tags {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print a JSON object {KEY: VALUE} instead
        #[arg(long)]
        json: bool,
    },
    /// Print the stack name
    StackName {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print {"stack_name": NAME} instead
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: SamconfigCommand) -> Result<ExitCode> {
    match cmd {
        SamconfigCommand::Overrides {
            config,
            template,
            set,
            json,
        } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            let extra = parse_set(&set)?;
            let t = Template::load(&template)?;
            let pairs = deploy_parameters(&c, &t, &extra)
                .with_context(|| template.display().to_string())?;
            print_pairs(&pairs, json)?;
        }
        SamconfigCommand::Tags { config, json } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            print_pairs(&c.stack_tags()?, json)?;
        }
        SamconfigCommand::StackName { config, json } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            let name = c
                .get_str("stack_name")
                .context("samconfig has no stack_name")?;
            orderbroker::aws::stack::check_stack_name(name)
                .with_context(|| format!("{} stack_name", config.samconfig.display()))?;
            if json {
                crate::outln!("{}", serde_json::json!({ "stack_name": name }))?;
            } else {
                crate::outln!("{name}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_pairs(pairs: &[(String, String)], json: bool) -> Result<()> {
    if json {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&map)?)?;
    } else {
        crate::outln!("{}", render_pairs(pairs)?)?;
    }
    Ok(())
}
