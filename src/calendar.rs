//! The NYSE trading calendar: which days trade, and when they open and close.
//!
//! Rules, as the exchange publishes them (NYSE Rule 7.2 and its holiday notices):
//! - regular session 09:30-16:00 America/New_York, Monday to Friday;
//! - full-day holidays: New Year's Day, Martin Luther King Jr. Day (3rd Monday of January),
//!   Washington's Birthday (3rd Monday of February), Good Friday, Memorial Day (last Monday of
//!   May), Juneteenth (June 19, from 2022), Independence Day, Labor Day (1st Monday of
//!   September), Thanksgiving (4th Thursday of November), Christmas;
//! - observance: a holiday on Saturday is observed the Friday before, on Sunday the Monday after;
//!   except New Year's Day on a Saturday, which is not observed (the Friday before closes a year);
//! - early close at 13:00: the day after Thanksgiving, Christmas Eve and July 3, each when it is a
//!   weekday trading day;
//! - unscheduled closures from the record (national days of mourning) in [`RECORDED_CLOSURES`],
//!   and more from an operator without a code change ([`Calendar::with_closures`]).
//!
//! Times are wall clock in New York, turned into instants per date (so both DST switch days are
//! right). A date outside [`FIRST_YEAR`]..=[`LAST_YEAR`] is an error, never a guess.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Tz;

/// First year the calendar covers.
pub const FIRST_YEAR: i32 = 2018;
/// Last year the calendar covers. Extend the rules' checks (tests) before moving it.
pub const LAST_YEAR: i32 = 2030;

/// Closures the exchange announced outside its rules (date, reason).
pub const RECORDED_CLOSURES: &[(&str, &str)] = &[
    (
        "2018-12-05",
        "National Day of Mourning for President George H. W. Bush",
    ),
    (
        "2025-01-09",
        "National Day of Mourning for President Jimmy Carter",
    ),
];

/// The exchange's time zone.
pub const EXCHANGE_TZ: Tz = New_York;

/// What can go wrong asking the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "{0} is outside the trading calendar's range ({FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31)"
    )]
    OutOfRange(NaiveDate),
    #[error("date range is reversed: {from} is after {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("bad closure date {0:?}: expected YYYY-MM-DD")]
    BadClosure(String),
    #[error("{time} on {date} does not exist in New York (DST gap)")]
    NoSuchLocalTime { date: NaiveDate, time: NaiveTime },
}

/// One trading session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub date: NaiveDate,
    /// Local (New York) open time.
    pub open: NaiveTime,
    /// Local (New York) close time: 16:00, or 13:00 on an early-close day.
    pub close: NaiveTime,
}

impl Session {
    pub fn is_early_close(&self) -> bool {
        self.close < regular_close()
    }

    /// The open as an instant.
    pub fn open_at(&self) -> DateTime<Utc> {
        local_instant(self.date, self.open).expect("09:30 always exists in New York")
    }

    /// The close as an instant.
    pub fn close_at(&self) -> DateTime<Utc> {
        local_instant(self.date, self.close).expect("13:00/16:00 always exist in New York")
    }
}

/// Why a weekday does not trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    Weekend,
    Holiday(&'static str),
    Closure(String),
}

/// The calendar: rules plus recorded and operator-supplied closures.
#[derive(Debug, Clone)]
pub struct Calendar {
    closures: Vec<(NaiveDate, String)>,
}

impl Default for Calendar {
    fn default() -> Self {
        Self::new()
    }
}

pub fn regular_open() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 30, 0).expect("valid")
}

pub fn regular_close() -> NaiveTime {
    NaiveTime::from_hms_opt(16, 0, 0).expect("valid")
}

pub fn early_close() -> NaiveTime {
    NaiveTime::from_hms_opt(13, 0, 0).expect("valid")
}

/// A New York wall-clock time on a date, as an instant (the earlier one in a DST fold).
pub fn local_instant(date: NaiveDate, time: NaiveTime) -> Result<DateTime<Utc>, CalendarError> {
    EXCHANGE_TZ
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or(CalendarError::NoSuchLocalTime { date, time })
}

/// The New York date of an instant.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&EXCHANGE_TZ).date_naive()
}

impl Calendar {
    /// The rules and the recorded closures.
    pub fn new() -> Self {
        let closures = RECORDED_CLOSURES
            .iter()
            .map(|(d, why)| {
                (
                    NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("recorded closure dates parse"),
                    (*why).to_string(),
                )
            })
            .collect();
        Calendar { closures }
    }

