//! Market events beyond the open and close: the recurring ones the calendar computes
//! (quarterly triple witching, month-end closes) and the ones an operator declares (FOMC at
//! 14:00, CPI and payrolls at 08:30, the Russell reconstitution: a dated list with a start and
//! end in New York time, a floor or a multiplier of that day's open or close floor, and a
//! reason). Pure: the plan ([`crate::warmup::plan`]) turns each into a window.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarError, Closed};
use crate::warmup::Spike;

/// An event as the operator writes it in the overrides parameter (`events`) or `plan --events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredEvent {
    pub date: NaiveDate,
    /// New York time, `HH:MM`.
    pub start: String,
    pub end: String,
    /// A fixed floor (tasks), or ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<u32>,
    /// ... a multiplier of that day's `of` floor (from forecast or history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// `open` or `close` (default `close`): the floor the multiplier applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<Spike>,
    pub reason: String,
}

/// How an event's floor is found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFloor {
    Fixed(u32),
    /// `factor` x the day's open or close floor.
    Multiple {
        factor: f64,
        of: Spike,
    },
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Declared,
    /// The third Friday of March, June, September, December (or the trading day before it).
    TripleWitching,
    /// The last trading day of the month.
    MonthEnd,
}

/// An event ready for the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub date: NaiveDate,
    pub kind: EventKind,
    /// New York wall-clock start and end; `None` = the day's close window (recurring events
    /// strengthen the close, they do not move it).
    pub start: Option<NaiveTime>,
    pub end: Option<NaiveTime>,
    pub floor: EventFloor,
    pub reason: String,
}

/// Why a declared event is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    #[error("event {date} {reason:?}: {field} {value:?} is not HH:MM (New York time)")]
    BadTime {
        date: NaiveDate,
        reason: String,
        field: &'static str,
        value: String,
    },
    #[error("event {date} {reason:?}: it ends ({end}) before it starts ({start})")]
    EndsBeforeStart {
        date: NaiveDate,
        reason: String,
        start: NaiveTime,
        end: NaiveTime,
    },
    #[error("event {date} {reason:?}: give exactly one of floor or multiplier")]
    FloorRule { date: NaiveDate, reason: String },
    #[error("event {date} {reason:?}: multiplier {value} is not within 1.0-5.0")]
    Multiplier {
        date: NaiveDate,
        reason: String,
        value: f64,
    },
    #[error("event {date} {reason:?}: floor {value} is not within 1-500")]
    Floor {
        date: NaiveDate,
        reason: String,
        value: u32,
    },
    #[error(
        "event {date} {reason:?}: {date} is not a trading day ({why}): no session to scale for"
    )]
    NotTradingDay {
        date: NaiveDate,
        reason: String,
        why: String,
    },
    #[error("event {date} {reason:?}: the reason is empty or longer than 200 characters")]
    Reason { date: NaiveDate, reason: String },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

fn hhmm(
    date: NaiveDate,
    reason: &str,
    field: &'static str,
    v: &str,
) -> Result<NaiveTime, EventError> {
    NaiveTime::parse_from_str(v.trim(), "%H:%M").map_err(|_| EventError::BadTime {
        date,
        reason: reason.to_string(),
        field,
        value: v.to_string(),
    })
}

fn describe(c: Closed) -> String {
    match c {
        Closed::Weekend => "weekend".into(),
        Closed::Holiday(h) => h.to_string(),
        Closed::Closure(r) => format!("closure: {r}"),
    }
}

impl DeclaredEvent {
    /// The event, or what is wrong with it (a non-trading day included).
    pub fn check(&self, calendar: &Calendar) -> Result<Event, EventError> {
        let (date, reason) = (self.date, self.reason.clone());
        if reason.trim().is_empty() || reason.len() > 200 {
            return Err(EventError::Reason { date, reason });
        }
        let start = hhmm(date, &reason, "start", &self.start)?;
        let end = hhmm(date, &reason, "end", &self.end)?;
        if end <= start {
            return Err(EventError::EndsBeforeStart {
                date,
                reason,
                start,
                end,
            });
        }
        let floor = match (self.floor, self.multiplier) {
            (Some(f), None) if (1..=500).contains(&f) => EventFloor::Fixed(f),
            (Some(f), None) => {
                return Err(EventError::Floor {
                    date,
                    reason,
                    value: f,
                })
            }
            (None, Some(m)) if m.is_finite() && (1.0..=5.0).contains(&m) => EventFloor::Multiple {
                factor: m,
                of: self.of.unwrap_or(Spike::Close),
            },
            (None, Some(m)) => {
                return Err(EventError::Multiplier {
                    date,
                    reason,
                    value: m,
                })
            }
            _ => return Err(EventError::FloorRule { date, reason }),
        };
        if let Some(why) = calendar.closed(date)? {
            return Err(EventError::NotTradingDay {
                date,
                reason,
                why: describe(why),
            });
        }
        Ok(Event {
            date,
            kind: EventKind::Declared,
            start: Some(start),
            end: Some(end),
            floor,
            reason,
        })
    }
}

