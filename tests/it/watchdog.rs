//! The deployment watchdog against real-shaped ECS Task State Change events (events/) and
//! mocked ECS, CodeDeploy and ELB: a green task stopped for a counted cause during a deployment
//! -> exactly one StopDeployment for that id after N; everything else -> no call.

use std::time::{Duration, Instant};

use aws_sdk_codedeploy as cd;
use aws_sdk_ecs as ecs;
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime as SmithyTime;
use orderbroker::watchdog::aws::{handle, Memory, WatchdogClients, WatchdogConfig};
use orderbroker::watchdog::{classify, parse_event, StopClass};
use serde_json::{json, Value};

use crate::support::event_json;

const CLUSTER: &str = "orderbroker-Cluster-9sJrSuvDvEvY";
const SERVICE: &str = "orderbroker-Service-Xk2PqA9bT3Zr";
const GREEN_SET: &str = "ecs-svc/8402740312365092165";
const BLUE_SET: &str = "ecs-svc/1130989462290150923";
const GREEN_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:8";
const BLUE_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:7";
const NEW: &str = "d-7QXH6BLT3";
const OLD: &str = "d-2ZK9R4E1A";
const GREEN_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/orderb-Green-1XQ4Z0KJ3W9YB/73e2d6bc24d8a067";

fn cfg() -> WatchdogConfig {
    WatchdogConfig {
        cluster: CLUSTER.into(),
        service: SERVICE.into(),
        application: "orderbroker-CodeDeployApplication-1".into(),
        deployment_group: "orderbroker-DeploymentGroup-1".into(),
        never_healthy: chrono::Duration::seconds(85),
        counted_stops: 2,
        readiness: chrono::Duration::seconds(145),
        hook_timeout: chrono::Duration::seconds(190),
    }
}

fn task_arn(n: usize) -> String {
    format!("arn:aws:ecs:us-east-2:111122223333:task/{CLUSTER}/{n:032x}")
}

