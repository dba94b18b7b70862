//! `orderbroker tags check`: the build-time half of the tag policy.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::tagging::check_template;

use crate::shared::ConfigArgs;

#[derive(Subcommand)]
pub enum TagsCommand {
    /// Fail (exit 1) when any resource of the template would deploy without the three tags
    Check {
        /// Template to check
        #[arg(default_value = "template.yaml")]
        template: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Ignore samconfig's stack tags: every resource must tag itself
        #[arg(long)]
        without_stack_tags: bool,
    },
}

pub fn run(cmd: TagsCommand) -> Result<ExitCode> {
    let TagsCommand::Check {
        template,
        config,
        without_stack_tags,
    } = cmd;
    let t = Template::load(&template)?;
    let stack_tags = if without_stack_tags {
        Vec::new()
    } else {
        SamConfig::load(&config.samconfig, &config.config_env)?.stack_tags()?
    };
    let report = check_template(&t, &stack_tags);
    println!(
        "{}: {} resources tagged, {} not taggable in CloudFormation (left to the tag-enforcer), {} findings",
        template.display(),
        report.compliant.len(),
        report.not_in_template.len(),
        report.findings.len()
    );
    for f in &report.findings {
        println!("  {f}");
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
