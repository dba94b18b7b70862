//! `orderbroker calendar`: the NYSE sessions in a date range.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::shared::ClosureArgs;

#[derive(Args)]
pub struct CalendarArgs {
    /// First date (inclusive)
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: chrono::NaiveDate,
    /// Last date (inclusive)
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: chrono::NaiveDate,
    #[command(flatten)]
    closures: ClosureArgs,
}

pub fn run(args: CalendarArgs) -> Result<ExitCode> {
    for s in args.closures.calendar()?.sessions(args.from, args.to)? {
        println!(
            "{},{},{}",
            s.date,
            s.open.format("%H:%M"),
            s.close.format("%H:%M")
        );
    }
    Ok(ExitCode::SUCCESS)
}
