//! `orderbroker preflight` on the real template (translated as CloudFormation receives it), as
//! `make deploy` plans a stack update of a running stack: every change gets its path; rollout
//! changes pass (the Pinned* parameters keep the service as deployed, `carry` rolls them out);
//! frozen changes, flagged replacements, a deployment in progress and spike windows are refused,
//! naming what and why.

use std::collections::BTreeMap;

use crate::support::{ny, template_text, translated};
use chrono::{DateTime, Duration, Utc};
use orderbroker::calendar::Calendar;
use orderbroker::preflight::{check, Inputs, LiveState, Report};
use orderbroker::update::{plan_stack_update, Route, Side, StackUpdatePlan};
use orderbroker::warmup::Settings;

const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/orderb-Blue/1";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/orderb-Green/2";
const TD1: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:1";
const TD5: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:5";

/// The deployed parameters (samconfig's overrides).
fn params() -> BTreeMap<String, String> {
    [
        ("CostCenter", "TRD-4410"),
        ("VpcId", "vpc-0abc"),
        ("PrivateSubnet1", "subnet-0a"),
        ("PrivateSubnet2", "subnet-0b"),
        ("PrivateSubnet3", "subnet-0c"),
        (
            "ContainerImage",
            "111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.1",
        ),
        (
            "EcrRepositoryArn",
            "arn:aws:ecr:us-east-2:111122223333:repository/orderbroker",
        ),
        ("OrdersDbResourceId", "prx-0abc"),
        ("OrdersDbSecurityGroupId", "sg-0db"),
        ("SreEmail", "sre@example.com"),
        ("MinTasks", "3"),
        ("OnDemandBaseTasks", "3"),
        ("CertificateArn", ""),
        ("JvmHeapAlarmPercent", "85"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The deployed stack's physical ids: the ones the checks read, and a made-up one for the rest.
fn physical(t: &orderbroker::cfn::template::Template) -> BTreeMap<String, String> {
    t.resources()
        .map(|r| {
            let id = match r.id {
                "BlueTargetGroup" => BLUE.to_string(),
                "GreenTargetGroup" => GREEN.to_string(),
                "TaskDefinition" => TD1.to_string(),
                "ServiceSecurityGroup" => "sg-0svc".to_string(),
                other => format!("{other}-0phys"),
            };
            (r.id.to_string(), id)
        })
        .collect()
}

/// Live state: `production` is the target group the PRIMARY task set serves from.
fn live(production: Option<&str>) -> LiveState {
    LiveState {
        production_target_group: production.map(str::to_string),
        service_task_definition: Some(TD5.into()),
    }
}

fn pairs(p: &BTreeMap<String, String>) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// `make deploy`'s plan: the deployed template.yaml (created with `params()`, so not pinned)
/// updated to `new_text` with `new_params`.
fn plan(new_text: &str, new_params: &BTreeMap<String, String>) -> StackUpdatePlan {
    let old_t = translated(&template_text());
    let new_t = translated(new_text);
    let phys = physical(&old_t);
    let old_pairs = pairs(&params());
    let mut old = Side::new(&old_t, &old_pairs, "us-east-2");
    old.parameters = old.parameters.with_physical(&phys);
    plan_stack_update(&old, &new_t, &pairs(new_params), "us-east-2", &phys).unwrap()
}

fn judge(p: Option<&StackUpdatePlan>, live: &LiveState, now: DateTime<Utc>) -> Report {
    judge_with(p, live, now, None, &[])
}

fn judge_with(
    p: Option<&StackUpdatePlan>,
    live: &LiveState,
    now: DateTime<Utc>,
    in_progress: Option<(String, String)>,
    accepted: &[String],
) -> Report {
    check(&Inputs {
        plan: p,
        live,
        in_progress,
        accepted,
        now,
        calendar: &Calendar::new(),
        settings: &Settings::default(),
        span: Duration::minutes(30),
        events: &[],
    })
    .unwrap()
}

fn run(new_text: &str, new_params: &BTreeMap<String, String>, live: &LiveState) -> Report {
    judge(Some(&plan(new_text, new_params)), live, eleven())
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
fn an_unchanged_update_passes_even_after_rollouts_with_the_service_pinned() {
    let p = plan(&template_text(), &params());
    assert!(p.plan.changes.is_empty(), "{:?}", p.plan.changes);
    assert!(p.unpinned.is_empty());
    // The pins hold what the stack gives the service: its own revision, not CodeDeploy's.
    let pin = |k: &str| p.pins.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(pin("PinnedTaskDefinitionArn"), Some(TD1));
    assert_eq!(
        pin("PinnedSubnetIds"),
        Some("subnet-0a,subnet-0b,subnet-0c")
    );
    assert_eq!(pin("PinnedSecurityGroupIds"), Some("sg-0svc"));
    assert_eq!(pin("PinnedOnDemandBaseTasks"), Some("3"));
    assert_eq!(pin("PinnedSpotWeight"), Some("0"));
    assert_eq!(pin("PinnedPlatformVersion"), Some("LATEST"));
    assert_eq!(pin("PinnedContainerPort"), Some("8080"));
    let r = judge(Some(&p), &live(Some(GREEN)), eleven());
    assert!(r.passed(), "{r:?}");
    assert!(r.rollout.is_empty());
}

#[test]
fn updates_outside_the_serving_path_pass_as_stack_updates() {
    let p = plan(&template_text(), &with("JvmHeapAlarmPercent", "80"));
    assert!(!p.plan.changes.is_empty());
    assert!(p.plan.changes.iter().all(|c| c.path == Route::StackUpdate));
    assert!(p
        .plan
        .changes
        .iter()
        .any(|c| c.logical_id == "JvmHeapAlarm" && c.cause == "parameter JvmHeapAlarmPercent"));
    assert!(judge(Some(&p), &live(Some(GREEN)), eleven()).passed());
}

#[test]
fn a_task_definition_change_is_a_rollout_the_stack_update_does_not_send_to_the_service() {
    let text = template_text().replace("StopTimeout: 30", "StopTimeout: 45");
    assert_ne!(text, template_text(), "the edit applies");
    let p = plan(&text, &params());
    // The template's intent: the task definition's new setting and the service's new revision.
    let rollout: Vec<String> = p
        .plan
        .on(Route::Rollout)
        .map(|c| format!("{}.{}", c.logical_id, c.property.as_deref().unwrap_or("")))
        .collect();
    assert!(
        rollout
            .contains(&"TaskDefinition.ContainerDefinitions[orderbroker].StopTimeout".to_string()),
        "{rollout:?}"
    );
    assert!(
        rollout.contains(&"Service.TaskDefinition".to_string()),
        "{rollout:?}"
    );
    // What the stack update sends to the service: nothing (the revision is pinned).
    assert!(p.unpinned.is_empty(), "{:?}", p.unpinned);
    let r = judge(Some(&p), &live(Some(BLUE)), eleven());
    assert!(r.passed(), "{r:?}");
    assert!(
        r.notes.iter().any(|n| n.contains("orderbroker carry")),
        "{r:?}"
    );
}

#[test]
fn a_new_image_through_the_stack_is_said_to_be_no_new_version() {
    let p = plan(
        &template_text(),
        &with(
            "ContainerImage",
            "111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker:1.4.2",
        ),
    );
    let image = p
        .plan
        .changes
        .iter()
        .find(|c| c.property.as_deref() == Some("ContainerDefinitions[orderbroker].Image"))
        .expect("the image change is listed");
    assert_eq!(image.path, Route::Rollout);
    assert!(
        image.reason.contains("orderbroker deploy --image"),
        "{}",
        image.reason
    );
    assert!(image.cause.contains("ContainerImage"), "{}", image.cause);
}

#[test]
fn a_listener_rewrite_is_refused_when_codedeploy_swapped_the_target_groups() {
    // A certificate turns the production listener into HTTPS: its default action changes.
    let cert = with(
        "CertificateArn",
        "arn:aws:acm:us-east-2:111122223333:certificate/0f1e2d3c",
    );
    let r = run(&template_text(), &cert, &live(Some(GREEN)));
    // Port, protocol, certificate: CloudFormation updates the listener with every property, so
    // its default action is rewritten to the template's target group too.
    let listener: Vec<&str> = refused(&r)
        .into_iter()
        .filter(|w| w.starts_with("ProductionListener."))
        .collect();
    assert!(listener.contains(&"ProductionListener.Port"), "{r:?}");
    let why = &r
        .refusals
        .iter()
        .find(|x| x.what == "ProductionListener.Port")
        .unwrap()
        .why;
    assert!(why.contains("CertificateArn"), "{why}");
    assert!(why.contains(GREEN) && why.contains(BLUE), "{why}");
    assert!(why.contains("outage"), "{why}");

    // The same change while production is on the template's target group: allowed, noted.
    let r = run(&template_text(), &cert, &live(Some(BLUE)));
    assert!(
        !refused(&r)
            .iter()
            .any(|w| w.starts_with("ProductionListener")),
        "{r:?}"
    );
    assert!(r
        .notes
        .iter()
        .any(|n| n.starts_with("ProductionListener.Port")));

    // Production unknown (no PRIMARY task set): refused, it cannot be told safe.
    let r = run(&template_text(), &cert, &live(None));
    assert!(
        refused(&r)
            .iter()
            .any(|w| w.starts_with("ProductionListener")),
        "{r:?}"
    );
}

#[test]
fn an_edited_listener_action_is_refused_after_a_swap() {
    let text = template_text().replace(
        "      DefaultActions:\n        - Type: forward\n          TargetGroupArn: !Ref GreenTargetGroup",
        "      DefaultActions:\n        - Type: forward\n          TargetGroupArn: !Ref BlueTargetGroup",
    );
    assert_ne!(text, template_text(), "the edit applies");
    let r = run(&text, &params(), &live(Some(GREEN)));
    assert!(
        refused(&r)
            .iter()
            .all(|w| w.starts_with("TestListener.DefaultActions")),
        "{r:?}"
    );
    assert!(!r.passed());
    assert!(r.refusals[0].why.contains("template edit"), "{r:?}");
}

#[test]
fn the_strategy_is_carried_by_a_rollout_and_the_target_group_pair_is_frozen() {
    // The on-demand base: a rollout property of the service (no longer a refusal).
    let p = plan(&template_text(), &with("OnDemandBaseTasks", "4"));
    let strategy: Vec<&str> = p
        .plan
        .changes
        .iter()
        .filter(|c| c.logical_id == "Service")
        .map(|c| c.property.as_deref().unwrap_or(""))
        .collect();
    assert!(
        strategy
            .iter()
            .all(|s| s.starts_with("CapacityProviderStrategy"))
            && !strategy.is_empty(),
        "{strategy:?}"
    );
    assert!(p.unpinned.is_empty());
    let r = judge(Some(&p), &live(Some(BLUE)), eleven());
    assert!(r.passed(), "{r:?}");
    assert!(r
        .rollout
        .iter()
        .any(|c| c.cause == "parameter OnDemandBaseTasks"));
    // MinTasks is a scaling bound only: it updates normally.
    assert!(run(&template_text(), &with("MinTasks", "4"), &live(Some(GREEN))).passed());

    // The container port: the service's (rollout) and the target groups' (frozen: the pair).
    let r = run(
        &template_text(),
        &with("ContainerPort", "8081"),
        &live(Some(BLUE)),
    );
    let got = refused(&r);
    for expected in ["BlueTargetGroup.Port", "GreenTargetGroup.Port"] {
        assert!(got.contains(&expected), "{expected} not in {got:?}");
    }
    let port = r
        .refusals
        .iter()
        .find(|x| x.what == "BlueTargetGroup.Port")
        .unwrap();
    assert!(port.why.contains("procedure:"), "{}", port.why);
    assert!(r.rollout.iter().any(|c| c.logical_id == "Service"
        && c.property.as_deref() == Some("LoadBalancers[orderbroker].ContainerPort")));
}

#[test]
fn removing_a_serving_resource_is_refused() {
    // The translated template without the test listener; what named it names a literal now.
    let old_t = translated(&template_text());
    let mut new_doc = old_t.doc().clone();
    new_doc["Resources"]
        .as_object_mut()
        .unwrap()
        .remove("TestListener");
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                let named = m.get("Ref") == Some(&serde_json::json!("TestListener"))
                    || m.get("Fn::GetAtt").and_then(|a| a.get(0))
                        == Some(&serde_json::json!("TestListener"));
                if named {
                    *v = serde_json::json!("no-test-listener");
                } else {
                    m.values_mut().for_each(scrub);
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut new_doc);
    let new_t = orderbroker::cfn::template::Template::from_json(new_doc).unwrap();
    let phys = physical(&old_t);
    let old_pairs = pairs(&params());
    let mut old = Side::new(&old_t, &old_pairs, "us-east-2");
    old.parameters = old.parameters.with_physical(&phys);
    let p = plan_stack_update(&old, &new_t, &old_pairs, "us-east-2", &phys).unwrap();
    let r = judge(Some(&p), &live(Some(BLUE)), eleven());
    let removal = r
        .refusals
        .iter()
        .find(|x| x.what == "TestListener")
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        removal.why.contains("--accept TestListener"),
        "{}",
        removal.why
    );
    // The deployment group loses its test route: the target-group pair's listeners are frozen.
    assert!(
        refused(&r)
            .iter()
            .any(|w| w.starts_with("DeploymentGroup.LoadBalancerInfo")),
        "{r:?}"
    );
    // Accepting the removal by name turns that refusal into a note; the frozen one stays.
    let r = judge_with(
        Some(&p),
        &live(Some(BLUE)),
        eleven(),
        None,
        &["TestListener".to_string()],
    );
    assert!(!refused(&r).contains(&"TestListener"), "{r:?}");
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("accepted with --accept TestListener")));
    assert!(!r.passed());
}

#[test]
fn an_update_during_a_deployment_is_refused() {
    let p = plan(&template_text(), &params());
    let r = judge_with(
        Some(&p),
        &live(Some(BLUE)),
        eleven(),
        Some(("d-ABC".into(), "InProgress".into())),
        &[],
    );
    assert_eq!(refused(&r), ["deployment"]);
    assert!(r.refusals[0].why.contains("d-ABC"));
}

#[test]
fn an_update_in_a_spike_window_is_refused() {
    let p = plan(&template_text(), &params());
    // 30-minute span: 08:50 reaches the 09:17 raise; 08:40 does not.
    let r = judge(Some(&p), &live(Some(BLUE)), ny("2026-11-30", "08:50"));
    assert_eq!(refused(&r), ["schedule"]);
    assert!(
        r.refusals[0]
            .why
            .contains("open spike window of 2026-11-30"),
        "{r:?}"
    );
    let r = judge(Some(&p), &live(Some(BLUE)), ny("2026-11-30", "08:40"));
    assert!(r.passed(), "{r:?}");
    let r = judge(Some(&p), &live(Some(BLUE)), ny("2026-11-30", "15:50"));
    assert!(r.refusals[0].why.contains("close spike"), "{r:?}");
}

#[test]
fn a_new_stack_has_nothing_to_protect() {
    let r = judge(None, &LiveState::default(), eleven());
    assert!(r.passed());
    assert!(r.notes[0].contains("touches no live traffic"));
    // Inside a spike window a create still touches no live traffic: no refusal that the note
    // would contradict.
    let r = judge(None, &LiveState::default(), ny("2026-12-02", "09:20"));
    assert!(r.passed(), "{r:?}");
    assert_eq!(r.notes.len(), 1, "{r:?}");
}

#[test]
fn a_declared_market_event_is_a_spike_window_for_a_stack_update_too() {
    let p = plan(&template_text(), &params());
    let cpi = crate::support::cpi_event("2026-12-02");
    let at = |hm: &str, events: &[orderbroker::warmup::events::Event]| {
        check(&Inputs {
            plan: Some(&p),
            live: &LiveState::default(),
            in_progress: None,
            accepted: &[],
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

#[test]
fn replacing_what_the_running_service_uses_is_flagged_with_what_refers_to_it() {
    // A new description replaces the tasks' security group (create-only): the old one, and its
    // rules, go in the update's cleanup while the PRIMARY task set still runs in it.
    let text = template_text().replace(
        "GroupDescription: OrderBroker tasks\n",
        "GroupDescription: OrderBroker tasks (v2)\n",
    );
    assert_ne!(text, template_text(), "the edit applies");
    let r = run(&text, &params(), &live(Some(BLUE)));
    let refused = refused(&r);
    for id in [
        "ServiceSecurityGroup",
        "LoadBalancerToTasks",
        "DatabaseFromTasks",
    ] {
        let why = &r
            .refusals
            .iter()
            .find(|x| x.what.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {refused:?}"))
            .why;
        assert!(
            why.contains("the running service uses ServiceSecurityGroup"),
            "{why}"
        );
    }
}
