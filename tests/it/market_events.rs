//! Market events: the recurring ones the calendar computes (quarterly triple witching, month
//! end), the declared ones (each its own window, merged where it overlaps), an event on a
//! non-trading day refused by the CLI and skipped alone by the function.

use chrono::NaiveDate;
use orderbroker::calendar::Calendar;
use orderbroker::warmup::events::*;
use orderbroker::warmup::*;

use crate::support::ny;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn triple_witching_2020_to_2030_matches_the_known_expiration_days() {
    // The quarterly expiration days (third Friday; Juneteenth moves June 2026 and 2027).
    let known = [
        "2020-03-20",
        "2020-06-19",
        "2020-09-18",
        "2020-12-18",
        "2021-03-19",
        "2021-06-18",
        "2021-09-17",
        "2021-12-17",
        "2022-03-18",
        "2022-06-17",
        "2022-09-16",
        "2022-12-16",
        "2023-03-17",
        "2023-06-16",
        "2023-09-15",
        "2023-12-15",
        "2024-03-15",
        "2024-06-21",
        "2024-09-20",
        "2024-12-20",
        "2025-03-21",
        "2025-06-20",
        "2025-09-19",
        "2025-12-19",
        "2026-03-20",
        "2026-06-18",
        "2026-09-18",
        "2026-12-18",
        "2027-03-19",
        "2027-06-17",
        "2027-09-17",
        "2027-12-17",
        "2028-03-17",
        "2028-06-16",
        "2028-09-15",
        "2028-12-15",
        "2029-03-16",
        "2029-06-15",
        "2029-09-21",
        "2029-12-21",
        "2030-03-15",
        "2030-06-21",
        "2030-09-20",
        "2030-12-20",
    ];
    let cal = Calendar::new();
    let mut computed = Vec::new();
    for year in 2020..=2030 {
        for month in [3, 6, 9, 12] {
            computed.push(expiration_day(&cal, year, month).unwrap().unwrap());
        }
    }
    let known: Vec<NaiveDate> = known.iter().map(|s| d(s)).collect();
    assert_eq!(computed, known);
}

#[test]
fn a_closed_third_friday_moves_the_expiration_to_the_trading_day_before() {
    let cal = Calendar::new();
    // Juneteenth on Friday 2026-06-19; observed on Friday 2027-06-18 (the 19th is a Saturday).
    assert_eq!(
        expiration_day(&cal, 2026, 6).unwrap(),
        Some(d("2026-06-18"))
    );
    assert_eq!(
        expiration_day(&cal, 2027, 6).unwrap(),
        Some(d("2027-06-17"))
    );
    // An operator closure on a third Friday moves it the same way.
    let closed = Calendar::new().with_closures("2026-09-18").unwrap();
    assert_eq!(
        expiration_day(&closed, 2026, 9).unwrap(),
        Some(d("2026-09-17"))
    );
    // Month end: the last trading day (2026-05-29, Memorial Day is not at the end; 2027-12-31
    // is a Friday and open).
    assert_eq!(month_end(&cal, 2026, 5).unwrap(), Some(d("2026-05-29")));
    assert_eq!(month_end(&cal, 2026, 10).unwrap(), Some(d("2026-10-30")));
    let kinds: Vec<EventKind> = recurring(&cal, d("2026-06-18"), &Recurring::default())
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [EventKind::TripleWitching]);
    assert!(recurring(&cal, d("2026-06-17"), &Recurring::default())
        .unwrap()
        .is_empty());
}

const BOUNDS: Bounds = Bounds {
    baseline_min: 3,
    max: 30,
};

fn plan_with(date: &str, events: &[Event]) -> Plan {
    let cal = Calendar::new();
    let session = cal.session(d(date)).unwrap().unwrap();
    plan(&Inputs {
        now: ny(date, "04:00"),
        sessions: &[session],
        recent: &[],
        forecast: None,
        history: &[],
        bounds: BOUNDS,
        overrides: &Overrides::default(),
        settings: &Settings::default(),
        events,
    })
    .unwrap()
}

fn declared(date: &str, start: &str, end: &str, floor: Option<u32>, mult: Option<f64>) -> Event {
    DeclaredEvent {
        date: d(date),
        start: start.into(),
        end: end.into(),
        floor,
        multiplier: mult,
        of: None,
        reason: "CPI release".into(),
    }
    .check(&Calendar::new())
    .unwrap()
}

#[test]
fn an_0830_event_gets_its_own_window_with_the_same_lead_and_its_own_actions() {
    // Wednesday 2026-12-02: configured floor 6 for open and close.
    let p = plan_with(
        "2026-12-02",
        &[declared("2026-12-02", "08:30", "09:00", Some(14), None)],
    );
    assert_eq!(p.windows.len(), 3, "{:#?}", p.windows);
    let event = &p.windows[0];
    assert_eq!(event.window.spike, Spike::Event);
    assert_eq!(event.floor, 14);
    assert_eq!(
        event.window.raise_at,
        ny("2026-12-02", "08:17"),
        "10 min + 180 s ahead"
    );
    assert_eq!(event.window.restore_at, ny("2026-12-02", "09:00"));
    assert!(event.reason.contains("CPI release"), "{}", event.reason);
    let names: Vec<&str> = p.actions.iter().map(|a| a.name.as_str()).collect();
    assert!(
        names.contains(&"warmup-2026-12-02-event0830-raise"),
        "{names:?}"
    );
    assert!(
        names.contains(&"warmup-2026-12-02-event0830-restore"),
        "{names:?}"
    );
    assert!(names.contains(&"warmup-2026-12-02-open-raise"), "{names:?}");
}

