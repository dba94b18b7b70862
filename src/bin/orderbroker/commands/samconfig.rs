//! `orderbroker samconfig`: samconfig.toml's full `sam deploy` parameter list, stack tags and
//! stack name.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use orderbroker::cfn::samconfig::{render_pairs, SamConfig};

use crate::shared::{parse_set, ConfigArgs};

#[derive(Subcommand)]
pub enum SamconfigCommand {
    /// Print the COMPLETE --parameter-overrides value for `sam deploy`: samconfig's overrides,
    /// CostCenter from the stack tags, then each --set (sam replaces, never merges, the list)
    Overrides {
        #[command(flatten)]
        config: ConfigArgs,
        /// Extra KEY=VALUE, added or replacing (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the stack tags as a --tags value
    Tags {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the stack name
    StackName {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(cmd: SamconfigCommand) -> Result<ExitCode> {
    match cmd {
        SamconfigCommand::Overrides { config, set } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            let extra = parse_set(&set)?;
            println!("{}", render_pairs(&c.deploy_overrides(&extra)?)?);
        }
        SamconfigCommand::Tags { config } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            println!("{}", render_pairs(&c.stack_tags()?)?);
        }
        SamconfigCommand::StackName { config } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            let name = c
                .get_str("stack_name")
                .context("samconfig has no stack_name")?;
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
