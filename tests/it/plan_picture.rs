//! The plan picture (`orderbroker plan --svg`): golden SVG files for a normal day, an early
//! close, a triple-witching day with an 08:30 event and a holiday, each parsed as XML and
//! checked for the windows and times it must show. `UPDATE_GOLDEN=1 cargo test plan_picture`
//! rewrites the files after an intended change (review the diff).

use chrono::NaiveDate;
use orderbroker::calendar::{Calendar, Closed};
use orderbroker::warmup::events::{plan_events, DeclaredEvent};
use orderbroker::warmup::preview::{floor_at, svg, Day};
use orderbroker::warmup::*;

use crate::support::{ny, root};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The picture of `date` as `plan --svg` draws it, with `events` declared.
fn picture(date: &str, events: &[DeclaredEvent]) -> (String, Option<Plan>) {
    let cal = Calendar::new();
    let date = d(date);
    let closed = cal.closed(date).unwrap().map(|c| match c {
        Closed::Holiday(h) => h.to_string(),
        Closed::Weekend => "weekend".to_string(),
        Closed::Closure(r) => r,
    });
    let plan = match cal.session(date).unwrap() {
        None => None,
        Some(session) => {
            let declared: Vec<serde_json::Value> = events
                .iter()
                .map(|e| serde_json::to_value(e).unwrap())
                .collect();
            let (events, refused) = plan_events(&cal, &[session], &declared, date).unwrap();
            assert!(refused.is_empty(), "{refused:?}");
            Some(
                plan(&Inputs {
                    now: orderbroker::calendar::local_instant(date, chrono::NaiveTime::MIN)
                        .unwrap(),
                    sessions: &[session],
                    recent: &[],
                    forecast: None,
                    history: &[],
                    bounds: Bounds {
                        baseline_min: 3,
                        max: 30,
                    },
                    overrides: &Overrides::default(),
                    settings: &Settings::default(),
                    events: &events,
                })
                .unwrap(),
            )
        }
    };
    let text = svg(&[Day {
        date,
        closed,
        plan: plan.as_ref(),
        forecast: None,
        min_tasks: 3,
        max_tasks: 30,
        standby: Some(2),
        reservation: None,
    }]);
    (text, plan)
}

fn golden(name: &str, text: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(text, want, "{name} differs from its golden file");
}

/// Every text of the document, and the classes of its shapes.
fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

fn classes(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter_map(|n| n.attribute("class").map(str::to_string))
        .collect()
}

#[test]
fn a_normal_day_shows_both_windows_their_raise_and_restore_and_the_bounds() {
    let (text, plan) = picture("2026-12-02", &[]);
    golden("plan-normal-day.svg", &text);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let t = texts(&doc);
    for want in [
        "open 09:30-10:00",
        "close 15:30-16:15",
        "raise 09:17 -> 6",
        "restore 10:00 -> 3",
        "raise 15:17 -> 6",
        "restore 16:15 -> 3",
        "MaxTasks 30",
        "MinTasks 3",
        "standby tasks N = 2 above demand (warm pool)",
    ] {
        assert!(t.iter().any(|x| x == want), "{want:?} not in {t:?}");
    }
    let c = classes(&doc);
    assert_eq!(c.iter().filter(|x| x.starts_with("window")).count(), 2);
    assert_eq!(c.iter().filter(|x| *x == "floor").count(), 1);
    // The floor line is the plan's: at 09:25 the open's floor is in force.
    assert_eq!(
        floor_at(plan.as_ref().unwrap(), ny("2026-12-02", "09:25")),
        6
    );
    assert!(t
        .iter()
        .any(|x| x.contains("legend") || x.contains("MinCapacity floor")));
}

#[test]
fn an_early_close_draws_the_close_window_at_13_00() {
    let (text, _) = picture("2026-11-27", &[]);
    golden("plan-early-close.svg", &text);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let t = texts(&doc);
    assert!(t.iter().any(|x| x == "close 12:30-13:15"), "{t:?}");
    assert!(t.iter().any(|x| x == "raise 12:17 -> 6"), "{t:?}");
}

#[test]
fn a_triple_witching_day_with_an_0830_event_shows_the_event_and_the_raised_close() {
    let cpi = DeclaredEvent {
        date: d("2026-12-18"),
        start: "08:30".into(),
        end: "09:00".into(),
        floor: Some(14),
        multiplier: None,
        of: None,
        reason: "CPI release".into(),
    };
    let (text, _) = picture("2026-12-18", &[cpi]);
    golden("plan-triple-witching-event.svg", &text);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let t = texts(&doc);
    for want in [
        "event 08:30-09:00",
        "raise 08:17 -> 14",
        "restore 09:00 -> 3",
        "raise 15:17 -> 9",
    ] {
        assert!(t.iter().any(|x| x == want), "{want:?} not in {t:?}");
    }
    // The close window's tooltip says why it is 9.
    let close = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("window close"))
        .unwrap();
    let why = close
        .children()
        .find(|n| n.has_tag_name("title"))
        .and_then(|n| n.text())
        .unwrap();
    assert!(why.contains("triple witching"), "{why}");
    assert!(classes(&doc).iter().any(|c| c == "window event"));
}

#[test]
fn a_holiday_says_the_market_is_closed_and_draws_no_window() {
    let (text, plan) = picture("2026-12-25", &[]);
    assert!(plan.is_none());
    golden("plan-holiday.svg", &text);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let t = texts(&doc);
    assert!(
        t.iter()
            .any(|x| x == "2026-12-25 - market closed (Christmas Day)"),
        "{t:?}"
    );
    assert!(!classes(&doc).iter().any(|c| c.starts_with("window")));
}

#[test]
fn the_cli_draws_the_same_picture_as_the_library() {
    let dir = std::env::temp_dir().join(format!("ob-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plan.svg");
    let out = crate::support::plan_cli(&["--date", "2026-12-02", "--standby", "2", "--svg"], &file);
    crate::support::succeeded(&out);
    let (text, _) = picture("2026-12-02", &[]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn the_alb_reservation_is_a_layer_of_the_text_and_the_picture() {
    let dir = std::env::temp_dir().join(format!("ob-svg-alb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plan.svg");
    let out = crate::support::plan_cli(
        &["--date", "2026-12-02", "--alb-units", "60", "--svg"],
        &file,
    );
    let text = crate::support::succeeded(&out);
    assert!(
        text.contains("ALB reservation: 60 LCUs requested from 07:17 (120 min before the first raise), held until 16:15"),
        "{text}"
    );
    let svg = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(texts(&doc)
        .iter()
        .any(|t| t == "ALB reservation 60 LCU 07:17-16:15"));
    assert!(classes(&doc).iter().any(|c| c == "reservation"));
}