#[test]
fn an_overlapping_event_merges_with_the_open_and_the_higher_floor_wins_with_the_reason() {
    let p = plan_with(
        "2026-12-02",
        &[declared("2026-12-02", "09:00", "09:45", None, Some(2.0))],
    );
    assert_eq!(p.windows.len(), 2, "{:#?}", p.windows);
    let open = &p.windows[0];
    // 2 x the close floor 6 = 12 > the open's 6; the window spans both.
    assert_eq!(open.floor, 12);
    assert_eq!(open.window.raise_at, ny("2026-12-02", "08:47"));
    assert_eq!(open.window.restore_at, ny("2026-12-02", "10:00"));
    assert!(
        open.reason.contains("merged with the overlapping"),
        "{}",
        open.reason
    );
    assert!(
        open.reason.contains("the higher floor 12 applies"),
        "{}",
        open.reason
    );
    // One raise and one restore for the merged window: no restore in the middle of it.
    let raises = p
        .actions
        .iter()
        .filter(|a| a.name.ends_with("-raise"))
        .count();
    assert_eq!(raises, 2);
}

#[test]
fn a_triple_witching_close_is_raised_by_its_multiplier_and_capped_at_max() {
    let cal = Calendar::new();
    let events = recurring(&cal, d("2026-12-18"), &Recurring::default()).unwrap();
    let p = plan_with("2026-12-18", &events);
    let close = p
        .windows
        .iter()
        .find(|w| w.window.spike == Spike::Close)
        .unwrap();
    assert_eq!(close.floor, 9, "1.5 x 6 = 9");
    assert!(close.reason.contains("triple witching"), "{}", close.reason);
    let big = declared("2026-12-18", "15:00", "16:10", Some(400), None);
    let p = plan_with("2026-12-18", &[big]);
    assert!(p.windows.iter().all(|w| w.floor <= BOUNDS.max));
    assert!(p.windows.iter().any(|w| w.reason.contains("CLAMPED")));
}

#[test]
fn a_bad_declared_event_is_refused_by_name() {
    let cal = Calendar::new();
    let base = DeclaredEvent {
        date: d("2021-04-02"),
        start: "08:30".into(),
        end: "09:00".into(),
        floor: Some(10),
        multiplier: None,
        of: None,
        reason: "payrolls".into(),
    };
    let e = base.check(&cal).unwrap_err();
    assert!(
        e.to_string().contains("not a trading day (Good Friday)"),
        "{e}"
    );
    for (bad, says) in [
        (
            DeclaredEvent {
                date: d("2026-12-02"),
                start: "8.30".into(),
                ..base.clone()
            },
            "start",
        ),
        (
            DeclaredEvent {
                date: d("2026-12-02"),
                end: "08:00".into(),
                ..base.clone()
            },
            "before it starts",
        ),
        (
            DeclaredEvent {
                date: d("2026-12-02"),
                multiplier: Some(2.0),
                ..base.clone()
            },
            "exactly one",
        ),
        (
            DeclaredEvent {
                date: d("2026-12-02"),
                floor: None,
                multiplier: Some(-1.0),
                ..base.clone()
            },
            "multiplier",
        ),
        (
            DeclaredEvent {
                date: d("2026-12-02"),
                floor: Some(0),
                ..base.clone()
            },
            "floor 0",
        ),
    ] {
        let e = bad.check(&cal).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn the_cli_refuses_an_event_on_a_non_trading_day() {
    let dir = std::env::temp_dir().join(format!("ob-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.json");
    std::fs::write(
        &file,
        r#"[{"date":"2021-04-02","start":"08:30","end":"09:00","floor":10,"reason":"payrolls"},
            {"date":"2021-04-05","start":"08:30","end":"09:00","floor":10,"reason":"ok"}]"#,
    )
    .unwrap();
    let out = crate::support::plan_cli(&["--date", "2021-04-01", "--events"], &file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2021-04-02") && err.contains("Good Friday"),
        "{err}"
    );
    // A good list plans the event as its own window.
    std::fs::write(
        &file,
        r#"[{"date":"2026-12-02","start":"08:30","end":"09:00","floor":10,"reason":"CPI"}]"#,
    )
    .unwrap();
    let out = crate::support::plan_cli(&["--date", "2026-12-02", "--events"], &file);
    let text = crate::support::succeeded(&out);
    assert!(
        text.contains("event spike 08:30-09:00: raise MinCapacity to 10 at 08:17"),
        "{text}"
    );
}
