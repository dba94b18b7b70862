//! Runs that write the plan: the horizon, reruns, recovery, the window, failed writes.

use super::*;

#[tokio::test]
async fn first_run_writes_the_five_session_horizon_exactly() {
    let w = Writes::default();
    let c = clients(World::default(), &w);
    let report = run(&c, &config(), &hourly(), ny("2026-11-30", "06:00"))
        .await
        .unwrap();
    let puts = written(&w);
    assert_eq!(puts.len(), 20, "{puts:?}");
    // Monday 2026-11-30: forecast 9.4 for the open hour -> 12; 7.0 for the close -> 9, and it
    // is November's last trading day: the month-end close gets 1.25 x 9 = 12.
    assert_eq!(
        puts[..4],
        [
            (
                "warmup-2026-11-30-open-raise".into(),
                "at(2026-11-30T09:17:00)".into(),
                12
            ),
            (
                "warmup-2026-11-30-open-restore".into(),
                "at(2026-11-30T10:00:00)".into(),
                3
            ),
            (
                "warmup-2026-11-30-close-raise".into(),
                "at(2026-11-30T15:17:00)".into(),
                12
            ),
            (
                "warmup-2026-11-30-close-restore".into(),
                "at(2026-11-30T16:15:00)".into(),
                3
            ),
        ]
    );
    // Beyond the forecast and with no history: the configured floor, still raised on time.
    assert!(puts.contains(&(
        "warmup-2026-12-04-open-raise".into(),
        "at(2026-12-04T09:17:00)".into(),
        Settings::default().fallback_floor as i32
    )));
    assert!(w.deletes.lock().unwrap().is_empty());
    assert!(w.registers.lock().unwrap().is_empty(), "3 already in force");
    assert_eq!(*w.coverage.lock().unwrap(), vec![1.0]);
    assert!(report.next_spike_covered);
    assert_eq!(report.forecast, "9 hourly points");
}

#[tokio::test]
async fn a_rerun_writes_nothing_twice() {
    let first = Writes::default();
    run(
        &clients(World::default(), &first),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    let existing = as_existing(&written(&first));
    let again = Writes::default();
    let report = run(
        &clients(
            World {
                existing,
                ..World::default()
            },
            &again,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:30"),
    )
    .await
    .unwrap();
    assert!(again.puts.lock().unwrap().is_empty());
    assert!(again.deletes.lock().unwrap().is_empty());
    assert_eq!(report.unchanged, 20);
    assert_eq!(*again.coverage.lock().unwrap(), vec![1.0]);
}

#[tokio::test]
async fn after_a_failed_run_the_next_one_still_covers_the_open() {
    // Monday 06:00 writes the horizon.
    let first = Writes::default();
    run(
        &clients(World::default(), &first),
        &config(),
        &hourly(),
        ny("2026-11-30", "06:00"),
    )
    .await
    .unwrap();
    let monday = written(&first);
    // Monday 18:05: AWS fails mid-run. Nothing is written or deleted, no coverage is claimed.
    let failed = Writes::default();
    let err = run(
        &clients(
            World {
                fail_list: true,
                ..World::default()
            },
            &failed,
        ),
        &config(),
        &hourly(),
        ny("2026-11-30", "18:05"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            WarmupError::Aws(ref e) if e.operation() == "DescribeScheduledActions"
        ),
        "{err}"
    );
    assert!(failed.puts.lock().unwrap().is_empty() && failed.deletes.lock().unwrap().is_empty());
    assert!(failed.coverage.lock().unwrap().is_empty());
    // Tuesday's open is still covered by Monday's actions...
    assert!(monday
        .iter()
        .any(|(n, s, _)| n == "warmup-2026-12-01-open-raise" && s == "at(2026-12-01T09:17:00)"));
    // ... and the next good run (Tuesday 05:05) drops Monday's and adds the new fifth session.
    let next = Writes::default();
    let report = run(
        &clients(
            World {
                existing: as_existing(&monday),
                forecast: None,
                ..World::default()
            },
            &next,
        ),
        &config(),
        &hourly(),
        ny("2026-12-01", "05:05"),
    )
    .await
    .unwrap();
    let mut deleted = next.deletes.lock().unwrap().clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            "warmup-2026-11-30-close-raise",
            "warmup-2026-11-30-close-restore",
            "warmup-2026-11-30-open-raise",
            "warmup-2026-11-30-open-restore",
        ]
    );
    let added: Vec<_> = written(&next).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(added.len(), 4);
    assert!(added.iter().all(|n| n.contains("2026-12-07")), "{added:?}");
    assert!(report.next_spike_covered);
    assert!(
        report.forecast.contains("forecast unavailable"),
        "{}",
        report.forecast
    );
}

#[tokio::test]
async fn inside_the_open_window_the_floor_is_applied_at_once() {
    let w = Writes::default();
    let report = run(
        &clients(World::default(), &w),
        &config(),
        &serde_json::from_str(&event("market-warmup-in-session.json")).unwrap(),
        ny("2026-11-30", "09:20"),
    )
    .await
    .unwrap();
    assert_eq!(*w.registers.lock().unwrap(), vec![Some(12)]);
    assert_eq!(report.floor_now, 12);
    assert!(written(&w)
        .iter()
        .all(|(n, _, _)| n != "warmup-2026-11-30-open-raise"));
    assert!(report.next_spike_covered);
}

#[tokio::test]
async fn a_failed_write_is_reported_and_fails_the_run_but_the_rest_is_written() {
    let w = Writes::default();
    let err = run(
        &clients(
            World {
                fail_put_for: Some("warmup-2026-12-02-open-raise".into()),
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
    match err {
        WarmupError::Partial(errors) => {
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].starts_with("warmup-2026-12-02-open-raise"),
                "{errors:?}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(written(&w).len(), 19);
    // The next spike (today's open) is covered, and the metric says so.
    assert_eq!(*w.coverage.lock().unwrap(), vec![1.0]);
}
