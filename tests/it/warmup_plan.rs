//! The warm-up plan on real sessions: what MinCapacity is in force when.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use orderbroker::calendar::{local_instant, Calendar, Session, EXCHANGE_TZ};
use orderbroker::warmup::{
    next_spike_covered, plan, reconcile, Bounds, ExistingAction, FloorSource, Forecast, Inputs,
    Overrides, Plan, Sample, Settings, Spike,
};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// New York wall clock -> instant.
fn ny(date: &str, hm: &str) -> DateTime<Utc> {
    local_instant(d(date), NaiveTime::parse_from_str(hm, "%H:%M").unwrap()).unwrap()
}

const BOUNDS: Bounds = Bounds {
    baseline_min: 3,
    max: 30,
};

fn sessions(now: DateTime<Utc>, n: usize) -> Vec<Session> {
    Calendar::new().upcoming(now, n).unwrap()
}

fn make(
    now: DateTime<Utc>,
    ahead: &[Session],
    forecast: Option<&Forecast>,
    overrides: &Overrides,
) -> Plan {
    plan(&Inputs {
        now,
        sessions: ahead,
        recent: &[],
        forecast,
        history: &[],
        bounds: BOUNDS,
        overrides,
        settings: &Settings::default(),
        events: &[],
    })
    .unwrap()
}

/// MinCapacity in force at `t`: the value set by the last action at or before `t`, as
/// Application Auto Scaling would have carried them out, starting from `start`.
fn min_at(p: &Plan, t: DateTime<Utc>, start: u32) -> u32 {
    let mut actions: Vec<_> = p
        .actions
        .iter()
        .map(|a| {
            (
                EXCHANGE_TZ
                    .from_local_datetime(&a.at_local)
                    .single()
                    .unwrap()
                    .with_timezone(&Utc),
                a.min_capacity,
            )
        })
        .collect();
    actions.sort();
    actions
        .iter()
        .rfind(|(at, _)| *at <= t)
        .map_or(start, |(_, m)| *m)
}

/// An hourly forecast for one day: `value(hour_utc)`.
fn hourly(day: &str, value: impl Fn(u32) -> f64) -> Forecast {
    let start = Utc.from_utc_datetime(&d(day).and_hms_opt(0, 0, 0).unwrap());
    let stamps: Vec<_> = (0..24).map(|h| start + Duration::hours(h)).collect();
    let values: Vec<_> = (0..24).map(|h| value(h as u32)).collect();
    Forecast::from_capacity(&stamps, &values).unwrap()
}

#[test]
fn at_0925_the_min_capacity_in_force_covers_the_forecast_peak_of_the_open() {
    // Monday 2026-11-30 (EST: 09:30 = 14:30 UTC). The 14:00 UTC hour holds the open spike.
    let f = hourly("2026-11-30", |h| match h {
        14 => 9.4,
        20 => 7.0, // 15:00-16:00 EST: the close
        _ => 3.0,
    });
    let now = ny("2026-11-30", "06:00");
    let ahead = sessions(now, 5);
    let p = make(now, &ahead, Some(&f), &Overrides::default());
    let open = &p.windows[0];
    assert_eq!(open.window.spike, Spike::Open);
    assert_eq!(open.source, FloorSource::Forecast { peak: 9.4 });
    assert_eq!(open.floor, 12, "ceil(9.4 x 1.2)");
    let at_0925 = min_at(&p, ny("2026-11-30", "09:25"), BOUNDS.baseline_min);
    assert!(f64::from(at_0925) >= 9.4, "{at_0925}");
    assert_eq!(at_0925, 12);
    // Raised early enough for tasks to be healthy before the 09:25 check: 10 min lead + 3 min start.
    assert_eq!(min_at(&p, ny("2026-11-30", "09:16"), 3), 3);
    assert_eq!(min_at(&p, ny("2026-11-30", "09:17"), 3), 12);
    // Restored after the open window, raised again for the close, restored after it.
    assert_eq!(min_at(&p, ny("2026-11-30", "10:00"), 3), 3);
    assert_eq!(
        min_at(&p, ny("2026-11-30", "15:20"), 3),
        9,
        "ceil(7.0 x 1.2)"
    );
    assert_eq!(min_at(&p, ny("2026-11-30", "16:15"), 3), 3);
    // Five sessions ahead, two windows each, raise + restore each.
    assert_eq!(p.windows.len(), 10);
    assert_eq!(p.actions.len(), 20);
    assert_eq!(p.actions[0].name, "warmup-2026-11-30-open-raise");
    assert_eq!(p.actions[0].schedule(), "at(2026-11-30T09:17:00)");
    assert!(next_spike_covered(
        &p,
        &p.actions.iter().map(|a| a.name.clone()).collect::<Vec<_>>()
    ));
    assert!(!next_spike_covered(&p, &[]));
}

