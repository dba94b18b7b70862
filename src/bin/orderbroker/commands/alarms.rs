//! `orderbroker alarms`: the deployment group's alarms as CloudFormation receives them (the
//! template with `make deploy`'s parameter values), and with `--detection` how fast each one
//! catches a bad version in the CloudWatch evaluator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::alarms::evaluate::Settings;
use orderbroker::alarms::template::deployment_group_alarms;
use orderbroker::alarms::QuerySource;
use orderbroker::cfn::resolve::Parameters;
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::timing::deploy_parameters;
use orderbroker::timing::detection::{detections, markdown};
use orderbroker::timing::model::TimingModel;

use crate::shared::ConfigArgs;

#[derive(Args)]
pub struct AlarmsArgs {
    /// The template: template.yaml, or its SAM translation (JSON); both give the same alarms
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
    /// Also evaluate each alarm on bad-version metric streams (onset -> ALARM, nominal and
    /// worst case over the publication delays) and print the table docs/deployments.md keeps
    #[arg(long)]
    detection: bool,
    /// Seeded per-minute delay runs added to the named publication orders (with --detection)
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    seeds: u64,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: AlarmsArgs) -> Result<ExitCode> {
    let t = Template::load(&a.template)?;
    let c = SamConfig::load(&a.config.samconfig, &a.config.config_env)?;
    let params = Parameters::new(
        &t,
        &deploy_parameters(&c, &t, &[]).with_context(|| a.template.display().to_string())?,
    );
    let alarms = deployment_group_alarms(&t, &params)?;
    if a.detection {
        let m = TimingModel::with_parameters(&t, &params)?;
        let rows = detections(&m, &Settings::default(), a.seeds);
        if a.json {
            crate::outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        } else {
            crate::out!("{}", markdown(&rows))?;
        }
        let missed = rows.iter().any(|r| r.worst_seconds.is_none());
        return Ok(if missed {
            crate::exit::from(crate::exit::REFUSED)
        } else {
            ExitCode::SUCCESS
        });
    }
    if a.json {
        crate::outln!("{}", serde_json::to_string_pretty(&alarms)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for d in &alarms {
        let ret = d.queries.iter().find(|q| q.return_data);
        let what = match ret.map(|q| &q.source) {
            Some(QuerySource::Expression(text, _)) => text.clone(),
            Some(QuerySource::Metric(m)) => format!("{} {:?}", m.metric.name, m.stat),
            None => "-".into(),
        };
        crate::outln!(
            "{}: {} of {} x {} s, {:?} {}, missing data {:?}: {}",
            d.logical_id,
            d.datapoints_to_alarm,
            d.evaluation_periods,
            d.period,
            d.comparison,
            d.threshold,
            d.treat_missing,
            what
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