/// The world the mocks describe.
#[derive(Clone)]
struct World {
    /// The service's task sets: (id, externalId, task definition).
    task_sets: Vec<(&'static str, &'static str, &'static str)>,
    /// Deployment status by id, and whether a stop is already under way.
    deployments: Vec<(&'static str, &'static str, bool)>,
    /// Stopped tasks of the green set as ECS lists them: the event JSON each came from.
    stopped: Vec<Value>,
    /// In-progress deployments (ListDeployments), when the green task set was created, healthy
    /// green targets.
    in_progress: Vec<&'static str>,
    running_since: Option<chrono::DateTime<chrono::Utc>>,
    healthy_targets: usize,
    /// The deployment's lifecycle events: (name, status, started this long ago).
    lifecycle: Vec<(&'static str, &'static str, i64)>,
    /// ListDeploymentTargets answers DeploymentNotStartedException.
    not_started: bool,
}

impl Default for World {
    fn default() -> Self {
        World {
            task_sets: vec![(BLUE_SET, OLD, BLUE_TD), (GREEN_SET, NEW, GREEN_TD)],
            deployments: vec![(NEW, "InProgress", false), (OLD, "Succeeded", false)],
            stopped: vec![],
            in_progress: vec![NEW],
            running_since: None,
            healthy_targets: 0,
            lifecycle: vec![],
            not_started: false,
        }
    }
}

fn smithy(t: Option<&str>) -> Option<SmithyTime> {
    t.map(|s| {
        let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
        SmithyTime::from_millis(t.timestamp_millis())
    })
}

/// An ECS `Task` as DescribeTasks returns it, from an event's detail.
fn task_from_event(e: &Value) -> ecs::types::Task {
    let d = &e["detail"];
    let mut t = ecs::types::Task::builder()
        .task_arn(d["taskArn"].as_str().unwrap())
        .cluster_arn(d["clusterArn"].as_str().unwrap())
        .group(d["group"].as_str().unwrap())
        .last_status(d["lastStatus"].as_str().unwrap())
        .started_by(d["startedBy"].as_str().unwrap())
        .task_definition_arn(d["taskDefinitionArn"].as_str().unwrap())
        .version(d["version"].as_i64().unwrap());
    if let Some(c) = d["stopCode"].as_str() {
        t = t.stop_code(ecs::types::TaskStopCode::from(c));
    }
    if let Some(r) = d["stoppedReason"].as_str() {
        t = t.stopped_reason(r);
    }
    if let Some(s) = smithy(d["startedAt"].as_str()) {
        t = t.started_at(s);
    }
    if let Some(s) = smithy(d["stoppedAt"].as_str()) {
        t = t.stopped_at(s);
    }
    for c in d["containers"].as_array().unwrap() {
        let mut k = ecs::types::Container::builder().name(c["name"].as_str().unwrap());
        if let Some(code) = c["exitCode"].as_i64() {
            k = k.exit_code(code as i32);
        }
        if let Some(r) = c["reason"].as_str() {
            k = k.reason(r);
        }
        t = t.containers(k.build());
    }
    t.build()
}

struct Mocks {
    stop: Rule,
    rules_ecs: Vec<Rule>,
    rules_cd: Vec<Rule>,
    rules_elb: Vec<Rule>,
}

fn mocks(w: &World) -> Mocks {
    let sets = w.task_sets.clone();
    let created = w.running_since;
    let describe_services = mock!(ecs::Client::describe_services).then_output(move || {
        let mut s = ecs::types::Service::builder().service_name(SERVICE);
        for (id, ext, td) in &sets {
            let mut set = ecs::types::TaskSet::builder()
                .id(*id)
                .external_id(*ext)
                .task_definition(*td)
                .status(if *id == BLUE_SET { "PRIMARY" } else { "ACTIVE" })
                .load_balancers(
                    ecs::types::LoadBalancer::builder()
                        .target_group_arn(GREEN_TG)
                        .build(),
                );
            if let (Some(c), true) = (created, *id == GREEN_SET) {
                set = set.created_at(SmithyTime::from_millis(c.timestamp_millis()));
            }
            s = s.task_sets(set.build());
        }
        ecs::operation::describe_services::DescribeServicesOutput::builder()
            .services(s.build())
            .build()
    });
    let stopped = w.stopped.clone();
    // The stopped tasks of the revision's family, never by startedBy or service name (what those
    // return for task-set tasks is not documented).
    let list_stopped = mock!(ecs::Client::list_tasks)
        .match_requests(|r| {
            r.desired_status() == Some(&ecs::types::DesiredStatus::Stopped)
                && r.family() == Some("orderbroker-orderbroker")
                && r.service_name().is_none()
                && r.started_by().is_none()
        })
        .then_output(move || {
            let mut o = ecs::operation::list_tasks::ListTasksOutput::builder();
            for e in &stopped {
                o = o.task_arns(e["detail"]["taskArn"].as_str().unwrap());
            }
            o.build()
        });
    let stopped = w.stopped.clone();
    let describe_tasks = mock!(ecs::Client::describe_tasks).then_output(move || {
        let mut o = ecs::operation::describe_tasks::DescribeTasksOutput::builder();
        for e in &stopped {
            o = o.tasks(task_from_event(e));
        }
        o.build()
    });
    let deployments = w.deployments.clone();
    // Any other id: CodeDeploy knows no such deployment (no deployment info).
    let get_deployment = mock!(cd::Client::get_deployment)
        .then_output(|| cd::operation::get_deployment::GetDeploymentOutput::builder().build());
    let mut rules_cd: Vec<Rule> = deployments
        .iter()
        .map(|(id, status, stopping)| {
            let (id, status, stopping) = (*id, *status, *stopping);
            mock!(cd::Client::get_deployment)
                .match_requests(move |r| r.deployment_id() == Some(id))
                .then_output(move || {
                    let mut info = cd::types::DeploymentInfo::builder()
                        .deployment_id(id)
                        .status(cd::types::DeploymentStatus::from(status));
                    if stopping {
                        info = info.rollback_info(
                            cd::types::RollbackInfo::builder()
                                .rollback_deployment_id("d-ROLLBACK1")
                                .build(),
                        );
                    }
                    cd::operation::get_deployment::GetDeploymentOutput::builder()
                        .deployment_info(info.build())
                        .build()
                })
        })
        .collect();
    rules_cd.push(get_deployment);
    let in_progress = w.in_progress.clone();
    rules_cd.push(mock!(cd::Client::list_deployments).then_output(move || {
        cd::operation::list_deployments::ListDeploymentsOutput::builder()
            .set_deployments(Some(in_progress.iter().map(|s| s.to_string()).collect()))
            .build()
    }));
    if w.not_started {
        rules_cd.push(
            mock!(cd::Client::list_deployment_targets).then_error(|| {
                cd::operation::list_deployment_targets::ListDeploymentTargetsError::DeploymentNotStartedException(
                    cd::types::error::DeploymentNotStartedException::builder().build(),
                )
            }),
        );
    } else {
        rules_cd.extend(lifecycle_mocks(&w.lifecycle));
    }
    let stop = mock!(cd::Client::stop_deployment)
        .match_requests(|r| {
            r.deployment_id() == Some(NEW) && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| {
            cd::operation::stop_deployment::StopDeploymentOutput::builder()
                .status(cd::types::StopStatus::Pending)
                .build()
        });
    let healthy = w.healthy_targets;
    let health = mock!(elb::Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(GREEN_TG))
        .then_output(move || {
            let mut o =
                elb::operation::describe_target_health::DescribeTargetHealthOutput::builder();
            for i in 0..3 {
                let state = if i < healthy { "healthy" } else { "unhealthy" };
                o = o.target_health_descriptions(
                    elb::types::TargetHealthDescription::builder()
                        .target(
                            elb::types::TargetDescription::builder()
                                .id(format!("10.0.1.{i}"))
                                .port(8080)
                                .build(),
                        )
                        .target_health(
                            elb::types::TargetHealth::builder()
                                .state(elb::types::TargetHealthStateEnum::from(state))
                                .build(),
                        )
                        .build(),
                );
            }
            o.build()
        });
    Mocks {
        stop,
        rules_ecs: vec![describe_services, list_stopped, describe_tasks],
        rules_cd,
        rules_elb: vec![health],
    }
}

/// ListDeploymentTargets (the service's one ECS target) and BatchGetDeploymentTargets with its
/// lifecycle events.
fn lifecycle_mocks(events: &[(&'static str, &'static str, i64)]) -> Vec<Rule> {
    let target = format!("{CLUSTER}:{SERVICE}");
    let ids = target.clone();
    let list = mock!(cd::Client::list_deployment_targets)
        .match_requests(|r| r.deployment_id() == Some(NEW))
        .then_output(move || {
            cd::operation::list_deployment_targets::ListDeploymentTargetsOutput::builder()
                .target_ids(ids.clone())
                .build()
        });
    let events = events.to_vec();
    let now = chrono::Utc::now();
    let batch = mock!(cd::Client::batch_get_deployment_targets)
        .match_requests(move |r| {
            r.deployment_id() == Some(NEW) && r.target_ids() == [target.clone()]
        })
        .then_output(move || {
            let mut ecs = cd::types::EcsTarget::builder().target_id(format!("{CLUSTER}:{SERVICE}"));
            for (name, status, ago) in &events {
                let start = (now - chrono::Duration::seconds(*ago)).timestamp();
                ecs = ecs.lifecycle_events(
                    cd::types::LifecycleEvent::builder()
                        .lifecycle_event_name(*name)
                        .status(cd::types::LifecycleEventStatus::from(*status))
                        .start_time(SmithyTime::from_secs(start))
                        .build(),
                );
            }
            cd::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput::builder()
                .deployment_targets(
                    cd::types::DeploymentTarget::builder()
                        .deployment_target_type(cd::types::DeploymentTargetType::EcsTarget)
                        .ecs_target(ecs.build())
                        .build(),
                )
                .build()
        });
    vec![list, batch]
}

fn clients(m: &Mocks) -> WatchdogClients {
    let mut cd_rules: Vec<&Rule> = m.rules_cd.iter().collect();
    cd_rules.push(&m.stop);
    WatchdogClients {
        ecs: mock_client!(ecs, RuleMode::MatchAny, m.rules_ecs.iter()),
        codedeploy: mock_client!(cd, RuleMode::MatchAny, cd_rules),
        elb: mock_client!(elb, RuleMode::MatchAny, m.rules_elb.iter()),
    }
}

fn with_task(mut e: Value, n: usize) -> Value {
    let arn = task_arn(n);
    e["detail"]["taskArn"] = json!(arn);
    e["resources"] = json!([arn]);
    e
}

async fn run(w: &World, events: &[Value]) -> (usize, Vec<String>) {
    let m = mocks(w);
    let c = clients(&m);
    let memory = Memory::default();
    let mut handled = Vec::new();
    for e in events {
        let o = handle(
            &c,
            &cfg(),
            &memory,
            e,
            Instant::now() + Duration::from_secs(6),
        )
        .await
        .unwrap();
        handled.push(format!("{}: {}", o.handled, o.detail));
    }
    (m.stop.num_calls(), handled)
}

#[test]
fn every_task_event_fixture_parses_the_recorded_one_included() {
    // events/ecs-task-stopped-*.json: the documented shape, and the real event `make live-test`
    // records (events/ecs-task-stopped-recorded.json) once a stack has run.
    let mut n = 0;
    for entry in std::fs::read_dir(crate::support::root().join("events")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.starts_with("ecs-task-stopped-") && name.ends_with(".json") {
            let t = parse_event(&event_json(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.last_status, "STOPPED", "{name}");
            let _ = classify(&t, chrono::Duration::seconds(85));
            n += 1;
        }
    }
    assert!(n >= 4, "{n} fixtures");
}

#[test]
fn the_fixtures_classify_as_their_causes() {
    let nh = chrono::Duration::seconds(85);
    let c = |name: &str| classify(&parse_event(&event_json(name)).unwrap(), nh);
    assert!(
        matches!(c("ecs-task-stopped-essential-exit.json"), StopClass::Counted(w) if w.contains("code 1"))
    );
    assert!(
        matches!(c("ecs-task-stopped-image-missing.json"), StopClass::Counted(w) if w.contains("image or platform missing"))
    );
    assert!(
        matches!(c("ecs-task-stopped-elb-health.json"), StopClass::Counted(w) if w.contains("ELB health checks"))
    );
    assert!(matches!(
        c("ecs-task-stopped-spot.json"),
        StopClass::Ignored(_)
    ));
    // A throttled pull is transient, never counted.
    let mut e = event_json("ecs-task-stopped-image-missing.json");
    e["detail"]["stoppedReason"] =
        json!("CannotPullContainerError: failed to resolve ref: toomanyrequests: Rate exceeded");
    e["detail"]["containers"][0]["reason"] = json!("toomanyrequests");
    assert!(!classify(&parse_event(&e).unwrap(), nh).counted());
    // Exit code 0 is not a crash.
    let mut e = event_json("ecs-task-stopped-essential-exit.json");
    e["detail"]["containers"][0]["exitCode"] = json!(0);
    assert!(!classify(&parse_event(&e).unwrap(), nh).counted());
    // A health-check stop before NeverHealthySeconds of running is not counted.
    let mut e = event_json("ecs-task-stopped-elb-health.json");
    e["detail"]["stoppedAt"] = json!("2026-12-01T16:02:30.000Z");
    assert!(!classify(&parse_event(&e).unwrap(), nh).counted());
}

#[tokio::test]
async fn each_counted_cause_stops_the_deployment_once_after_n() {
    for fixture in [
        "ecs-task-stopped-essential-exit.json",
        "ecs-task-stopped-image-missing.json",
        "ecs-task-stopped-elb-health.json",
    ] {
        let first = with_task(event_json(fixture), 1);
        let second = with_task(event_json(fixture), 2);
        // After the first stop ECS lists one; after the second, two.
        let w1 = World {
            stopped: vec![first.clone()],
            ..World::default()
        };
        let (calls, handled) = run(&w1, std::slice::from_ref(&first)).await;
        assert_eq!(calls, 0, "{fixture}: 1 of 2: {handled:?}");
        let w2 = World {
            stopped: vec![first.clone(), second.clone()],
            ..World::default()
        };
        let (calls, handled) = run(&w2, &[second.clone(), second.clone(), first.clone()]).await;
        assert_eq!(
            calls, 1,
            "{fixture}: exactly one StopDeployment: {handled:?}"
        );
        assert!(handled[0].starts_with("stopped"), "{handled:?}");
        assert!(handled[1].starts_with("duplicate"), "{handled:?}");
    }
}

#[tokio::test]
async fn nothing_else_stops_a_deployment() {
    let counted = with_task(event_json("ecs-task-stopped-essential-exit.json"), 1);
    let two_counted = World {
        stopped: vec![
            counted.clone(),
            with_task(event_json("ecs-task-stopped-essential-exit.json"), 2),
        ],
        ..World::default()
    };
    let mut cases: Vec<(&str, World, Value)> = Vec::new();
    // A blue task: its task set's deployment is long finished.
    let mut blue = counted.clone();
    blue["detail"]["startedBy"] = json!(BLUE_SET);
    blue["detail"]["taskDefinitionArn"] = json!(BLUE_TD);
    cases.push(("blue task", two_counted.clone(), blue));
    // Another service of the cluster.
    let mut other = counted.clone();
    other["detail"]["group"] = json!("service:risk-engine");
    cases.push(("other service", two_counted.clone(), other));
    // Scale-in (same stop code as a health replacement, another reason).
    let mut scale_in = counted.clone();
    scale_in["detail"]["stopCode"] = json!("ServiceSchedulerInitiated");
    scale_in["detail"]["stoppedReason"] =
        json!("Scaling activity initiated by (deployment ecs-svc/8402740312365092165)");
    cases.push(("scale-in", two_counted.clone(), scale_in));
    cases.push((
        "spot interruption",
        two_counted.clone(),
        with_task(event_json("ecs-task-stopped-spot.json"), 3),
    ));
    let mut operator = counted.clone();
    operator["detail"]["stopCode"] = json!("UserInitiated");
    operator["detail"]["stoppedReason"] = json!("Task stopped by user");
    cases.push(("operator stop", two_counted.clone(), operator));
    // The rollback's own deletion: the green task set is gone from the service.
    let gone = World {
        task_sets: vec![(BLUE_SET, OLD, BLUE_TD)],
        ..two_counted.clone()
    };
    cases.push(("rollback's own deletion", gone, counted.clone()));
    // No deployment in progress / already stopping.
    let finished = World {
        deployments: vec![(NEW, "Succeeded", false), (OLD, "Succeeded", false)],
        ..two_counted.clone()
    };
    cases.push(("no deployment in progress", finished, counted.clone()));
    let stopping = World {
        deployments: vec![(NEW, "InProgress", true), (OLD, "Succeeded", false)],
        ..two_counted.clone()
    };
    cases.push(("deployment already stopping", stopping, counted.clone()));
    // startedBy matches the green set but the task definition does not: the join is not trusted.
    let mut mismatch = counted.clone();
    mismatch["detail"]["taskDefinitionArn"] = json!(BLUE_TD);
    cases.push(("task definition mismatch", two_counted.clone(), mismatch));
    // A malformed event.
    let mut malformed = counted.clone();
    malformed["detail"]
        .as_object_mut()
        .unwrap()
        .remove("taskArn");
    cases.push(("malformed", two_counted.clone(), malformed));
    cases.push(("not a task event", two_counted.clone(), json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}})));
    for (name, world, event) in cases {
        let (calls, handled) = run(&world, &[event]).await;
        assert_eq!(calls, 0, "{name}: {handled:?}");
    }
}