#[test]
fn holidays_produce_no_changes_and_early_closes_move_the_close_window() {
    let c = Calendar::new();
    // Thanksgiving 2026-11-26 has no session at all.
    assert!(c.session(d("2026-11-26")).unwrap().is_none());
    let now = ny("2026-11-26", "06:00");
    let ahead = sessions(now, 1);
    assert_eq!(ahead[0].date, d("2026-11-27"), "the next session is Friday");
    let p = make(now, &ahead, None, &Overrides::default());
    assert!(p.actions.iter().all(|a| !a.name.contains("2026-11-26")));
    // Friday 2026-11-27 closes at 13:00: the close spike is 12:30-13:15.
    let close = p
        .windows
        .iter()
        .find(|w| w.window.spike == Spike::Close)
        .unwrap();
    assert_eq!(close.window.spike_start, ny("2026-11-27", "12:30"));
    assert_eq!(close.window.restore_at, ny("2026-11-27", "13:15"));
    let raise = p
        .actions
        .iter()
        .find(|a| a.name == "warmup-2026-11-27-close-raise")
        .unwrap();
    assert_eq!(raise.schedule(), "at(2026-11-27T12:17:00)");
    assert!(p.actions.iter().all(|a| !a.schedule().contains("T15:")));
}

#[test]
fn without_a_forecast_history_then_the_configured_floor() {
    let now = ny("2026-12-01", "06:00");
    let ahead = sessions(now, 1);
    let recent = Calendar::new().recent(now, 10).unwrap();
    // Running tasks peaked at 8 during Monday's open and 11 during Friday's (early) close.
    let history = [
        Sample {
            at: ny("2026-11-30", "09:45"),
            running: 8.0,
        },
        Sample {
            at: ny("2026-11-30", "11:00"),
            running: 20.0, // outside any spike window: ignored
        },
        Sample {
            at: ny("2026-11-27", "12:50"),
            running: 11.0,
        },
    ];
    let p = plan(&Inputs {
        now,
        sessions: &ahead,
        recent: &recent,
        forecast: Some(&Forecast::default()),
        history: &history,
        bounds: BOUNDS,
        overrides: &Overrides::default(),
        settings: &Settings::default(),
        events: &[],
    })
    .unwrap();
    assert_eq!(
        p.windows[0].source,
        FloorSource::History {
            peak: 8.0,
            sessions: 1
        }
    );
    assert_eq!(p.windows[0].floor, 10, "ceil(8 x 1.2)");
    assert_eq!(
        p.windows[1].source,
        FloorSource::History {
            peak: 11.0,
            sessions: 1
        }
    );
    assert!(p.windows[0].reason.contains("no forecast"));

    let bare = make(now, &ahead, None, &Overrides::default());
    assert_eq!(bare.windows[0].source, FloorSource::Configured);
    assert_eq!(bare.windows[0].floor, Settings::default().fallback_floor);
}

#[test]
fn pause_and_manual_floor() {
    let now = ny("2026-11-30", "06:00");
    let ahead = sessions(now, 2);
    let f = hourly("2026-11-30", |_| 5.0);
    let paused = make(
        now,
        &ahead,
        Some(&f),
        &Overrides {
            paused: true,
            manual_floor: None,
            events: vec![],
        },
    );
    assert!(paused.actions.is_empty());
    assert_eq!(paused.floor_now, 3);
    assert!(!next_spike_covered(&paused, &[]));

    let manual = make(
        now,
        &ahead,
        Some(&f),
        &Overrides {
            paused: false,
            manual_floor: Some(14),
            events: vec![],
        },
    );
    assert_eq!(manual.restore_floor, 14);
    assert!(manual.actions.iter().all(|a| a.min_capacity >= 14));
    assert!(manual
        .actions
        .iter()
        .filter(|a| a.name.ends_with("-restore"))
        .all(|a| a.min_capacity == 14));
}

