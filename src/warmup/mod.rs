//! The market warm-up plan: raise the scalable target's `MinCapacity` before every open and
//! close that actually happens, and restore it afterwards.
//!
//! Everything here is a pure function of plain data: the sessions ahead (from the trading
//! calendar), the predictive-scaling capacity forecast, recent history of running tasks, the
//! settings and the operator's overrides. The market-warmup function feeds it from AWS and writes
//! the result as one-shot scheduled actions; `orderbroker plan` prints it offline.
//!
//! This is the one place that adds headroom (the safety factor) for scheduled spikes.

pub mod aws;
pub mod events;
pub mod preview;
pub mod reservation;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{local_instant, Session, EXCHANGE_TZ};
use events::{Event, EventFloor};

/// Tunables, with the defaults the template sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Tasks must be running and healthy this long before the spike starts.
    pub lead_minutes: i64,
    /// Launch to healthy for one task (image pull, JVM start, two health checks).
    pub task_start_seconds: i64,
    /// The open spike lasts this long after 09:30.
    pub open_window_minutes: i64,
    /// The close spike starts this long before the close (imbalance publication, MOC orders).
    pub close_lead_in_minutes: i64,
    /// ... and lasts this long after it.
    pub close_tail_minutes: i64,
    /// Headroom over the forecast or historical peak.
    pub safety_factor: f64,
    /// Floor when there is neither a forecast nor history.
    pub fallback_floor: u32,
    /// How many sessions ahead are scheduled.
    pub horizon_sessions: usize,
    /// Prefix of the scheduled actions this plan owns.
    pub action_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lead_minutes: 10,
            task_start_seconds: 180,
            open_window_minutes: 30,
            close_lead_in_minutes: 30,
            close_tail_minutes: 15,
            safety_factor: 1.2,
            fallback_floor: 6,
            horizon_sessions: 5,
            action_prefix: "warmup".into(),
        }
    }
}

/// What can be wrong with the inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("safety_factor must be between 1.0 and 5.0, got {0}")]
    SafetyFactor(f64),
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("baseline MinCapacity {min} is above MaxCapacity {max}")]
    Bounds { min: u32, max: u32 },
    #[error("forecast has {timestamps} timestamps but {values} values")]
    ForecastShape { timestamps: usize, values: usize },
    #[error("action_prefix must be 1-40 characters of [A-Za-z0-9-], got {0:?}")]
    Prefix(String),
}

/// Operator overrides (an SSM parameter in the stack; `{}` means none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Stop scheduling raises; every run restores the normal floor.
    #[serde(default)]
    pub paused: bool,
    /// A floor every window and every restore respects (e.g. during an incident).
    #[serde(default)]
    pub manual_floor: Option<u32>,
    /// Declared market events ([`events::DeclaredEvent`]), kept as raw JSON so that one bad
    /// event is skipped alone (the function) or refused by name (the CLI).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<serde_json::Value>,
}

/// The scalable target's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// The normal MinCapacity (the template's MinTasks) restored after each window.
    pub baseline_min: u32,
    /// MaxCapacity: no floor goes above it.
    pub max: u32,
}

/// Predictive scaling's capacity forecast: hourly points, each valid for the hour it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub points: Vec<(DateTime<Utc>, f64)>,
}

impl Forecast {
    /// From `GetPredictiveScalingForecast`'s `CapacityForecast {Timestamps, Values}`.
    pub fn from_capacity(timestamps: &[DateTime<Utc>], values: &[f64]) -> Result<Self, PlanError> {
        if timestamps.len() != values.len() {
            return Err(PlanError::ForecastShape {
                timestamps: timestamps.len(),
                values: values.len(),
            });
        }
        Ok(Forecast {
            points: timestamps
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect(),
        })
    }

    /// Highest forecast over `[start, end)`, if any point's hour overlaps it.
    pub fn peak(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<f64> {
        self.points
            .iter()
            .filter(|(t, v)| *t < end && *t + Duration::hours(1) > start && v.is_finite())
            .map(|(_, v)| *v)
            .reduce(f64::max)
    }
}

/// A sample of running tasks (CloudWatch, `RunningTaskCount`, Maximum per period).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub running: f64,
}