#[tokio::test]
async fn an_out_of_order_older_version_is_ignored() {
    let newer = with_task(event_json("ecs-task-stopped-essential-exit.json"), 1);
    let mut older = newer.clone();
    older["detail"]["version"] = json!(3);
    let world = World {
        stopped: vec![
            newer.clone(),
            with_task(event_json("ecs-task-stopped-essential-exit.json"), 2),
        ],
        deployments: vec![(NEW, "InProgress", false)],
        ..World::default()
    };
    let (calls, handled) = run(&world, &[newer, older]).await;
    assert_eq!(calls, 1, "{handled:?}");
    assert!(handled[1].starts_with("duplicate"), "{handled:?}");
}

#[tokio::test]
async fn the_minute_check_stops_a_green_that_never_gets_a_healthy_target() {
    let check = json!({"trigger": "check"});
    // Green's task set created 200 s ago, no healthy target: past GateReadinessSeconds (145).
    let never = World {
        running_since: Some(chrono::Utc::now() - chrono::Duration::seconds(200)),
        ..World::default()
    };
    let (calls, handled) = run(&never, std::slice::from_ref(&check)).await;
    assert_eq!(calls, 1, "{handled:?}");
    // Healthy, or still within the budget, or no deployment: nothing.
    let healthy = World {
        healthy_targets: 1,
        ..never.clone()
    };
    assert_eq!(run(&healthy, std::slice::from_ref(&check)).await.0, 0);
    let young = World {
        running_since: Some(chrono::Utc::now() - chrono::Duration::seconds(30)),
        ..World::default()
    };
    let (calls, handled) = run(&young, std::slice::from_ref(&check)).await;
    assert_eq!(calls, 0);
    assert!(handled[0].starts_with("waiting"), "{handled:?}");
    let idle = World {
        in_progress: vec![],
        ..never
    };
    let (calls, handled) = run(&idle, &[check]).await;
    assert_eq!(calls, 0);
    assert!(handled[0].starts_with("idle"), "{handled:?}");
}

