//! Operator overrides, the event fixtures and the configuration.

use super::*;

#[tokio::test]
async fn paused_schedules_nothing_and_reports_uncovered() {
    let w = Writes::default();
    let report = run(
        &clients(
            World {
                overrides: event("market-warmup-overrides-paused.json"),
                existing: as_existing(&[(
                    "warmup-2026-11-30-open-raise".into(),
                    "at(2026-11-30T09:17:00)".into(),
                    12,
                )]),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    assert!(report.paused);
    assert!(w.puts.lock().unwrap().is_empty());
    assert_eq!(
        *w.deletes.lock().unwrap(),
        vec!["warmup-2026-11-30-open-raise".to_string()]
    );
    assert_eq!(*w.coverage.lock().unwrap(), vec![0.0]);
}

#[tokio::test]
async fn manual_floor_is_respected_by_every_action() {
    let w = Writes::default();
    run(
        &clients(
            World {
                overrides: event("market-warmup-overrides-manual-floor.json"),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    let puts = written(&w);
    assert!(puts.iter().all(|(_, _, min)| *min >= 12));
    assert!(puts
        .iter()
        .filter(|(n, _, _)| n.ends_with("restore"))
        .all(|(_, _, min)| *min == 12));
    // 12 is above the 3 in force: applied now.
    assert_eq!(*w.registers.lock().unwrap(), vec![Some(12)]);
}

#[tokio::test]
async fn bad_overrides_are_named_and_nothing_is_written() {
    let w = Writes::default();
    let err = run(
        &clients(
            World {
                overrides: r#"{"paused": "yes"}"#.into(),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("/orderbroker/warmup/overrides"),
        "{err}"
    );
    assert!(w.puts.lock().unwrap().is_empty());
}

#[test]
fn every_event_fixture_is_a_valid_request() {
    for name in [
        "market-warmup-hourly.json",
        "market-warmup-in-session.json",
        "market-warmup-deploy.json",
        "market-warmup-dry-run.json",
    ] {
        let r: WarmupRequest = serde_json::from_str(&event(name)).unwrap();
        assert!(r.trigger.is_some(), "{name}");
    }
    let dry: WarmupRequest = serde_json::from_str(&event("market-warmup-dry-run.json")).unwrap();
    assert!(dry.dry_run);
}

#[test]
fn configuration_errors_name_the_variable() {
    let err = WarmupConfig::from_env(|k| (k == "SCALABLE_RESOURCE_ID").then(|| "cluster/x".into()))
        .unwrap_err();
    assert!(err.to_string().contains("SCALABLE_RESOURCE_ID"), "{err}");
    let err = WarmupConfig::from_env(|k| match k {
        "SCALABLE_RESOURCE_ID" => Some(RESOURCE.into()),
        "PREDICTIVE_POLICY_NAME" | "STACK_NAME" | "OVERRIDES_PARAMETER" => Some("x".into()),
        "BASELINE_MIN_TASKS" => Some("three".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("BASELINE_MIN_TASKS"), "{err}");
}

#[tokio::test]
async fn a_declared_event_on_a_non_trading_day_is_skipped_alone_with_a_warning_and_a_metric() {
    let w = Writes::default();
    let overrides = r#"{"events": [
        {"date": "2026-11-26", "start": "08:30", "end": "09:00", "floor": 10, "reason": "on Thanksgiving"},
        {"date": "2026-12-01", "start": "08:30", "end": "09:00", "floor": 10, "reason": "CPI"},
        {"date": "2026-12-01", "start": "nonsense"}
    ]}"#;
    let report = run(
        &clients(
            World {
                overrides: overrides.into(),
                ..World::default()
            },
            &w,
        ),
        &config(),
        &hourly(),
        ny("2026-11-25", "06:00"),
    )
    .await
    .unwrap();
    assert_eq!(
        report.events_skipped.len(),
        2,
        "{:?}",
        report.events_skipped
    );
    assert!(
        report.events_skipped[1].contains("Thanksgiving"),
        "{:?}",
        report.events_skipped
    );
    assert!(
        report.events_skipped[0].contains("event #2"),
        "{:?}",
        report.events_skipped
    );
    assert!(report
        .notes
        .iter()
        .any(|n| n.starts_with("WARNING: event skipped")));
    assert_eq!(*w.skipped.lock().unwrap(), vec![2.0]);
    let names: Vec<String> = written(&w).into_iter().map(|(n, _, _)| n).collect();
    assert!(
        names.contains(&"warmup-2026-12-01-event0830-raise".to_string()),
        "the good event still applies: {names:?}"
    );
}

#[tokio::test]
async fn the_per_minute_reservation_trigger_touches_nothing_when_the_reservation_is_off() {
    let w = Writes::default();
    let request: WarmupRequest = serde_json::from_str(r#"{"trigger":"reservation"}"#).unwrap();
    let report = run(
        &clients(World::default(), &w),
        &config(),
        &request,
        ny("2026-12-02", "07:30"),
    )
    .await
    .unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("not enabled")),
        "{:?}",
        report.notes
    );
    assert!(report.reservation.is_none());
    assert!(w.puts.lock().unwrap().is_empty());
    assert!(
        w.coverage.lock().unwrap().is_empty(),
        "the plan step did not run"
    );
}