/// Open or close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Spike {
    Open,
    Close,
    /// A declared market event's own window (FOMC, CPI, payrolls, ...).
    Event,
}

impl Spike {
    pub fn as_str(self) -> &'static str {
        match self {
            Spike::Open => "open",
            Spike::Close => "close",
            Spike::Event => "event",
        }
    }
}

/// One spike window of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub session: NaiveDate,
    pub spike: Spike,
    /// When the spike starts and ends.
    pub spike_start: DateTime<Utc>,
    pub spike_end: DateTime<Utc>,
    /// When MinCapacity goes up (spike start - lead - task start).
    pub raise_at: DateTime<Utc>,
    /// When it comes back down (the spike's end).
    pub restore_at: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.raise_at <= t && t < self.restore_at
    }
}

/// The two windows of a session.
pub fn windows(session: &Session, s: &Settings) -> [Window; 2] {
    let ahead = Duration::minutes(s.lead_minutes) + Duration::seconds(s.task_start_seconds);
    let open = session.open_at();
    let close = session.close_at();
    let open_end = open + Duration::minutes(s.open_window_minutes);
    let close_start = close - Duration::minutes(s.close_lead_in_minutes);
    let close_end = close + Duration::minutes(s.close_tail_minutes);
    [
        Window {
            session: session.date,
            spike: Spike::Open,
            spike_start: open,
            spike_end: open_end,
            raise_at: floor_minute(open - ahead),
            restore_at: open_end,
        },
        Window {
            session: session.date,
            spike: Spike::Close,
            spike_start: close_start,
            spike_end: close_end,
            raise_at: floor_minute(close_start - ahead),
            restore_at: close_end,
        },
    ]
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(60), 0).unwrap_or(t)
}

/// Where a window's floor came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum FloorSource {
    /// Predictive scaling's forecast peak over the spike.
    Forecast { peak: f64 },
    /// Peak running tasks in the same window over recent sessions.
    History { peak: f64, sessions: usize },
    /// Neither: the configured floor.
    Configured,
    /// A declared event's floor (fixed, or a multiple of the day's open or close floor).
    Event,
}

/// The plan for one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowPlan {
    pub window: Window,
    pub floor: u32,
    #[serde(flatten)]
    pub source: FloorSource,
    /// Why this floor, in words (source, safety factor, clamps).
    pub reason: String,
}

/// A scheduled action the plan wants to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredAction {
    pub name: String,
    /// Local New York time for `at(...)` with `Timezone: America/New_York`.
    pub at_local: NaiveDateTime,
    pub min_capacity: u32,
}

impl DesiredAction {
    pub fn schedule(&self) -> String {
        format!("at({})", self.at_local.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub generated_at: DateTime<Utc>,
    pub action_prefix: String,
    pub paused: bool,
    /// MinCapacity outside the windows: max(baseline, manual floor), clamped to max.
    pub restore_floor: u32,
    /// MinCapacity that should be in force right now.
    pub floor_now: u32,
    /// The window `now` is in, if any.
    pub current_window: Option<Window>,
    pub windows: Vec<WindowPlan>,
    /// Scheduled actions for everything still ahead.
    pub actions: Vec<DesiredAction>,
    pub notes: Vec<String>,
}

/// Everything the plan is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub now: DateTime<Utc>,
    /// Sessions ahead (and today's, while it lasts), oldest first.
    pub sessions: &'a [Session],
    /// Recently closed sessions, for the history fallback.
    pub recent: &'a [Session],
    pub forecast: Option<&'a Forecast>,
    pub history: &'a [Sample],
    pub bounds: Bounds,
    pub overrides: &'a Overrides,
    pub settings: &'a Settings,
    /// Market events ahead, checked ([`events::recurring`], [`events::check_declared`]).
    pub events: &'a [Event],
}

fn validate(i: &Inputs<'_>) -> Result<(), PlanError> {
    let s = i.settings;
    if !(1.0..=5.0).contains(&s.safety_factor) {
        return Err(PlanError::SafetyFactor(s.safety_factor));
    }
    for (name, v) in [
        ("lead_minutes", s.lead_minutes),
        ("task_start_seconds", s.task_start_seconds),
        ("open_window_minutes", s.open_window_minutes),
        ("close_lead_in_minutes", s.close_lead_in_minutes),
        ("close_tail_minutes", s.close_tail_minutes),
    ] {
        if v < 0 {
            return Err(PlanError::Negative(name));
        }
    }
    if i.bounds.baseline_min > i.bounds.max {
        return Err(PlanError::Bounds {
            min: i.bounds.baseline_min,
            max: i.bounds.max,
        });
    }
    let p = &s.action_prefix;
    if p.is_empty() || p.len() > 40 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(PlanError::Prefix(p.clone()));
    }
    Ok(())
}