#[tokio::test]
async fn the_minute_check_stops_a_deployment_whose_hook_never_reports() {
    let check = json!({"trigger": "check"});
    // Green healthy, the canary long under way (not a hook), the first hook silent for
    // HookTimeoutSeconds (190) + 60 s + 1.
    let silent = World {
        healthy_targets: 3,
        running_since: Some(chrono::Utc::now() - chrono::Duration::seconds(400)),
        lifecycle: vec![
            ("Install", "Succeeded", 400),
            ("AfterAllowTestTraffic", "InProgress", 251),
        ],
        ..World::default()
    };
    let (calls, handled) = run(&silent, std::slice::from_ref(&check)).await;
    assert_eq!(calls, 1, "{handled:?}");
    assert!(handled[0].contains("AfterAllowTestTraffic"), "{handled:?}");
    // A hook that reported, an event that is not a hook, a hook within its time: nothing.
    let fine = World {
        lifecycle: vec![
            ("AfterAllowTestTraffic", "Succeeded", 900),
            ("BeforeAllowTraffic", "Succeeded", 800),
            ("AllowTraffic", "InProgress", 700),
            ("AfterAllowTraffic", "InProgress", 100),
        ],
        ..silent.clone()
    };
    let (calls, handled) = run(&fine, std::slice::from_ref(&check)).await;
    assert_eq!(calls, 0, "{handled:?}");
    // A deployment not started yet (documented DeploymentNotStartedException): no events, no
    // error, the health check goes on.
    let early = World {
        not_started: true,
        ..silent
    };
    let (calls, handled) = run(&early, std::slice::from_ref(&check)).await;
    assert_eq!(calls, 0, "{handled:?}");
    assert!(handled[0].starts_with("healthy"), "{handled:?}");
}

