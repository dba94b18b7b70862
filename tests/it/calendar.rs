//! The NYSE calendar on real dates, and the `orderbroker calendar` output contract.

use chrono::{NaiveDate, NaiveTime, Timelike};
use orderbroker::calendar::{local_instant, Calendar, CalendarError, Closed};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn hours(s: &str) -> (String, String) {
    let c = Calendar::new();
    let session = c
        .session(d(s))
        .unwrap()
        .unwrap_or_else(|| panic!("{s} should trade"));
    (
        session.open.format("%H:%M").to_string(),
        session.close.format("%H:%M").to_string(),
    )
}

fn closed(s: &str) -> Closed {
    Calendar::new()
        .closed(d(s))
        .unwrap()
        .unwrap_or_else(|| panic!("{s} should be closed"))
}

fn regular(s: &str) {
    assert_eq!(hours(s), ("09:30".into(), "16:00".into()), "{s}");
}

fn early(s: &str) {
    assert_eq!(hours(s), ("09:30".into(), "13:00".into()), "{s}");
}

#[test]
fn trading_days_per_year_match_the_exchange() {
    // Published NYSE trading-day counts.
    let c = Calendar::new();
    for (year, days) in [
        (2018, 251),
        (2019, 252),
        (2020, 253),
        (2021, 252),
        (2022, 251),
        (2023, 250),
        (2024, 252),
        (2025, 250),
    ] {
        let n = c
            .sessions(d(&format!("{year}-01-01")), d(&format!("{year}-12-31")))
            .unwrap()
            .len();
        assert_eq!(n, days, "{year}");
    }
}

#[test]
fn weekend_holidays_move_to_the_nearest_weekday_except_new_year_on_saturday() {
    // New Year's Day 2022 was a Saturday: not observed, Friday 2021-12-31 trades normally.
    regular("2021-12-31");
    // New Year's Day 2023 was a Sunday: observed Monday 2023-01-02.
    assert!(matches!(closed("2023-01-02"), Closed::Holiday(n) if n.contains("New Year")));
    // Independence Day 2020 was a Saturday: observed Friday 2020-07-03.
    assert!(matches!(
        closed("2020-07-03"),
        Closed::Holiday("Independence Day")
    ));
    // ... 2021 a Sunday: observed Monday 2021-07-05.
    assert!(matches!(
        closed("2021-07-05"),
        Closed::Holiday("Independence Day")
    ));
    // Christmas 2021 a Saturday: observed Friday 2021-12-24; 2022 a Sunday: Monday 2022-12-26.
    assert!(matches!(
        closed("2021-12-24"),
        Closed::Holiday("Christmas Day")
    ));
    assert!(matches!(
        closed("2022-12-26"),
        Closed::Holiday("Christmas Day")
    ));
    // 2026: July 4 is a Saturday -> Friday July 3 closed (no early close that year).
    assert!(matches!(
        closed("2026-07-03"),
        Closed::Holiday("Independence Day")
    ));
    // 2027: Christmas on Saturday -> Friday 2027-12-24 closed; Juneteenth on Saturday -> 06-18.
    assert!(matches!(
        closed("2027-12-24"),
        Closed::Holiday("Christmas Day")
    ));
    assert!(matches!(closed("2027-06-18"), Closed::Holiday(n) if n.starts_with("Juneteenth")));
}

#[test]
fn juneteenth_from_2022_only() {
    regular("2021-06-18");
    // 2022-06-19 was a Sunday: the first observance was Monday 2022-06-20.
    assert!(matches!(closed("2022-06-20"), Closed::Holiday(n) if n.starts_with("Juneteenth")));
    assert!(matches!(closed("2023-06-19"), Closed::Holiday(_)));
    assert!(matches!(closed("2026-06-19"), Closed::Holiday(_)));
}

#[test]
fn floating_holidays_and_good_friday() {
    for date in [
        "2024-01-15", // MLK
        "2024-02-19", // Washington's Birthday
        "2024-03-29", // Good Friday
        "2024-05-27", // Memorial Day
        "2024-09-02", // Labor Day
        "2024-11-28", // Thanksgiving
        "2026-04-03", // Good Friday
        "2026-11-26", // Thanksgiving
        "2030-04-19", // Good Friday
    ] {
        assert!(matches!(closed(date), Closed::Holiday(_)), "{date}");
    }
}

