//! Spike windows a deployment or stack update must not touch, from the warm-up's own plan.

use chrono::{DateTime, Duration, Utc};

use crate::calendar::{local_date, Calendar, CalendarError};
use crate::deploy::DeployError;
use crate::warmup::events::Event;
use crate::warmup::{self, Settings, Window};

/// The spike window a change starting now and lasting `span` would touch: the warm-up's windows
/// (the open, the close, and each declared market event's), from the capacity raise to the
/// spike's end.
pub fn spike_window(
    calendar: &Calendar,
    now: DateTime<Utc>,
    span: Duration,
    settings: &Settings,
    events: &[Event],
) -> Result<Option<Window>, CalendarError> {
    let end = now + span;
    let mut dates = vec![local_date(now)];
    if local_date(end) != dates[0] {
        dates.push(local_date(end));
    }
    for date in dates {
        if let Some(session) = calendar.session(date)? {
            let mut all = warmup::windows(&session, settings).to_vec();
            all.extend(
                events
                    .iter()
                    .filter_map(|e| warmup::event_window(&session, settings, e)),
            );
            all.sort_by_key(|w| w.raise_at);
            for w in all {
                if now < w.spike_end && w.raise_at < end {
                    return Ok(Some(w));
                }
            }
        }
    }
    Ok(None)
}

/// The refusal for a window hit.
pub fn window_refusal(now: DateTime<Utc>, margin: Duration, w: &Window) -> DeployError {
    let tz = crate::calendar::EXCHANGE_TZ;
    let hm = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let spike = format!("{:?}", w.spike).to_lowercase();
    DeployError::SpikeWindow {
        detail: format!(
            "now ({} New York) is inside or within {} min of the {spike} spike window of {} ({}-{} New York, capacity raised from {}): deployments and stack updates stay out of the spike (a deployment doubles the tasks and moves traffic); wait until {}, or --force",
            hm(now),
            margin.num_minutes(),
            w.session,
            hm(w.spike_start),
            hm(w.spike_end),
            hm(w.raise_at),
            hm(w.spike_end)
        ),
        spike,
    }
}

/// The trading calendar and warm-up window settings a stack runs with (its `MarketClosures`,
/// `WarmupLeadMinutes` and the derived `LaunchToHealthySeconds` parameters; a stack deployed
/// before the start times were declared still has `WarmupTaskStartSeconds`; defaults where
/// absent).
pub fn schedule_from_parameters(
    params: &std::collections::BTreeMap<String, String>,
) -> Result<(Calendar, Settings), DeployError> {
    let calendar = Calendar::new()
        .with_closures(params.get("MarketClosures").map_or("", String::as_str))
        .map_err(|e| DeployError::Input(format!("parameter MarketClosures: {e}")))?;
    let mut settings = Settings::default();
    let num = |name: &str, default: i64| -> Result<i64, DeployError> {
        match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| DeployError::Input(format!("parameter {name}={v:?} is not a number"))),
        }
    };
    settings.lead_minutes = num("WarmupLeadMinutes", settings.lead_minutes)?;
    let legacy = num("WarmupTaskStartSeconds", settings.task_start_seconds)?;
    settings.task_start_seconds = num("LaunchToHealthySeconds", legacy)?;
    Ok((calendar, settings))
}
