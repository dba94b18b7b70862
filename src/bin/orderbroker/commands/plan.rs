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
    /// The day to plan
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::shared::parse_date, required_unless_present = "from", conflicts_with_all = ["from", "to"])]
    date: Option<chrono::NaiveDate>,
    /// Plan several days, `--from` to `--to` inclusive (at most 31)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::shared::parse_date, requires = "to")]
    from: Option<chrono::NaiveDate>,
    /// The last day planned with `--from` (inclusive)
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::shared::parse_date, requires = "from")]
    to: Option<chrono::NaiveDate>,
    /// Draw the day(s) from 04:00 to 20:00 New York time into this SVG file
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// The standby tasks N kept above demand (the warm pool's published value; the template's
    /// StandbyTasksDefault is 2), shown as a layer
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=500))]
    standby: Option<u32>,
    /// Show the ALB capacity reservation of this many LCUs (the function sizes it from the
    /// ALB's PeakLCUs history, which this offline command cannot read: give the last run's)
    #[arg(long, value_name = "LCU", value_parser = clap::value_parser!(u32).range(1..=100000))]
    alb_units: Option<u32>,
    /// The reservation's lead before the day's first raise (the template's
    /// AlbReservationLeadMinutes)
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(i64).range(30..=720))]
    alb_lead_minutes: i64,
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
    /// (`plan` null on a closed day); with --from/--to one such document per line
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    closures: ClosureArgs,
}

/// One planned day.
struct DayResult {
    date: chrono::NaiveDate,
    closed: Option<String>,
    session: Option<orderbroker::calendar::Session>,
    plan: Option<warmup::Plan>,
}

