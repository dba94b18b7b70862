//! `orderbroker preflight` on the real template: a stack update that would revert what
//! CodeDeploy changed (listeners, the service's task definition and strategy, target groups) or
//! that lands in a spike window is refused, naming what and why; harmless updates pass.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::ny;
use chrono::{DateTime, Duration, Utc};
use orderbroker::calendar::Calendar;
use orderbroker::cfn::template::Template;
use orderbroker::preflight::{check, Inputs, LiveState, Report};
use orderbroker::warmup::Settings;

fn template_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml")).unwrap()
}

const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/orderb-Blue/1";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/orderb-Green/2";
const TD1: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition:1";
const TD5: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-TaskDefinition:5";

/// The deployed parameters (samconfig's overrides).
fn params() -> BTreeMap<String, String> {
    [
        ("CostCenter", "TRD-4410"),
        ("VpcId", "vpc-0abc"),
        (
            "ContainerImage",
            "111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.1",
        ),
        ("MinTasks", "3"),
        ("OnDemandBaseTasks", "3"),
        ("CertificateArn", ""),
        ("JvmHeapAlarmPercent", "85"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Live state: `production` is the target group the PRIMARY task set serves from.
fn live(production: Option<&str>) -> LiveState {
    LiveState {
        production_target_group: production.map(str::to_string),
        service_task_definition: Some(TD5.into()),
        physical: [
            ("BlueTargetGroup", BLUE),
            ("GreenTargetGroup", GREEN),
            ("TaskDefinition", TD1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

fn run(
    new_text: &str,
    new_params: &BTreeMap<String, String>,
    live: &LiveState,
    now: DateTime<Utc>,
) -> Report {
    let old = Template::parse(&template_text()).unwrap();
    let new = Template::parse(new_text).unwrap();
    let old_params = params();
    check(&Inputs {
        new_template: &new,
        new_overrides: new_params,
        deployed: Some((&old, &old_params)),
        live,
        now,
        calendar: &Calendar::new(),
        settings: &Settings::default(),
        span: Duration::minutes(30),
        events: &[],
    })
    .unwrap()
}

fn with(k: &str, v: &str) -> BTreeMap<String, String> {
    let mut p = params();
    p.insert(k.into(), v.into());
    p
}

fn eleven() -> DateTime<Utc> {
    ny("2026-11-30", "11:00")
}

fn refused(r: &Report) -> Vec<&str> {
    r.refusals.iter().map(|x| x.what.as_str()).collect()
}

#[test]
fn an_unchanged_update_passes_even_after_rollouts() {
    let r = run(&template_text(), &params(), &live(Some(GREEN)), eleven());
    assert!(r.passed(), "{r:?}");
    // The drift CodeDeploy causes is reported, not refused.
    assert!(
        r.notes.iter().any(|n| n.contains(TD5) && n.contains(TD1)),
        "{r:?}"
    );
}

#[test]
fn updates_outside_the_frozen_resources_pass() {
    let r = run(
        &template_text(),
        &with("JvmHeapAlarmPercent", "80"),
        &live(Some(GREEN)),
        eleven(),
    );
    assert!(r.passed(), "{r:?}");
}

#[test]
fn a_new_image_through_the_stack_is_refused_with_the_way_to_do_it() {
    let r = run(
        &template_text(),
        &with(
            "ContainerImage",
            "111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.2",
        ),
        &live(Some(BLUE)),
        eleven(),
    );
    assert_eq!(refused(&r), ["TaskDefinition"]);
    let why = &r.refusals[0].why;
    assert!(why.contains("ContainerImage"), "{why}");
    assert!(why.contains("orderbroker deploy"), "{why}");
    assert!(
        why.contains(TD5),
        "names the revision CodeDeploy rolled out: {why}"
    );
}

#[test]
fn a_listener_rewrite_is_refused_when_codedeploy_swapped_the_target_groups() {
    // A certificate turns the production listener into HTTPS: its whole definition is resent.
    let cert = with(
        "CertificateArn",
        "arn:aws:acm:us-east-2:111122223333:certificate/0f1e2d3c",
    );
    let r = run(&template_text(), &cert, &live(Some(GREEN)), eleven());
    assert!(refused(&r).contains(&"ProductionListener"), "{r:?}");
    let why = &r
        .refusals
        .iter()
        .find(|x| x.what == "ProductionListener")
        .unwrap()
        .why;
    assert!(why.contains("CertificateArn"), "{why}");
    assert!(
        why.contains(GREEN) && why.contains("BlueTargetGroup"),
        "{why}"
    );
    assert!(why.contains("outage"), "{why}");

    // The same change while production is on the template's target group: allowed, noted.
    let r = run(&template_text(), &cert, &live(Some(BLUE)), eleven());
    assert!(!refused(&r).contains(&"ProductionListener"), "{r:?}");
    assert!(r
        .notes
        .iter()
        .any(|n| n.starts_with("ProductionListener changes")));

    // Production unknown (no PRIMARY task set): refused, it cannot be told safe.
    let r = run(&template_text(), &cert, &live(None), eleven());
    assert!(refused(&r).contains(&"ProductionListener"), "{r:?}");
}

#[test]
fn an_edited_listener_action_is_refused_after_a_swap() {
    let text = template_text().replace(
        "      DefaultActions:\n        - Type: forward\n          TargetGroupArn: !Ref GreenTargetGroup",
        "      DefaultActions:\n        - Type: forward\n          TargetGroupArn: !Ref BlueTargetGroup",
    );
    assert_ne!(text, template_text(), "the edit applies");
    let r = run(&text, &params(), &live(Some(GREEN)), eleven());
    assert_eq!(refused(&r), ["TestListener"]);
    assert!(r.refusals[0]
        .why
        .contains("differs from the deployed template"));
}

#[test]
fn the_service_strategy_and_target_groups_are_frozen() {
    let r = run(
        &template_text(),
        &with("OnDemandBaseTasks", "4"),
        &live(Some(BLUE)),
        eleven(),
    );
    assert_eq!(refused(&r), ["Service.CapacityProviderStrategy"], "{r:?}");
    assert!(r.refusals[0].why.contains("OnDemandBaseTasks 3 -> 4"));
    // MinTasks is a scaling bound only: it updates normally.
    let r = run(
        &template_text(),
        &with("MinTasks", "4"),
        &live(Some(GREEN)),
        eleven(),
    );
    assert!(r.passed(), "{r:?}");

    let r = run(
        &template_text(),
        &with("ContainerPort", "8081"),
        &live(Some(BLUE)),
        eleven(),
    );
    let got = refused(&r);
    for expected in [
        "Service.LoadBalancers",
        "TaskDefinition",
        "BlueTargetGroup.Port",
        "GreenTargetGroup.Port",
    ] {
        assert!(got.contains(&expected), "{expected} not in {got:?}");
    }
}

#[test]
fn removing_a_serving_resource_is_refused() {
    let text = template_text();
    let start = text.find("  TestListener:\n").unwrap();
    let end = text
        .find("  # ---------------------------------------------------------------- service")
        .unwrap();
    let mut cut = text.clone();
    cut.replace_range(start..end, "");
    // The service's DependsOn still names it; the check looks at resources only.
    let r = run(&cut, &params(), &live(Some(BLUE)), eleven());
    assert!(refused(&r).contains(&"TestListener"), "{r:?}");
}

#[test]
fn an_update_in_a_spike_window_is_refused() {
    // 30-minute span: 08:50 reaches the 09:17 raise; 08:40 does not.
    let r = run(
        &template_text(),
        &params(),
        &live(Some(BLUE)),
        ny("2026-11-30", "08:50"),
    );
    assert_eq!(refused(&r), ["schedule"]);
    assert!(
        r.refusals[0]
            .why
            .contains("open spike window of 2026-11-30"),
        "{r:?}"
    );
    let r = run(
        &template_text(),
        &params(),
        &live(Some(BLUE)),
        ny("2026-11-30", "08:40"),
    );
    assert!(r.passed(), "{r:?}");
    let r = run(
        &template_text(),
        &params(),
        &live(Some(BLUE)),
        ny("2026-11-30", "15:50"),
    );
    assert!(r.refusals[0].why.contains("close spike"), "{r:?}");
}

#[test]
fn a_new_stack_has_nothing_to_protect() {
    let new = Template::parse(&template_text()).unwrap();
    let r = check(&Inputs {
        new_template: &new,
        new_overrides: &params(),
        deployed: None,
        live: &LiveState::default(),
        now: eleven(),
        calendar: &Calendar::new(),
        settings: &Settings::default(),
        span: Duration::minutes(30),
        events: &[],
    })
    .unwrap();
    assert!(r.passed());
    assert!(r.notes[0].contains("touches no live traffic"));
    // Inside a spike window a create still touches no live traffic: no refusal that the note
    // would contradict.
    let r = check(&Inputs {
        new_template: &new,
        new_overrides: &params(),
        deployed: None,
        live: &LiveState::default(),
        now: ny("2026-12-02", "09:20"),
        calendar: &Calendar::new(),
        settings: &Settings::default(),
        span: Duration::minutes(30),
        events: &[],
    })
    .unwrap();
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.notes.len(), 1, "{r:?}");
}

#[test]
fn a_declared_market_event_is_a_spike_window_for_a_stack_update_too() {
    let new = Template::parse(&template_text()).unwrap();
    let cpi = crate::support::cpi_event("2026-12-02");
    let p = params();
    let at = |hm: &str, events: &[orderbroker::warmup::events::Event]| {
        check(&Inputs {
            new_template: &new,
            new_overrides: &p,
            // An update of a deployed stack (the same template: nothing else to refuse).
            deployed: Some((&new, &p)),
            live: &LiveState::default(),
            now: ny("2026-12-02", hm),
            calendar: &Calendar::new(),
            settings: &Settings::default(),
            span: Duration::minutes(30),
            events,
        })
        .unwrap()
    };
    // 07:55 + 30 min reaches the event's raise at 08:17: refused with the event named.
    let r = at("07:55", std::slice::from_ref(&cpi));
    assert!(!r.passed(), "{r:?}");
    assert!(r.refusals[0].why.contains("event spike window"), "{r:?}");
    // Without the event the same moment is clear.
    assert!(at("07:55", &[]).passed());
}