/// Makes the plan.
pub fn plan(i: &Inputs<'_>) -> Result<Plan, PlanError> {
    validate(i)?;
    let s = i.settings;
    let mut notes = Vec::new();
    let manual = i.overrides.manual_floor.unwrap_or(0);
    let restore_floor = i.bounds.baseline_min.max(manual).min(i.bounds.max);
    // One note for the manual floor, saying what is in force.
    match i.overrides.manual_floor {
        Some(m) if m <= i.bounds.baseline_min => notes.push(format!(
            "manual floor {m} changes nothing: at or below the normal floor {}",
            i.bounds.baseline_min
        )),
        Some(m) if m > i.bounds.max => notes.push(format!(
            "manual floor {m} is above MaxCapacity {max}: capped, {max} in force for every window and restore",
            max = i.bounds.max
        )),
        Some(m) => notes.push(format!(
            "manual floor {m} in force for every window and restore"
        )),
        None => {}
    }

    let windows: Vec<WindowPlan> = i
        .sessions
        .iter()
        .flat_map(|session| session_windows(session, i, restore_floor))
        .filter(|w| w.window.restore_at > i.now)
        .collect();

    if i.overrides.paused {
        notes.push(
            "paused by operator: no raises are scheduled; MinCapacity stays at the normal floor"
                .into(),
        );
        return Ok(Plan {
            generated_at: i.now,
            action_prefix: s.action_prefix.clone(),
            paused: true,
            restore_floor,
            floor_now: restore_floor,
            current_window: None,
            windows,
            actions: Vec::new(),
            notes,
        });
    }

    let current = windows.iter().find(|w| w.window.contains(i.now));
    let floor_now = current.map_or(restore_floor, |w| w.floor);
    if let Some(w) = current {
        notes.push(format!(
            "inside the {} window of {}: floor {} applied now instead of a past schedule",
            w.window.spike.as_str(),
            w.window.session,
            w.floor
        ));
    }

    let mut actions = Vec::new();
    for w in &windows {
        if w.window.raise_at > i.now {
            actions.push(DesiredAction {
                name: action_name(&s.action_prefix, &w.window, "raise"),
                at_local: local(w.window.raise_at),
                min_capacity: w.floor,
            });
        }
        actions.push(DesiredAction {
            name: action_name(&s.action_prefix, &w.window, "restore"),
            at_local: local(w.window.restore_at),
            min_capacity: restore_floor,
        });
    }

    Ok(Plan {
        generated_at: i.now,
        action_prefix: s.action_prefix.clone(),
        paused: false,
        restore_floor,
        floor_now,
        current_window: current.map(|w| w.window),
        windows,
        actions,
        notes,
    })
}

fn local(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&EXCHANGE_TZ).naive_local()
}