#[test]
fn hook_silence_is_judged_on_hook_events_only() {
    use orderbroker::watchdog::{hook_verdict, HookVerdict, LifecycleView};
    let now = chrono::Utc::now();
    let ev = |name: &str, status: &str, ago: i64| LifecycleView {
        name: name.into(),
        status: status.into(),
        start: Some(now - chrono::Duration::seconds(ago)),
    };
    let hooks = [
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ];
    let timeout = chrono::Duration::seconds(190);
    let v = hook_verdict(
        &[ev("AllowTraffic", "InProgress", 3000)],
        &hooks,
        now,
        timeout,
    );
    assert_eq!(v, HookVerdict::Waiting(None));
    let v = hook_verdict(
        &[ev("BeforeAllowTraffic", "InProgress", 249)],
        &hooks,
        now,
        timeout,
    );
    assert_eq!(
        v,
        HookVerdict::Waiting(Some(now + chrono::Duration::seconds(1)))
    );
    let v = hook_verdict(
        &[ev("BeforeAllowTraffic", "InProgress", 250)],
        &hooks,
        now,
        timeout,
    );
    assert!(matches!(v, HookVerdict::Silent(_)), "{v:?}");
    let v = hook_verdict(
        &[ev("BeforeAllowTraffic", "Succeeded", 5000)],
        &hooks,
        now,
        timeout,
    );
    assert_eq!(v, HookVerdict::Waiting(None));
    let no_start = LifecycleView {
        start: None,
        ..ev("AfterAllowTraffic", "InProgress", 0)
    };
    assert_eq!(
        hook_verdict(&[no_start], &hooks, now, timeout),
        HookVerdict::Waiting(None)
    );
}