#[test]
fn floors_never_exceed_max_capacity_and_say_so() {
    let now = ny("2026-11-30", "06:00");
    let ahead = sessions(now, 1);
    let f = hourly("2026-11-30", |_| 100.0);
    let p = make(now, &ahead, Some(&f), &Overrides::default());
    assert!(p.windows.iter().all(|w| w.floor == 30));
    assert!(p.windows[0]
        .reason
        .contains("CLAMPED from 120 to MaxCapacity 30"));
}

#[test]
fn a_run_inside_a_window_applies_its_floor_now() {
    let f = hourly("2026-11-30", |h| if h == 14 { 9.4 } else { 3.0 });
    let now = ny("2026-11-30", "09:20");
    let ahead = sessions(now, 5);
    let p = make(now, &ahead, Some(&f), &Overrides::default());
    assert_eq!(p.floor_now, 12);
    assert_eq!(p.current_window.unwrap().spike, Spike::Open);
    assert!(
        p.actions
            .iter()
            .all(|a| a.name != "warmup-2026-11-30-open-raise"),
        "no action in the past"
    );
    assert!(p
        .actions
        .iter()
        .any(|a| a.name == "warmup-2026-11-30-open-restore"));
    assert!(next_spike_covered(&p, &[]), "in force now");
    // After the open window, today's close is next.
    let later = make(
        ny("2026-11-30", "11:00"),
        &ahead,
        Some(&f),
        &Overrides::default(),
    );
    assert_eq!(later.floor_now, 3);
    assert_eq!(later.windows[0].window.spike, Spike::Close);
}

fn existing_from(p: &Plan) -> Vec<ExistingAction> {
    p.actions
        .iter()
        .map(|a| ExistingAction {
            name: a.name.clone(),
            schedule: a.schedule(),
            timezone: Some("America/New_York".into()),
            min_capacity: Some(a.min_capacity),
        })
        .collect()
}

#[test]
fn rerunning_writes_nothing_twice_and_leaves_other_actions_alone() {
    let now = ny("2026-11-30", "06:00");
    let ahead = sessions(now, 5);
    let p = make(now, &ahead, None, &Overrides::default());
    let mut existing = existing_from(&p);
    existing.push(ExistingAction {
        name: "sre-black-friday".into(),
        schedule: "at(2026-11-30T08:00:00)".into(),
        timezone: None,
        min_capacity: Some(20),
    });
    let again = reconcile("warmup", &existing, &p.actions);
    assert!(again.put.is_empty());
    assert!(again.delete.is_empty());
    assert_eq!(again.unchanged, 20);
}

#[test]
fn a_run_after_a_failed_one_still_covers_the_next_open() {
    // Monday 06:00: the horizon is written.
    let monday = ny("2026-11-30", "06:00");
    let p1 = make(monday, &sessions(monday, 5), None, &Overrides::default());
    let written = existing_from(&p1);
    // Every run on Monday after that fails (AWS unreachable). The actions stay in place, so
    // Tuesday's open is still covered by what Monday wrote:
    let tuesday_open = ny("2026-12-01", "09:25");
    assert!(written
        .iter()
        .any(|a| a.name == "warmup-2026-12-01-open-raise"));
    assert_eq!(
        min_at(&p1, tuesday_open, 3),
        Settings::default().fallback_floor
    );
    // Tuesday 06:00 succeeds: Monday's past actions go, the new fifth session comes in, the rest
    // is untouched.
    let tuesday = ny("2026-12-01", "06:00");
    let p2 = make(tuesday, &sessions(tuesday, 5), None, &Overrides::default());
    let c = reconcile("warmup", &written, &p2.actions);
    assert_eq!(c.delete.len(), 4);
    assert!(c.delete.iter().all(|n| n.contains("2026-11-30")));
    assert_eq!(c.put.len(), 4);
    assert!(c.put.iter().all(|a| a.name.contains("2026-12-07")));
    assert_eq!(c.unchanged, 16);
}

#[test]
fn changed_floors_are_upserted_under_the_same_name() {
    let now = ny("2026-11-30", "06:00");
    let ahead = sessions(now, 1);
    let p1 = make(now, &ahead, None, &Overrides::default());
    let f = hourly("2026-11-30", |_| 10.0);
    let p2 = make(now, &ahead, Some(&f), &Overrides::default());
    let c = reconcile("warmup", &existing_from(&p1), &p2.actions);
    assert!(c.delete.is_empty());
    assert_eq!(
        c.put.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        vec![
            "warmup-2026-11-30-open-raise",
            "warmup-2026-11-30-close-raise"
        ]
    );
}