    /// Adds operator closures from a comma- or whitespace-separated list of `YYYY-MM-DD` dates
    /// (e.g. an environment variable or a file), without a code change.
    pub fn with_closures(mut self, list: &str) -> Result<Self, CalendarError> {
        for item in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let date = NaiveDate::parse_from_str(item, "%Y-%m-%d")
                .map_err(|_| CalendarError::BadClosure(item.to_string()))?;
            check_range(date)?;
            if !self.closures.iter().any(|(d, _)| *d == date) {
                self.closures.push((date, "operator closure".into()));
            }
        }
        Ok(self)
    }

    /// Why `date` does not trade, or `None` if it does.
    pub fn closed(&self, date: NaiveDate) -> Result<Option<Closed>, CalendarError> {
        check_range(date)?;
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            return Ok(Some(Closed::Weekend));
        }
        if let Some(name) = holiday(date) {
            return Ok(Some(Closed::Holiday(name)));
        }
        if let Some((_, why)) = self.closures.iter().find(|(d, _)| *d == date) {
            return Ok(Some(Closed::Closure(why.clone())));
        }
        Ok(None)
    }

    /// The session on `date`, if it trades.
    pub fn session(&self, date: NaiveDate) -> Result<Option<Session>, CalendarError> {
        if self.closed(date)?.is_some() {
            return Ok(None);
        }
        let early = is_early_close_day(date);
        Ok(Some(Session {
            date,
            open: regular_open(),
            close: if early {
                early_close()
            } else {
                regular_close()
            },
        }))
    }

    /// Sessions from `from` to `to`, both inclusive, oldest first.
    pub fn sessions(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Session>, CalendarError> {
        check_range(from)?;
        check_range(to)?;
        if from > to {
            return Err(CalendarError::Reversed { from, to });
        }
        let mut out = Vec::new();
        let mut d = from;
        while d <= to {
            if let Some(s) = self.session(d)? {
                out.push(s);
            }
            d += Duration::days(1);
        }
        Ok(out)
    }

    /// The next `n` sessions whose close is after `now` (today's included while it lasts).
    /// Stops early, without error, at the end of the supported range.
    pub fn upcoming(&self, now: DateTime<Utc>, n: usize) -> Result<Vec<Session>, CalendarError> {
        let mut d = local_date(now);
        check_range(d)?;
        let mut out = Vec::new();
        while out.len() < n && d.year() <= LAST_YEAR {
            if let Some(s) = self.session(d)? {
                if s.close_at() > now {
                    out.push(s);
                }
            }
            d += Duration::days(1);
        }
        Ok(out)
    }

    /// The trading day at or before `date`, looking back at most `days` days (`None` when the
    /// exchange is closed on all of them).
    pub fn trading_day_on_or_before(
        &self,
        date: NaiveDate,
        days: u32,
    ) -> Result<Option<NaiveDate>, CalendarError> {
        let mut d = date;
        for _ in 0..=days {
            if self.closed(d)?.is_none() {
                return Ok(Some(d));
            }
            d -= Duration::days(1);
        }
        Ok(None)
    }

    /// The last `n` sessions that closed before `now`, newest first.
    pub fn recent(&self, now: DateTime<Utc>, n: usize) -> Result<Vec<Session>, CalendarError> {
        let mut d = local_date(now);
        check_range(d)?;
        let mut out = Vec::new();
        while out.len() < n && d.year() >= FIRST_YEAR {
            if let Some(s) = self.session(d)? {
                if s.close_at() <= now {
                    out.push(s);
                }
            }
            d -= Duration::days(1);
        }
        Ok(out)
    }
}

fn check_range(date: NaiveDate) -> Result<(), CalendarError> {
    if (FIRST_YEAR..=LAST_YEAR).contains(&date.year()) {
        Ok(())
    } else {
        Err(CalendarError::OutOfRange(date))
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

/// The `n`th `weekday` of a month (1-based).
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n).expect("exists in every month")
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> NaiveDate {
    let next = if month == 12 {
        ymd(year + 1, 1, 1)
    } else {
        ymd(year, month + 1, 1)
    };
    let mut d = next - Duration::days(1);
    while d.weekday() != weekday {
        d -= Duration::days(1);
    }
    d
}

/// Easter Sunday (Gregorian, anonymous computus).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, month as u32, day as u32)
}

/// Saturday -> Friday before, Sunday -> Monday after.
fn observed(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d - Duration::days(1),
        Weekday::Sun => d + Duration::days(1),
        _ => d,
    }
}

/// The full-day holiday observed on `date`, if any.
pub fn holiday(date: NaiveDate) -> Option<&'static str> {
    let y = date.year();
    // New Year's Day: Sunday -> Monday; Saturday -> not observed.
    let new_year = ymd(y, 1, 1);
    if new_year.weekday() == Weekday::Sun && date == ymd(y, 1, 2) {
        return Some("New Year's Day (observed)");
    }
    if new_year.weekday() != Weekday::Sat && new_year.weekday() != Weekday::Sun && date == new_year
    {
        return Some("New Year's Day");
    }
    let fixed: [(NaiveDate, &'static str); 3] = [
        (ymd(y, 7, 4), "Independence Day"),
        (ymd(y, 12, 25), "Christmas Day"),
        (ymd(y, 6, 19), "Juneteenth National Independence Day"),
    ];
    for (day, name) in fixed {
        if name.starts_with("Juneteenth") && y < 2022 {
            continue;
        }
        if observed(day) == date {
            return Some(name);
        }
    }
    let rules: [(NaiveDate, &'static str); 6] = [
        (
            nth_weekday(y, 1, Weekday::Mon, 3),
            "Martin Luther King Jr. Day",
        ),
        (nth_weekday(y, 2, Weekday::Mon, 3), "Washington's Birthday"),
        (easter(y) - Duration::days(2), "Good Friday"),
        (last_weekday(y, 5, Weekday::Mon), "Memorial Day"),
        (nth_weekday(y, 9, Weekday::Mon, 1), "Labor Day"),
        (nth_weekday(y, 11, Weekday::Thu, 4), "Thanksgiving Day"),
    ];
    rules
        .into_iter()
        .find(|(d, _)| *d == date)
        .map(|(_, name)| name)
}

/// The day after Thanksgiving, Christmas Eve and July 3 close at 13:00 when they trade.
fn is_early_close_day(date: NaiveDate) -> bool {
    let y = date.year();
    let day_after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4) + Duration::days(1);
    date == day_after_thanksgiving || date == ymd(y, 12, 24) || date == ymd(y, 7, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn easter_dates() {
        for (y, e) in [
            (2018, "2018-04-01"),
            (2019, "2019-04-21"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2030, "2030-04-21"),
        ] {
            assert_eq!(easter(y), d(e), "{y}");
        }
    }
}