fn window_plan(w: Window, i: &Inputs<'_>, restore_floor: u32) -> WindowPlan {
    let s = i.settings;
    let (source, raw, mut reason) = if let Some(peak) =
        i.forecast.and_then(|f| f.peak(w.spike_start, w.spike_end))
    {
        (
            FloorSource::Forecast { peak },
            scaled(peak, s.safety_factor),
            format!(
                "forecast peak {peak:.2} tasks x safety {} = {}",
                s.safety_factor,
                scaled(peak, s.safety_factor)
            ),
        )
    } else if let Some((peak, n)) = history_peak(w.spike, i) {
        (
            FloorSource::History { peak, sessions: n },
            scaled(peak, s.safety_factor),
            format!(
                "no forecast for this window; peak running {peak:.0} tasks over {n} recent sessions x safety {} = {}",
                s.safety_factor,
                scaled(peak, s.safety_factor)
            ),
        )
    } else {
        (
            FloorSource::Configured,
            s.fallback_floor,
            format!(
                "no forecast and no history for this window: configured floor {}",
                s.fallback_floor
            ),
        )
    };
    let mut floor = raw.max(restore_floor);
    if raw < restore_floor {
        reason.push_str(&format!("; raised to the normal floor {restore_floor}"));
    }
    if floor > i.bounds.max {
        reason.push_str(&format!(
            "; CLAMPED from {floor} to MaxCapacity {}",
            i.bounds.max
        ));
        floor = i.bounds.max;
    }
    WindowPlan {
        window: w,
        floor,
        source,
        reason,
    }
}

/// A session's windows: the open and the close; each recurring event (triple witching, month
/// end) raises the close floor; each declared event is a window of its own with the same lead.
/// Overlapping windows are merged into one, the higher floor winning, and the reason says so.
fn session_windows(session: &Session, i: &Inputs<'_>, restore_floor: u32) -> Vec<WindowPlan> {
    let s = i.settings;
    let [open, close] = windows(session, s);
    let open = window_plan(open, i, restore_floor);
    let mut close = window_plan(close, i, restore_floor);
    let (open_floor, close_floor) = (open.floor, close.floor);
    let mut all = vec![open];
    for e in i.events.iter().filter(|e| e.date == session.date) {
        let (raw, how) = match e.floor {
            EventFloor::Fixed(f) => (f, format!("floor {f}")),
            EventFloor::Multiple { factor, of } => {
                let base = if of == Spike::Open {
                    open_floor
                } else {
                    close_floor
                };
                let v = scaled(f64::from(base), factor);
                (
                    v,
                    format!("{factor} x the {} floor {base} = {v}", of.as_str()),
                )
            }
        };
        let floor = raw.max(restore_floor).min(i.bounds.max);
        let capped = if raw > i.bounds.max {
            format!(" (CLAMPED to MaxCapacity {})", i.bounds.max)
        } else {
            String::new()
        };
        match event_window(session, s, e) {
            Some(window) => {
                all.push(WindowPlan {
                    window,
                    floor,
                    source: FloorSource::Event,
                    reason: format!("event: {}: {how}{capped}", e.reason),
                });
            }
            _ if floor > close.floor => {
                close.reason = format!(
                    "{}; {}: {how}{capped}, raises it to {floor}",
                    close.reason, e.reason
                );
                close.floor = floor;
            }
            _ => {
                close.reason = format!("{}; {}: {how}, not above it", close.reason, e.reason);
            }
        }
    }
    all.push(close);
    merge_overlapping(all)
}

/// A declared event's own window on its session (the same lead as the open and close);
/// `None` for a recurring event, which strengthens the close window instead.
pub fn event_window(session: &Session, s: &Settings, e: &Event) -> Option<Window> {
    let (start, end) = (e.start?, e.end?);
    if e.date != session.date {
        return None;
    }
    let ahead = Duration::minutes(s.lead_minutes) + Duration::seconds(s.task_start_seconds);
    let start = local_instant(session.date, start).ok()?;
    let end = local_instant(session.date, end).ok()?;
    Some(Window {
        session: session.date,
        spike: Spike::Event,
        spike_start: start,
        spike_end: end,
        raise_at: floor_minute(start - ahead),
        restore_at: end,
    })
}