pub fn run(args: PlanArgs) -> Result<ExitCode> {
    let calendar = args.closures.calendar()?;
    let settings = Settings {
        safety_factor: args.safety_factor,
        fallback_floor: args.fallback_floor,
        ..Settings::default()
    };
    let dates: Vec<chrono::NaiveDate> = match (args.date, args.from, args.to) {
        (Some(d), _, _) => vec![d],
        (None, Some(from), Some(to)) => {
            anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
            anyhow::ensure!(
                (to - from).num_days() < 31,
                "--from {from} --to {to}: at most 31 days"
            );
            from.iter_days().take_while(|d| *d <= to).collect()
        }
        _ => anyhow::bail!("give --date, or --from and --to"),
    };
    // Closed days need no forecast; every trading day must be covered.
    let trading: Vec<chrono::NaiveDate> = dates
        .iter()
        .copied()
        .filter(|d| matches!(calendar.closed(*d), Ok(None)))
        .collect();
    let forecast = match &args.forecast {
        Some(path) => Some(read_forecast(path, &trading)?),
        None => None,
    };
    let declared: Vec<serde_json::Value> = match &args.events {
        Some(path) => {
            let list: Vec<serde_json::Value> = serde_json::from_str(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --events {}", path.display()))?,
            )
            .with_context(|| format!("--events {}: not a JSON list of events", path.display()))?;
            check_events(&calendar, path, &list, dates[0])?;
            list
        }
        None => Vec::new(),
    };
    let mut days = Vec::new();
    for date in &dates {
        days.push(plan_day(
            &args,
            &calendar,
            &settings,
            *date,
            forecast.as_ref(),
            &declared,
        )?);
    }
    if let Some(path) = &args.svg {
        let pictures: Vec<orderbroker::warmup::preview::Day<'_>> = days
            .iter()
            .map(|d| orderbroker::warmup::preview::Day {
                date: d.date,
                closed: d.closed.clone(),
                plan: d.plan.as_ref(),
                forecast: forecast.as_ref(),
                min_tasks: args.baseline,
                max_tasks: args.max,
                standby: args.standby,
                reservation: reservation_span(&args, d),
            })
            .collect();
        std::fs::write(path, orderbroker::warmup::preview::svg(&pictures))
            .with_context(|| format!("--svg {}: cannot write", path.display()))?;
        eprintln!("plan: drawn into {}", path.display());
    }
    for d in &days {
        if args.json {
            let doc = serde_json::json!({
                "date": d.date,
                "trading": d.closed.is_none(),
                "closed_reason": d.closed,
                "plan": d.plan,
            });
            if dates.len() == 1 {
                crate::outln!("{}", serde_json::to_string_pretty(&doc)?)?;
            } else {
                crate::outln!("{}", serde_json::to_string(&doc)?)?;
            }
        } else {
            print_day(&args, d, forecast.as_ref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_day(
    args: &PlanArgs,
    calendar: &orderbroker::calendar::Calendar,
    settings: &Settings,
    date: chrono::NaiveDate,
    forecast: Option<&Forecast>,
    declared: &[serde_json::Value],
) -> Result<DayResult> {
    if let Some(why) = calendar.closed(date)? {
        let why = match why {
            Closed::Weekend => "weekend".to_string(),
            Closed::Holiday(name) => name.to_string(),
            Closed::Closure(reason) => reason,
        };
        return Ok(DayResult {
            date,
            closed: Some(why),
            session: None,
            plan: None,
        });
    }
    let session = calendar
        .session(date)?
        .context("a trading day has a session")?;
    let (events, refused) =
        warmup::events::plan_events(calendar, std::slice::from_ref(&session), declared, date)?;
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
        now: orderbroker::calendar::local_instant(date, chrono::NaiveTime::MIN)?,
        sessions: &[session],
        recent: &[],
        forecast,
        history: &[],
        bounds: Bounds {
            baseline_min: args.baseline,
            max: args.max,
        },
        overrides: &overrides,
        settings,
        events: &events,
    })?;
    Ok(DayResult {
        date,
        closed: None,
        session: Some(session),
        plan: Some(plan),
    })
}

/// Every declared event judged alike whatever the planned days: a bad one (its shape, a
/// non-trading day, a bad time) refuses the file by name, even when the planned day itself is
/// closed; one before the first planned day is said to be skipped, never dropped unseen.
fn check_events(
    calendar: &orderbroker::calendar::Calendar,
    path: &std::path::Path,
    list: &[serde_json::Value],
    first: chrono::NaiveDate,
) -> Result<()> {
    let mut refused = Vec::new();
    let mut parsed = Vec::new();
    for (k, raw) in list.iter().enumerate() {
        match serde_json::from_value::<warmup::events::DeclaredEvent>(raw.clone()) {
            Ok(e) => parsed.push(e),
            Err(e) => refused.push(format!("event #{k}: {e}")),
        }
    }
    let (_, bad) = warmup::events::check_declared(calendar, &parsed, chrono::NaiveDate::MIN);
    refused.extend(bad.into_iter().map(|e| e.to_string()));
    anyhow::ensure!(
        refused.is_empty(),
        "--events {}: {}",
        path.display(),
        refused.join("; ")
    );
    for e in parsed.iter().filter(|e| e.date < first) {
        eprintln!(
            "plan: event on {} ({}) is before {first}: skipped",
            e.date, e.reason
        );
    }
    Ok(())
}

/// When the ALB reservation would be held this day, and its units (only with `--alb-units`).
fn reservation_span(
    args: &PlanArgs,
    d: &DayResult,
) -> Option<(
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    u32,
)> {
    let units = args.alb_units?;
    let windows: Vec<warmup::Window> = d.plan.as_ref()?.windows.iter().map(|w| w.window).collect();
    let settings = warmup::reservation::ReservationSettings {
        enabled: true,
        lead_minutes: args.alb_lead_minutes,
        ..Default::default()
    };
    let (from, to) = warmup::reservation::needed_between(&windows, &settings)?;
    Some((from, to, units))
}

/// A day for a person: every layer that decides capacity.
fn print_day(args: &PlanArgs, d: &DayResult, forecast: Option<&Forecast>) -> Result<()> {
    let (Some(session), Some(plan)) = (&d.session, &d.plan) else {
        crate::outln!(
            "{}: market closed ({}): no capacity changes",
            d.date,
            d.closed.as_deref().unwrap_or("?")
        )?;
        return Ok(());
    };
    let tz = orderbroker::calendar::EXCHANGE_TZ;
    let hm = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    crate::outln!(
        "{}: open {} close {}{} (New York time)",
        session.date,
        session.open.format("%H:%M"),
        session.close.format("%H:%M"),
        if session.is_early_close() {
            ", early close"
        } else {
            ""
        }
    )?;
    if plan.paused {
        crate::outln!("  PAUSED by the operator: nothing is raised; what would be raised:")?;
    }
    let verb = if plan.paused { "would raise" } else { "raise" };
    for w in &plan.windows {
        crate::outln!(
            "  {:<5} spike {}-{}: {verb} MinCapacity to {} at {}, restore {} at {}",
            format!("{:?}", w.window.spike).to_lowercase(),
            hm(w.window.spike_start),
            hm(w.window.spike_end),
            w.floor,
            hm(w.window.raise_at),
            plan.restore_floor,
            hm(w.window.restore_at),
        )?;
        crate::outln!("        because: {}", w.reason)?;
    }
    for n in &plan.notes {
        crate::outln!("  note: {n}")?;
    }
    let mut layers = format!("  bounds: MinTasks {} MaxTasks {}", args.baseline, args.max);
    if let Some(n) = args.standby {
        layers.push_str(&format!("; standby tasks N = {n} above demand (warm pool)"));
    }
    crate::outln!("{layers}")?;
    match reservation_span(args, d) {
        Some((from, to, units)) => crate::outln!(
            "  ALB reservation: {units} LCUs requested from {} ({} min before the first raise), held until {}, then reset",
            hm(from),
            args.alb_lead_minutes,
            hm(to)
        )?,
        None => crate::outln!(
            "  ALB reservation: not shown (--alb-units N; with AlbReservationEnabled the function sizes it from PeakLCUs)"
        )?,
    }
    if let Some(f) = forecast {
        let hours: Vec<String> = f
            .points
            .iter()
            .filter(|(t, _)| orderbroker::calendar::local_date(*t) == d.date)
            .map(|(t, v)| format!("{} {v:.1}", hm(*t)))
            .collect();
        if !hours.is_empty() {
            crate::outln!("  forecast by hour (tasks): {}", hours.join(", "))?;
        }
    }
    Ok(())
}

/// The largest forecast value taken as a task count.
const MAX_FORECAST_TASKS: f64 = 10_000.0;

/// The forecast file, refused when it holds a negative or non-numeric value or covers none of
/// `dates` (New York days): a forecast for another day would silently fall back to the floor.
fn read_forecast(path: &std::path::Path, dates: &[chrono::NaiveDate]) -> Result<Forecast> {
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
            let s = t
                .as_str()
                .with_context(|| format!("{}: timestamp {t} is not a string", path.display()))?;
            Ok(chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("{}: timestamp {s:?} is not RFC 3339", path.display()))?
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
            // Fargate runs at most 5,000 tasks a service: anything far above is not a forecast.
            anyhow::ensure!(
                x <= MAX_FORECAST_TASKS,
                "{}: forecast value {x} is not a task count (0-{MAX_FORECAST_TASKS})",
                path.display()
            );
            Ok(x)
        })
        .collect::<Result<Vec<_>>>()?;
    let uncovered: Vec<String> = dates
        .iter()
        .filter(|d| {
            !stamps
                .iter()
                .any(|t| orderbroker::calendar::local_date(*t) == **d)
        })
        .map(|d| d.to_string())
        .collect();
    if !uncovered.is_empty() {
        let date = uncovered.join(", ");
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