#[test]
fn configuration_errors_name_the_variable() {
    let e = WatchdogConfig::from_env(|k| (k == "CLUSTER").then(|| "c".to_string())).unwrap_err();
    assert!(e.to_string().contains("SERVICE_NAME"), "{e}");
    // The required names set, the numbers given: the first missing or malformed is named.
    let fails_on = |numbers: &[(&str, &str)]| {
        let numbers: Vec<(String, String)> = numbers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WatchdogConfig::from_env(|k| match k {
            "CLUSTER" | "SERVICE_NAME" | "APPLICATION_NAME" | "DEPLOYMENT_GROUP" => {
                Some("x".to_string())
            }
            _ => numbers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        })
        .unwrap_err()
        .to_string()
    };
    let e = fails_on(&[("NEVER_HEALTHY_SECONDS", "soon")]);
    assert!(e.contains("NEVER_HEALTHY_SECONDS"), "{e}");
    let e = fails_on(&[("NEVER_HEALTHY_SECONDS", "85")]);
    assert!(e.contains("READINESS_SECONDS"), "{e}");
    let e = fails_on(&[("NEVER_HEALTHY_SECONDS", "85"), ("READINESS_SECONDS", "85")]);
    assert!(e.contains("HOOK_TIMEOUT_SECONDS"), "{e}");
}

