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
    /// Fail (exit 1) when any resource of the template would deploy without the three tags.
    /// Strict by default: every resource must tag itself
    Check {
        /// Template to check
        #[arg(default_value = "template.yaml")]
        template: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Count samconfig's stack tags as applied (CloudFormation propagates them to most
        /// resources it creates): lenient, for a template that relies on them
        #[arg(long)]
        with_stack_tags: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: TagsCommand) -> Result<ExitCode> {
    let TagsCommand::Check {
        template,
        config,
        with_stack_tags,
        json,
    } = cmd;
    let t = Template::load(&template)?;
    let stack_tags = if with_stack_tags {
        SamConfig::load(&config.samconfig, &config.config_env)?.stack_tags()?
    } else {
        Vec::new()
    };
    let report = check_template(&t, &stack_tags);
    let code = if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        crate::exit::from(crate::exit::REFUSED)
    };
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "template": template.display().to_string(),
                "strict": !with_stack_tags,
                "compliant": report.compliant,
                "not_taggable": report.not_in_template,
                "findings": report.findings.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            }))?
        )?;
        return Ok(code);
    }
    crate::outln!(
        "{}: {} resources tagged, {} not taggable in CloudFormation (left to the tag-enforcer), {} findings",
        template.display(),
        report.compliant.len(),
        report.not_in_template.len(),
        report.findings.len()
    )?;
    for f in &report.findings {
        crate::outln!("  {f}")?;
    }
    Ok(code)
}