/// Multipliers of the close floor on the recurring event days. Assumptions, not measurements:
/// set them from the service's own history of those closes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recurring {
    pub triple_witching_multiplier: f64,
    pub month_end_multiplier: f64,
}

impl Default for Recurring {
    fn default() -> Self {
        Recurring {
            triple_witching_multiplier: 1.5,
            month_end_multiplier: 1.25,
        }
    }
}

/// The third Friday of a month.
pub fn third_friday(year: i32, month: u32) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Fri, 3)
}

/// The quarterly expiration day of `month` (3, 6, 9, 12): its third Friday, or the trading day
/// before it when the exchange is closed that Friday (Juneteenth 2026-06-19 makes it 06-18; an
/// operator closure moves it the same way).
pub fn expiration_day(
    calendar: &Calendar,
    year: i32,
    month: u32,
) -> Result<Option<NaiveDate>, CalendarError> {
    match third_friday(year, month) {
        Some(d) => calendar.trading_day_on_or_before(d, 6),
        None => Ok(None),
    }
}

/// The last trading day of a month.
pub fn month_end(
    calendar: &Calendar,
    year: i32,
    month: u32,
) -> Result<Option<NaiveDate>, CalendarError> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match first_next {
        Some(f) => calendar.trading_day_on_or_before(f - Duration::days(1), 9),
        None => Ok(None),
    }
}

/// The recurring events of one trading day.
pub fn recurring(
    calendar: &Calendar,
    date: NaiveDate,
    r: &Recurring,
) -> Result<Vec<Event>, CalendarError> {
    let mut out = Vec::new();
    let (y, m) = (date.year(), date.month());
    if m % 3 == 0 && expiration_day(calendar, y, m)? == Some(date) {
        out.push(Event {
            date,
            kind: EventKind::TripleWitching,
            start: None,
            end: None,
            floor: EventFloor::Multiple {
                factor: r.triple_witching_multiplier,
                of: Spike::Close,
            },
            reason: "quarterly triple witching and index-rebalance close".into(),
        });
    }
    if month_end(calendar, y, m)? == Some(date) {
        out.push(Event {
            date,
            kind: EventKind::MonthEnd,
            start: None,
            end: None,
            floor: EventFloor::Multiple {
                factor: r.month_end_multiplier,
                of: Spike::Close,
            },
            reason: "month-end close".into(),
        });
    }
    Ok(out)
}

/// Declared events checked one by one: the good ones, and each refused one with its error (the
/// CLI refuses the whole list on any; the function skips only those, warns and counts them).
/// Events whose day is before `today` are dropped (past their window; they may be pruned).
pub fn check_declared(
    calendar: &Calendar,
    declared: &[DeclaredEvent],
    today: NaiveDate,
) -> (Vec<Event>, Vec<EventError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for d in declared.iter().filter(|d| d.date >= today) {
        match d.check(calendar) {
            Ok(e) => good.push(e),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

/// The day's events for the plan: the recurring ones of each session ahead, and the declared
/// ones that are valid; each declared one that is not (its shape, a non-trading day, ...) is
/// returned apart, by what is wrong with it.
pub fn plan_events(
    calendar: &Calendar,
    sessions: &[crate::calendar::Session],
    declared: &[serde_json::Value],
    today: chrono::NaiveDate,
) -> Result<(Vec<Event>, Vec<String>), CalendarError> {
    let mut out = Vec::new();
    for session in sessions {
        out.extend(recurring(calendar, session.date, &Recurring::default())?);
    }
    let mut skipped = Vec::new();
    let mut parsed = Vec::new();
    for (k, raw) in declared.iter().enumerate() {
        match serde_json::from_value::<DeclaredEvent>(raw.clone()) {
            Ok(e) => parsed.push(e),
            Err(e) => skipped.push(format!("event #{k}: {e}")),
        }
    }
    let (good, bad) = check_declared(calendar, &parsed, today);
    out.extend(good);
    skipped.extend(bad.into_iter().map(|e| e.to_string()));
    Ok((out, skipped))
}