#[test]
fn early_closes_at_1300() {
    // Day after Thanksgiving.
    early("2024-11-29");
    early("2026-11-27");
    // July 3 on a weekday trading day.
    early("2018-07-03");
    early("2019-07-03");
    early("2023-07-03");
    early("2024-07-03");
    early("2025-07-03");
    early("2028-07-03");
    // Christmas Eve on a weekday trading day.
    early("2018-12-24");
    early("2020-12-24");
    early("2024-12-24");
    early("2025-12-24");
    early("2026-12-24");
    // Ordinary neighbours are regular.
    regular("2024-07-02");
    regular("2024-12-23");
    regular("2026-11-30");
}

#[test]
fn recorded_closures_and_operator_closures() {
    assert!(matches!(closed("2018-12-05"), Closed::Closure(r) if r.contains("Bush")));
    assert!(matches!(closed("2025-01-09"), Closed::Closure(r) if r.contains("Carter")));
    regular("2025-01-08");
    regular("2025-01-10");

    let c = Calendar::new()
        .with_closures("2027-03-10, 2027-03-11")
        .unwrap();
    assert!(c.session(d("2027-03-10")).unwrap().is_none());
    assert!(c.session(d("2027-03-11")).unwrap().is_none());
    assert!(c.session(d("2027-03-12")).unwrap().is_some());
    assert_eq!(
        Calendar::new().with_closures("2027-3-x").unwrap_err(),
        CalendarError::BadClosure("2027-3-x".into())
    );
    assert!(matches!(
        Calendar::new().with_closures("2040-01-02"),
        Err(CalendarError::OutOfRange(_))
    ));
}

#[test]
fn wall_clock_is_resolved_per_date_across_both_dst_switches() {
    let c = Calendar::new();
    let open_utc = |s: &str| c.session(d(s)).unwrap().unwrap().open_at().hour();
    // 2026: DST starts Sunday 03-08, ends Sunday 11-01.
    assert_eq!(open_utc("2026-03-06"), 14, "EST: 09:30 = 14:30 UTC");
    assert_eq!(open_utc("2026-03-09"), 13, "EDT: 09:30 = 13:30 UTC");
    assert_eq!(open_utc("2026-10-30"), 13);
    assert_eq!(open_utc("2026-11-02"), 14);
    // On the switch days themselves: 02:30 does not exist in spring, 01:30 happens twice in
    // autumn (the earlier instant is taken).
    let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    assert!(matches!(
        local_instant(d("2026-03-08"), t(2, 30)),
        Err(CalendarError::NoSuchLocalTime { .. })
    ));
    assert_eq!(
        local_instant(d("2026-11-01"), t(1, 30)).unwrap().hour(),
        5,
        "01:30 EDT = 05:30 UTC"
    );
    assert!(c.session(d("2026-03-08")).unwrap().is_none(), "a Sunday");
}

#[test]
fn dates_outside_the_range_are_errors() {
    let c = Calendar::new();
    assert_eq!(
        c.session(d("2017-12-29")).unwrap_err(),
        CalendarError::OutOfRange(d("2017-12-29"))
    );
    assert!(matches!(
        c.sessions(d("2030-12-01"), d("2031-01-05")),
        Err(CalendarError::OutOfRange(_))
    ));
    assert!(matches!(
        c.sessions(d("2026-02-01"), d("2026-01-01")),
        Err(CalendarError::Reversed { .. })
    ));
    assert!(c.session(d("2030-12-31")).unwrap().is_some());
}

#[test]
fn cli_prints_exactly_one_line_per_session() {
    let out = crate::support::orderbroker()
        .args(["calendar", "--from", "2026-11-25", "--to", "2026-12-01"])
        .env_remove("MARKET_CLOSURES")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "2026-11-25,09:30,16:00\n2026-11-27,09:30,13:00\n2026-11-30,09:30,16:00\n2026-12-01,09:30,16:00\n"
    );
    let bad = crate::support::orderbroker()
        .args(["calendar", "--from", "2031-01-01", "--to", "2031-01-02"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("outside the trading calendar"));
}
