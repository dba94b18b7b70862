//! `rollback`: stop with automatic rollback, then confirm the old version serves.

use super::world::*;
use super::*;

#[tokio::test]
async fn rollback_stops_with_automatic_rollback_and_waits_for_the_old_version() {
    let w = World {
        active: vec!["d-NEW".into()],
        statuses: HashMap::from([
            (
                "d-NEW".to_string(),
                vec!["InProgress", "InProgress", "Stopped"],
            ),
            ("d-ROLLBACK".to_string(), vec!["InProgress", "Succeeded"]),
        ]),
        rollback_of: HashMap::from([("d-NEW".to_string(), "d-ROLLBACK".to_string())]),
        // The green revision is PRIMARY until the rollback moves production back.
        primary: vec![NEW_TD, NEW_TD, CURRENT_TD],
        ..World::default()
    };
    let calls = Calls::default();
    let c = clients(w, &calls);
    let mut out = Lines::default();
    let r = rollback(
        &c,
        &stack(),
        None,
        Duration::ZERO,
        Duration::from_secs(30),
        &mut out,
    )
    .await
    .unwrap();
    let stopped = calls.stopped.lock().unwrap();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0].deployment_id(), Some("d-NEW"));
    assert_eq!(stopped[0].auto_rollback_enabled(), Some(true));
    assert!(
        matches!(&r.outcome, Outcome::RolledBack { rollback_id, rollback_status, .. } if rollback_id == "d-ROLLBACK" && rollback_status == "Succeeded")
    );
    assert_eq!(r.previous_task_definition.as_deref(), Some(CURRENT_TD));
    assert_eq!(r.serving_task_definition.as_deref(), Some(CURRENT_TD));
    assert!(r.holds_all_traffic);
}

#[tokio::test]
async fn rollback_with_nothing_in_progress_says_so() {
    let calls = Calls::default();
    let c = clients(World::default(), &calls);
    let mut out = Lines::default();
    let e = rollback(
        &c,
        &stack(),
        None,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut out,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no deployment in progress"), "{e}");
    assert!(calls.stopped.lock().unwrap().is_empty());
}
