//! `orderbroker plan`: the market warm-up plan for one day, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::calendar::Closed;
use orderbroker::warmup::{self, Bounds, Forecast, Overrides, Settings};

use crate::shared::ClosureArgs;

#[derive(Args)]
pub struct PlanArgs {
    /// The trading day to plan
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: chrono::NaiveDate,
    /// Capacity forecast as `aws application-autoscaling get-predictive-scaling-forecast` prints
    /// it (JSON with CapacityForecast.Timestamps and .Values); without it the configured floor
    #[arg(long, value_name = "FILE")]
    forecast: Option<PathBuf>,
    /// Normal MinCapacity (the template's MinTasks), 1-500
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=500))]
    baseline: u32,
    /// MaxCapacity, 1-500
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=500))]
    max: u32,
    /// Operator manual floor, 0-500 (at or below the baseline it changes nothing)
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=500))]
    manual_floor: Option<u32>,
    /// Operator pause switch
    #[arg(long)]
    paused: bool,
    /// Declared market events: a JSON list of {date, start, end (HH:MM New York), floor or
    /// multiplier (+ of: open|close), reason}, as the overrides parameter's `events`; an event
    /// on a non-trading day, or any other bad one, is refused by name
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Headroom factor over the forecast or history peak
    #[arg(long, default_value_t = Settings::default().safety_factor)]
    safety_factor: f64,
    /// Floor with neither forecast nor history, 1-500
    #[arg(long, default_value_t = Settings::default().fallback_floor,
          value_parser = clap::value_parser!(u32).range(1..=500))]
    fallback_floor: u32,
    /// Print the day as JSON, one shape for every day: {date, trading, closed_reason, plan}
    /// (`plan` null on a closed day)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    closures: ClosureArgs,
}

pub fn run(args: PlanArgs) -> Result<ExitCode> {
    let calendar = args.closures.calendar()?;
    let settings = Settings {
        safety_factor: args.safety_factor,
        fallback_floor: args.fallback_floor,
        ..Settings::default()
    };
    let session = match calendar.closed(args.date)? {
        Some(why) => {
            let why = match why {
                Closed::Weekend => "weekend".to_string(),
                Closed::Holiday(name) => name.to_string(),
                Closed::Closure(reason) => reason,
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "date": args.date, "trading": false, "closed_reason": why, "plan": null
                    }))?
                );
            } else {
                println!("{}: market closed ({why}): no capacity changes", args.date);
            }
            return Ok(ExitCode::SUCCESS);
        }
        None => calendar
            .session(args.date)?
            .context("a trading day has a session")?,
    };
    let forecast = match &args.forecast {
        Some(path) => Some(read_forecast(path, args.date)?),
        None => None,
    };
    let now = orderbroker::calendar::local_instant(args.date, chrono::NaiveTime::MIN)?;
    let declared: Vec<serde_json::Value> = match &args.events {
        Some(path) => serde_json::from_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --events {}", path.display()))?,
        )
        .with_context(|| format!("--events {}: not a JSON list of events", path.display()))?,
        None => Vec::new(),
    };
    let (events, refused) = warmup::events::plan_events(
        &calendar,
        std::slice::from_ref(&session),
        &declared,
        args.date,
    )?;
    if !refused.is_empty() {
        anyhow::bail!(
            "--events {}: {}",
            args.events
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            refused.join("; ")
        );
    }
    let overrides = Overrides {
        paused: args.paused,
        manual_floor: args.manual_floor,
        events: Vec::new(),
    };
    let plan = warmup::plan(&warmup::Inputs {
        now,
        sessions: &[session],
        recent: &[],
        forecast: forecast.as_ref(),
        history: &[],
        bounds: Bounds {
            baseline_min: args.baseline,
            max: args.max,
        },
        overrides: &overrides,
        settings: &settings,
        events: &events,
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "date": args.date, "trading": true, "closed_reason": null, "plan": plan
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let tz = orderbroker::calendar::EXCHANGE_TZ;
    let hm = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    println!(
        "{}: open {} close {}{} (New York time)",
        session.date,
        session.open.format("%H:%M"),
        session.close.format("%H:%M"),
        if session.is_early_close() {
            ", early close"
        } else {
            ""
        }
    );
    if plan.paused {
        println!("  PAUSED by the operator: nothing is raised; what would be raised:");
    }
    let verb = if plan.paused { "would raise" } else { "raise" };
    for w in &plan.windows {
        println!(
            "  {:<5} spike {}-{}: {verb} MinCapacity to {} at {}, restore {} at {}",
            format!("{:?}", w.window.spike).to_lowercase(),
            hm(w.window.spike_start),
            hm(w.window.spike_end),
            w.floor,
            hm(w.window.raise_at),
            plan.restore_floor,
            hm(w.window.restore_at),
        );
        println!("        because: {}", w.reason);
    }
    for n in &plan.notes {
        println!("  note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The forecast file, refused when it holds a negative or non-numeric value or does not cover
/// `date` (New York day): a forecast for another day would silently fall back to the floor.
fn read_forecast(path: &std::path::Path, date: chrono::NaiveDate) -> Result<Forecast> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read forecast {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("forecast {} is not JSON", path.display()))?;
    let cap = &v["CapacityForecast"];
    let stamps = cap["Timestamps"]
        .as_array()
        .with_context(|| format!("{}: no CapacityForecast.Timestamps list", path.display()))?
        .iter()
        .map(|t| {
            let s = t.as_str().context("a timestamp is not a string")?;
            Ok(chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("timestamp {s:?} is not RFC 3339"))?
                .with_timezone(&chrono::Utc))
        })
        .collect::<Result<Vec<_>>>()?;
    let values = cap["Values"]
        .as_array()
        .with_context(|| format!("{}: no CapacityForecast.Values list", path.display()))?
        .iter()
        .map(|v| {
            let x = v.as_f64().with_context(|| {
                format!("{}: forecast value {v} is not a number", path.display())
            })?;
            anyhow::ensure!(
                x.is_finite() && x >= 0.0,
                "{}: forecast value {x} is negative",
                path.display()
            );
            Ok(x)
        })
        .collect::<Result<Vec<_>>>()?;
    let day_start = orderbroker::calendar::local_instant(date, chrono::NaiveTime::MIN)?;
    let day_end = orderbroker::calendar::local_instant(
        date.succ_opt().context("date out of range")?,
        chrono::NaiveTime::MIN,
    )?;
    if !stamps.iter().any(|t| *t >= day_start && *t < day_end) {
        let range = match (stamps.iter().min(), stamps.iter().max()) {
            (Some(a), Some(b)) => format!("{} to {}", a.to_rfc3339(), b.to_rfc3339()),
            _ => "nothing".into(),
        };
        anyhow::bail!(
            "{}: the forecast covers {range}, not {date} (New York): give that day's forecast, or no --forecast for the configured floor",
            path.display()
        );
    }
    Ok(Forecast::from_capacity(&stamps, &values)?)
}