#[test]
fn bad_settings_are_named() {
    let now = ny("2026-11-30", "06:00");
    let bad = Settings {
        safety_factor: 0.5,
        ..Settings::default()
    };
    let err = plan(&Inputs {
        now,
        sessions: &[],
        recent: &[],
        forecast: None,
        history: &[],
        bounds: BOUNDS,
        overrides: &Overrides::default(),
        settings: &bad,
        events: &[],
    })
    .unwrap_err();
    assert!(err.to_string().contains("safety_factor"));
    assert!(Forecast::from_capacity(&[now], &[]).is_err());
}

#[test]
fn plan_cli_prints_the_day_offline() {
    let dir = std::env::temp_dir().join(format!("ob-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("forecast.json");
    std::fs::write(
        &file,
        r#"{"CapacityForecast":{"Timestamps":["2026-11-27T14:00:00Z","2026-11-27T17:00:00Z"],"Values":[9.4,6.0]},"LoadForecast":[],"UpdateTime":"2026-11-27T06:00:00Z"}"#,
    )
    .unwrap();
    let out = crate::support::plan_cli(&["--date", "2026-11-27", "--forecast"], &file);
    let text = crate::support::succeeded(&out);
    assert!(
        text.contains("2026-11-27: open 09:30 close 13:00, early close"),
        "{text}"
    );
    assert!(text.contains("raise MinCapacity to 12 at 09:17"), "{text}");
    assert!(text.contains("raise MinCapacity to 8 at 12:17"), "{text}");
    assert!(text.contains("forecast peak 9.40"), "{text}");

    let holiday = crate::support::orderbroker()
        .args(["plan", "--date", "2026-11-26", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&holiday.stdout).unwrap();
    assert_eq!(v["trading"], false);
    assert_eq!(v["closed_reason"], "Thanksgiving Day");
    assert!(v["plan"].is_null());
    // One shape for every day: the same keys on a trading day.
    let trading = crate::support::orderbroker()
        .args(["plan", "--date", "2026-11-27", "--json"])
        .env_remove("MARKET_CLOSURES")
        .output()
        .unwrap();
    let t: serde_json::Value = serde_json::from_slice(&trading.stdout).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&t), keys(&v));
    assert_eq!(t["trading"], true);
    assert!(t["plan"]["windows"].is_array());
}

#[test]
fn plan_refuses_a_forecast_for_another_day_and_nonsense_bounds_and_says_what_a_pause_means() {
    let forecast = crate::support::root().join("events/predictive-forecast-2026-11-30.json");
    let run = |args: &[&str]| {
        crate::support::orderbroker()
            .args(args)
            .env_remove("MARKET_CLOSURES")
            .output()
            .unwrap()
    };
    let other_day = run(&[
        "plan",
        "--date",
        "2026-12-02",
        "--forecast",
        forecast.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&other_day.stderr);
    assert_eq!(other_day.status.code(), Some(2), "{err}");
    assert!(err.contains("not 2026-12-02"), "{err}");
    for bad in [&["--max", "0"][..], &["--baseline", "0"], &["--max", "-3"]] {
        let mut args = vec!["plan", "--date", "2026-12-02"];
        args.extend_from_slice(bad);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let dir = std::env::temp_dir().join(format!("ob-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let neg = dir.join("forecast.json");
    std::fs::write(
        &neg,
        r#"{"CapacityForecast":{"Timestamps":["2026-12-02T14:00:00Z"],"Values":[-4.0]}}"#,
    )
    .unwrap();
    let out = run(&[
        "plan",
        "--date",
        "2026-12-02",
        "--forecast",
        neg.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("negative"), "{err}");
    let paused = run(&[
        "plan",
        "--date",
        "2026-12-02",
        "--paused",
        "--manual-floor",
        "0",
    ]);
    let text = crate::support::succeeded(&paused);
    assert!(text.contains("PAUSED"), "{text}");
    assert!(text.contains("would raise MinCapacity"), "{text}");
    assert!(!text.contains(": raise MinCapacity"), "{text}");
    assert!(text.contains("manual floor 0 changes nothing"), "{text}");
}
