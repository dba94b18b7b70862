//! `orderbroker calendar`: the NYSE sessions in a date range.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::shared::ClosureArgs;

#[derive(Args)]
pub struct CalendarArgs {
    /// First date (inclusive)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::shared::parse_date)]
    from: chrono::NaiveDate,
    /// Last date (inclusive)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::shared::parse_date)]
    to: chrono::NaiveDate,
    /// Print a JSON list of {date, open, close} instead
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    closures: ClosureArgs,
}

pub fn run(args: CalendarArgs) -> Result<ExitCode> {
    let sessions = args.closures.calendar()?.sessions(args.from, args.to)?;
    if args.json {
        let list: Vec<_> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "date": s.date,
                    "open": s.open.format("%H:%M").to_string(),
                    "close": s.close.format("%H:%M").to_string(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in sessions {
        crate::outln!(
            "{},{},{}",
            s.date,
            s.open.format("%H:%M"),
            s.close.format("%H:%M")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