/// Windows of one session sorted by raise time, each overlapping pair merged into one that
/// spans both with the higher floor.
fn merge_overlapping(mut all: Vec<WindowPlan>) -> Vec<WindowPlan> {
    all.sort_by_key(|w| w.window.raise_at);
    let hm = |t: DateTime<Utc>| t.with_timezone(&EXCHANGE_TZ).format("%H:%M").to_string();
    let mut out: Vec<WindowPlan> = Vec::new();
    for w in all {
        match out.last_mut() {
            Some(last) if w.window.raise_at < last.window.restore_at => {
                let floor = last.floor.max(w.floor);
                last.reason = format!(
                    "{}; merged with the overlapping {} window {}-{} ({}; floor {}): the higher floor {floor} applies",
                    last.reason,
                    w.window.spike.as_str(),
                    hm(w.window.spike_start),
                    hm(w.window.spike_end),
                    w.reason,
                    w.floor
                );
                if w.floor > last.floor {
                    last.source = w.source;
                }
                last.floor = floor;
                last.window.raise_at = last.window.raise_at.min(w.window.raise_at);
                last.window.spike_start = last.window.spike_start.min(w.window.spike_start);
                last.window.spike_end = last.window.spike_end.max(w.window.spike_end);
                last.window.restore_at = last.window.restore_at.max(w.window.restore_at);
            }
            _ => out.push(w),
        }
    }
    out
}

fn scaled(peak: f64, factor: f64) -> u32 {
    let v = (peak.max(0.0) * factor).ceil();
    if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        v as u32
    }
}

/// Highest per-session peak of running tasks in the same spike window of recent sessions.
fn history_peak(spike: Spike, i: &Inputs<'_>) -> Option<(f64, usize)> {
    let mut best: Option<f64> = None;
    let mut sessions = 0;
    for session in i.recent {
        let w = windows(session, i.settings)
            .into_iter()
            .find(|w| w.spike == spike)
            .expect("both spikes exist");
        let peak = i
            .history
            .iter()
            .filter(|p| p.at >= w.spike_start && p.at <= w.spike_end && p.running.is_finite())
            .map(|p| p.running)
            .reduce(f64::max);
        if let Some(p) = peak {
            sessions += 1;
            best = Some(best.map_or(p, |b: f64| b.max(p)));
        }
    }
    best.map(|b| (b, sessions))
}

/// A scheduled action as Application Auto Scaling reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingAction {
    pub name: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub min_capacity: Option<u32>,
}

/// What to write and delete so the target's actions match the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub put: Vec<DesiredAction>,
    pub delete: Vec<String>,
    pub unchanged: usize,
}

/// Upserts the plan's actions by their stable names and deletes only this plan's own actions
/// that are no longer wanted (past or cancelled sessions). Actions of anyone else are untouched.
pub fn reconcile(prefix: &str, existing: &[ExistingAction], desired: &[DesiredAction]) -> Changes {
    let ours = |name: &str| name.starts_with(&format!("{prefix}-"));
    let mut changes = Changes::default();
    for d in desired {
        let same = existing.iter().any(|e| {
            e.name == d.name
                && e.schedule == d.schedule()
                && e.min_capacity == Some(d.min_capacity)
                && e.timezone.as_deref() == Some(EXCHANGE_TZ.name())
        });
        if same {
            changes.unchanged += 1;
        } else {
            changes.put.push(d.clone());
        }
    }
    for e in existing {
        if ours(&e.name) && !desired.iter().any(|d| d.name == e.name) {
            changes.delete.push(e.name.clone());
        }
    }
    changes
}

/// The stable name of a window's action (`<prefix>-<date>-<open|close>-<raise|restore>`; an
/// event's carries its New York start: `<prefix>-<date>-event0830-raise`).
pub fn action_name(prefix: &str, w: &Window, step: &str) -> String {
    match w.spike {
        Spike::Event => format!(
            "{prefix}-{}-event{}-{step}",
            w.session,
            w.spike_start.with_timezone(&EXCHANGE_TZ).format("%H%M")
        ),
        _ => format!("{prefix}-{}-{}-{step}", w.session, w.spike.as_str()),
    }
}

/// Is the next spike covered: in force now, or its raise action in place (names of the actions
/// that exist after a run)? False while paused: the dead-man alarm then tells SRE.
pub fn next_spike_covered(plan: &Plan, actions_in_place: &[String]) -> bool {
    if plan.paused {
        return false;
    }
    let Some(next) = plan.windows.first() else {
        return false;
    };
    plan.current_window == Some(next.window)
        || actions_in_place.contains(&action_name(&plan.action_prefix, &next.window, "raise"))
}