#[tokio::test]
async fn a_deployment_another_invocation_already_stopped_is_not_an_error() {
    // Two containers may decide at once; the second StopDeployment finds it completed.
    let first = with_task(event_json("ecs-task-stopped-essential-exit.json"), 1);
    let world = World {
        stopped: vec![
            first.clone(),
            with_task(event_json("ecs-task-stopped-essential-exit.json"), 2),
        ],
        ..World::default()
    };
    let mut m = mocks(&world);
    m.stop = mock!(cd::Client::stop_deployment).then_error(|| {
        cd::operation::stop_deployment::StopDeploymentError::DeploymentAlreadyCompletedException(
            cd::types::error::DeploymentAlreadyCompletedException::builder()
                .message("The deployment d-7QXH6BLT3 is already completed.")
                .build(),
        )
    });
    let c = clients(&m);
    let o = handle(
        &c,
        &cfg(),
        &Memory::default(),
        &first,
        Instant::now() + Duration::from_secs(6),
    )
    .await
    .expect("not an error: nothing to retry, nothing to page");
    assert_eq!(o.handled, "stopped");
    assert_eq!(m.stop.num_calls(), 1);
}

#[tokio::test]
async fn the_join_reads_the_task_definition_never_started_by() {
    // Two green crashes whose startedBy names no task set (or is absent): still green's, by
    // their revision, and the second stops the deployment.
    let mut a = with_task(event_json("ecs-task-stopped-essential-exit.json"), 1);
    a["detail"]["startedBy"] = json!("ecs-svc/0000000000000000000");
    let mut b = with_task(event_json("ecs-task-stopped-essential-exit.json"), 2);
    b["detail"]["startedBy"] = json!("ecs-svc/0000000000000000001");
    let world = World {
        stopped: vec![a.clone(), b.clone()],
        ..World::default()
    };
    let (calls, handled) = run(&world, &[b]).await;
    assert_eq!(calls, 1, "{handled:?}");
    // Two task sets on one revision: the task cannot be told to one, nothing is done.
    let same = World {
        task_sets: vec![(BLUE_SET, OLD, GREEN_TD), (GREEN_SET, NEW, GREEN_TD)],
        stopped: vec![a.clone()],
        ..World::default()
    };
    let (calls, handled) = run(&same, &[a]).await;
    assert_eq!(calls, 0);
    assert!(handled[0].starts_with("unmatched"), "{handled:?}");
}

#[tokio::test]
async fn only_the_green_task_sets_stops_count() {
    // The service's stopped tasks include a blue one that crashed too: it is not green's.
    let green = with_task(event_json("ecs-task-stopped-essential-exit.json"), 1);
    let mut blue = with_task(event_json("ecs-task-stopped-essential-exit.json"), 2);
    blue["detail"]["startedBy"] = json!(BLUE_SET);
    blue["detail"]["taskDefinitionArn"] = json!(BLUE_TD);
    let world = World {
        stopped: vec![green.clone(), blue],
        ..World::default()
    };
    let (calls, handled) = run(&world, &[green]).await;
    assert_eq!(calls, 0, "1 of 2 counted green stops: {handled:?}");
    assert!(handled[0].contains("1 of 2"), "{handled:?}");
}
