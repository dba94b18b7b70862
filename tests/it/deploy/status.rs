//! `status` and the preflight edge: what they read and how status renders.

use super::world::*;
use super::*;

#[tokio::test]
async fn status_reads_the_service_bounds_and_only_the_warm_ups_own_actions() {
    let w = World {
        active: vec!["d-NEW".into()],
        ..World::default()
    };
    let calls = Calls::default();
    let c = clients(w, &calls);
    let mut s = stack();
    s.outputs
        .insert("BlueTargetGroupArn".into(), "arn:tg/blue".into());
    let v = orderbroker::deploy::aws::status(&c, &s, ny("2026-11-30", "09:25"), "warmup")
        .await
        .unwrap();
    assert_eq!(v.deployment.as_ref().unwrap().deployment_id, "d-NEW");
    assert_eq!(v.deployment.as_ref().unwrap().task_sets.len(), 2);
    assert_eq!(
        (v.running, v.desired, v.min, v.max),
        (6, 6, Some(9), Some(30))
    );
    assert_eq!(v.task_sets[0].colour, "blue");
    assert_eq!(v.task_sets[0].status, "PRIMARY");
    let names: Vec<&str> = v.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "warmup-2026-11-30-open-raise",
            "warmup-2026-11-30-open-restore",
            "warmup-2026-11-30-close-raise"
        ],
        "own actions only, in time order"
    );
    // One of the warm-up's prefix that cannot be read is listed, never dropped.
    assert_eq!(
        v.unreadable_actions,
        [(
            "warmup-by-hand".to_string(),
            "cron(0 9 ? * MON-FRI *)".to_string()
        )]
    );
    assert_eq!(
        v.next_action.as_ref().unwrap().name,
        "warmup-2026-11-30-open-restore"
    );
    assert_eq!(
        v.next_action.as_ref().unwrap().at,
        ny("2026-11-30", "10:00")
    );
    // 6 running under a floor of 9: degraded (`status --check` exits 1).
    assert_eq!(v.degraded, ["6 tasks running, below MinCapacity 9"]);
}

#[test]
fn a_service_is_degraded_when_fewer_tasks_run_than_desired_or_the_floor() {
    use orderbroker::deploy::status::{degradations, StatusView};
    let view = |running, desired, min| StatusView {
        running,
        desired,
        min,
        ..StatusView::default()
    };
    assert!(degradations(&view(3, 3, Some(3))).is_empty());
    assert_eq!(
        degradations(&view(0, 3, Some(3))),
        [
            "0 of 3 desired tasks running (0 pending)",
            "0 tasks running, below MinCapacity 3"
        ]
    );
    assert_eq!(
        degradations(&view(0, 0, None)),
        ["no task is running or desired"]
    );
}

#[test]
fn status_shows_the_deployment_task_sets_bounds_and_the_next_warm_up_action() {
    use orderbroker::deploy::status::{
        parse_at, render_status, PlannedAction, StatusView, TaskSetState,
    };
    // at() schedules are New York wall clock: 09:17 is 14:17Z in winter, 13:17Z in summer.
    let winter = parse_at("at(2026-11-30T09:17:00)", Some("America/New_York")).unwrap();
    assert_eq!(winter, ny("2026-11-30", "09:17"));
    assert_eq!(winter.format("%H:%M").to_string(), "14:17");
    let summer = parse_at("at(2026-06-01T09:17:00)", Some("America/New_York")).unwrap();
    assert_eq!(summer.format("%H:%M").to_string(), "13:17");
    assert!(parse_at("cron(0 9 * * ? *)", None).is_none());

    let action = |name: &str, at: DateTime<Utc>, min: i32| PlannedAction {
        name: name.into(),
        at,
        min_capacity: Some(min),
        max_capacity: None,
    };
    let done = action("warmup-2026-11-30-open-raise", ny("2026-11-30", "09:17"), 9);
    let next = action(
        "warmup-2026-11-30-open-restore",
        ny("2026-11-30", "10:00"),
        3,
    );
    let v = StatusView {
        stack: "orderbroker".into(),
        deployment: None,
        running: 9,
        desired: 9,
        pending: 0,
        task_sets: vec![TaskSetState {
            colour: "green".into(),
            status: "PRIMARY".into(),
            task_definition: CURRENT_TD.into(),
            running: 9,
            desired: 9,
            target_group: "arn:tg/blue".into(),
        }],
        min: Some(9),
        max: Some(30),
        actions: vec![done, next.clone()],
        unreadable_actions: vec![("warmup-by-hand".into(), "cron(0 9 * * ? *)".into())],
        next_action: Some(next),
        degraded: vec![],
    };
    let text = render_status(&v, ny("2026-11-30", "09:25"));
    assert!(text.contains("deployment: none in progress"), "{text}");
    assert!(
        text.contains(
            "action warmup-by-hand has a schedule this view cannot read (cron(0 9 * * ? *))"
        ),
        "{text}"
    );
    assert!(
        text.contains("running 9 / desired 9 (pending 0); min 9 max 30"),
        "{text}"
    );
    assert!(
        text.contains(&format!("green task set PRIMARY {CURRENT_TD} running 9/9")),
        "{text}"
    );
    assert!(
        text.contains("  done  Mon 2026-11-30 09:17 New York (14:17Z)  min 9"),
        "{text}"
    );
    assert!(
        text.contains("next -> Mon 2026-11-30 10:00 New York (15:00Z)  min 3"),
        "{text}"
    );
    assert!(text.contains("next: warmup-2026-11-30-open-restore at Mon 2026-11-30 10:00 New York (15:00Z) (in 35 min)"), "{text}");
}

#[tokio::test]
async fn preflight_reads_which_target_group_serves_production_and_the_deployed_template() {
    let calls = Calls::default();
    let c = clients(World::default(), &calls);
    let mut notes = Vec::new();
    let d = orderbroker::preflight::aws::read_deployed(&c, "orderbroker", &mut |n| notes.push(n))
        .await
        .unwrap()
        .expect("a deployed stack with a service");
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        d.live.production_target_group.as_deref(),
        Some("arn:tg/blue")
    );
    assert_eq!(d.live.service_task_definition.as_deref(), Some(CURRENT_TD));
    assert_eq!(d.in_progress, None);
    // The processed template (what CloudFormation runs), parameters and physical ids.
    assert_eq!(d.stack.physical["BlueTargetGroup"], "arn:tg/blue");
    assert_eq!(d.stack.physical["TaskDefinition"], "arn:td:1");
    assert!(d.stack.template.resource("X").is_some());
    assert_eq!(
        d.stack.stack.parameters["MaxTasks"],
        stack().parameters["MaxTasks"]
    );
}
