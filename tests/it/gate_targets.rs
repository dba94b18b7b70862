//! The gates read target health before they send anything: the pure judgement on every state
//! and reason, and the whole gate against aws-smithy-mocks (ELB) and a local server (the
//! listener): a green that becomes healthy late passes and received nothing before; one that
//! never does fails within its budget, having received nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2 as elb;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use elb::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Listener, TargetDescription, TargetGroupTuple,
    TargetHealth, TargetHealthDescription, TargetHealthReasonEnum, TargetHealthStateEnum,
};
use orderbroker::gates::aws::gate;
use orderbroker::gates::targets::{judge, FirstSeen, Readiness, TargetObservation, WaitBudget};
use orderbroker::gates::validation::ValidationConfig;

use crate::support::{order_ok, serve, Behaviour};

const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:listener/app/ob/50dc6c495c0c9188/f2f7dc8efc522ab2";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/ob-green/73e2d6bc24d8a067";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/ob-blue/2453ed029918f21f";

fn obs(id: &str, state: &str, reason: Option<&str>) -> TargetObservation {
    TargetObservation {
        id: id.into(),
        state: state.into(),
        reason: reason.map(str::to_string),
        description: None,
    }
}

const NEVER: Duration = Duration::from_secs(85);
const READY: Duration = Duration::from_secs(145);

fn judged(targets: &[TargetObservation], first_seen: u64, now: u64) -> Readiness {
    let mut seen = FirstSeen::default();
    seen.record(targets, Duration::from_secs(first_seen));
    judge(targets, &seen, Duration::from_secs(now), NEVER, READY)
}

#[test]
fn registration_and_a_slow_jvm_are_waited_out() {
    let initial = [obs(
        "10.0.1.5:8080",
        "initial",
        Some("Elb.RegistrationInProgress"),
    )];
    assert!(matches!(judged(&initial, 0, 10), Readiness::Wait(_)));
    // Unhealthy while the JVM starts: within NeverHealthySeconds it is a slow start.
    let starting = [obs(
        "10.0.1.5:8080",
        "unhealthy",
        Some("Target.FailedHealthChecks"),
    )];
    assert!(matches!(judged(&starting, 0, 84), Readiness::Wait(_)));
    // The ALB's own trouble is transient whatever its age.
    let elb_trouble = [obs("10.0.1.5:8080", "unhealthy", Some("Elb.InternalError"))];
    assert!(matches!(judged(&elb_trouble, 0, 140), Readiness::Wait(_)));
    // Nothing registered yet (green tasks still PROVISIONING).
    assert_eq!(
        judged(&[], 0, 30),
        Readiness::Wait("no target registered yet".into())
    );
    // Draining or unused targets are not the listener's: they do not count as healthy.
    let leaving = [
        obs(
            "10.0.2.9:8080",
            "draining",
            Some("Target.DeregistrationInProgress"),
        ),
        obs("10.0.3.1:8080", "unused", Some("Target.NotInUse")),
    ];
    assert!(matches!(judged(&leaving, 0, 30), Readiness::Wait(_)));
}

#[test]
fn ready_only_when_a_target_is_healthy_and_none_is_still_registering() {
    let one = [obs("10.0.1.5:8080", "healthy", None)];
    assert_eq!(judged(&one, 0, 40), Readiness::Ready);
    let mixed = [
        obs("10.0.1.5:8080", "healthy", None),
        obs(
            "10.0.2.6:8080",
            "initial",
            Some("Elb.InitialHealthChecking"),
        ),
    ];
    assert!(matches!(judged(&mixed, 0, 40), Readiness::Wait(_)));
    let with_slow = [
        obs("10.0.1.5:8080", "healthy", None),
        obs(
            "10.0.2.6:8080",
            "unhealthy",
            Some("Target.FailedHealthChecks"),
        ),
    ];
    assert_eq!(judged(&with_slow, 0, 40), Readiness::Ready);
}

#[test]
fn each_non_transient_reason_fails_past_never_healthy_naming_it() {
    for reason in [
        "Target.FailedHealthChecks",
        "Target.ResponseCodeMismatch",
        "Target.Timeout",
    ] {
        let t = [obs("10.0.1.5:8080", "unhealthy", Some(reason))];
        match judged(&t, 10, 10 + 85) {
            Readiness::Fail(why) => {
                assert!(
                    why.contains(reason) && why.contains("10.0.1.5:8080"),
                    "{why}"
                )
            }
            other => panic!("{reason}: {other:?}"),
        }
        // Counted from when the gate first saw that target, not from the gate's start.
        assert!(matches!(judged(&t, 30, 100), Readiness::Wait(_)));
    }
}

#[test]
fn no_healthy_target_within_the_readiness_budget_fails() {
    match judged(&[], 0, 145) {
        Readiness::Fail(why) => assert!(why.contains("GateReadinessSeconds"), "{why}"),
        other => panic!("{other:?}"),
    }
}

fn listener_forwarding(
    weighted: bool,
) -> elb::operation::describe_listeners::DescribeListenersOutput {
    let action = if weighted {
        // What CodeDeploy may leave after a shift: a weighted forward, 100/0.
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(GREEN)
                            .weight(100)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(BLUE)
                            .weight(0)
                            .build(),
                    )
                    .build(),
            )
            .build()
    } else {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(GREEN)
            .build()
    };
    elb::operation::describe_listeners::DescribeListenersOutput::builder()
        .listeners(
            Listener::builder()
                .listener_arn(LISTENER)
                .port(9090)
                .default_actions(action)
                .build(),
        )
        .build()
}

fn health(
    state: TargetHealthStateEnum,
    reason: Option<TargetHealthReasonEnum>,
) -> elb::operation::describe_target_health::DescribeTargetHealthOutput {
    let mut h = TargetHealth::builder().state(state);
    if let Some(r) = reason {
        h = h.reason(r);
    }
    elb::operation::describe_target_health::DescribeTargetHealthOutput::builder()
        .target_health_descriptions(
            TargetHealthDescription::builder()
                .target(
                    TargetDescription::builder()
                        .id("10.0.1.5")
                        .port(8080)
                        .build(),
                )
                .target_health(h.build())
                .build(),
        )
        .build()
}

/// The listener: /health 200, orders accepted; records when each request arrived.
fn listener_behaviour(arrivals: Arc<Mutex<Vec<Instant>>>) -> Behaviour {
    Arc::new(move |path: &str, n: usize| {
        arrivals.lock().unwrap().push(Instant::now());
        if path.starts_with("/health") {
            (200, "{}".into(), Duration::ZERO)
        } else {
            (200, order_ok(n), Duration::ZERO)
        }
    })
}

fn fast_cfg(url: &str) -> ValidationConfig {
    let mut c = ValidationConfig::for_url(url);
    c.warmup = Duration::from_secs(2);
    c.warmup_interval = Duration::from_millis(10);
    c.orders = 8;
    c
}

/// Runs a whole gate against the mocked ELB and the local listener.
async fn run_gate(
    client: &elb::Client,
    url: &str,
    budget: WaitBudget,
) -> orderbroker::gates::validation::Report {
    gate(
        client,
        &reqwest::Client::new(),
        &fast_cfg(url),
        LISTENER,
        budget,
        "run",
        Instant::now() + Duration::from_secs(10),
    )
    .await
}

/// 5 s polls scaled to 20 ms: a green healthy "at 40 s" is healthy at the 9th reading.
const POLL: Duration = Duration::from_millis(20);

#[tokio::test]
async fn a_green_healthy_at_40_s_passes_and_received_nothing_before() {
    let healthy_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mark = healthy_at.clone();
    let listeners = mock!(elb::Client::describe_listeners)
        .match_requests(|r| r.listener_arns() == [LISTENER.to_string()])
        .then_output(|| listener_forwarding(true));
    let targets = mock!(elb::Client::describe_target_health)
        .match_requests(|r| r.target_group_arn() == Some(GREEN))
        .sequence()
        .output(|| {
            health(
                TargetHealthStateEnum::Initial,
                Some(TargetHealthReasonEnum::RegistrationInProgress),
            )
        })
        .times(2)
        .output(|| {
            health(
                TargetHealthStateEnum::Unhealthy,
                Some(TargetHealthReasonEnum::FailedHealthChecks),
            )
        })
        .times(6)
        .output(move || {
            mark.lock().unwrap().get_or_insert_with(Instant::now);
            health(TargetHealthStateEnum::Healthy, None)
        })
        .repeatedly()
        .build();
    let client = mock_client!(elb, RuleMode::MatchAny, [&listeners, &targets]);
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = serve(listener_behaviour(arrivals.clone())).await;
    let budget = WaitBudget {
        never_healthy: Duration::from_secs(2),
        readiness: Duration::from_secs(3),
        poll: POLL,
    };
    let report = run_gate(&client, &server.url, budget).await;
    assert!(report.verdict.passed(), "{:?}", report.verdict);
    let wait = report.targets.as_ref().unwrap();
    assert!(wait.ready);
    assert_eq!(
        wait.polls, 9,
        "2 initial + 6 unhealthy readings, then healthy"
    );
    assert_eq!(
        wait.target_groups,
        vec![GREEN.to_string()],
        "weight 0 ignored"
    );
    let healthy_at = healthy_at.lock().unwrap().expect("healthy was reported");
    let arrivals = arrivals.lock().unwrap();
    assert!(!arrivals.is_empty());
    assert!(
        arrivals.iter().all(|a| *a >= healthy_at),
        "a request reached green before its target was healthy"
    );
    assert_eq!(report.sent, 8);
}

#[tokio::test]
async fn a_green_that_never_listens_fails_within_its_budget_having_received_nothing() {
    let listeners =
        mock!(elb::Client::describe_listeners).then_output(|| listener_forwarding(false));
    let targets = mock!(elb::Client::describe_target_health).then_output(|| {
        health(
            TargetHealthStateEnum::Unhealthy,
            Some(TargetHealthReasonEnum::FailedHealthChecks),
        )
    });
    let client = mock_client!(elb, RuleMode::MatchAny, [&listeners, &targets]);
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = serve(listener_behaviour(arrivals.clone())).await;
    let budget = WaitBudget {
        never_healthy: Duration::from_millis(300),
        readiness: Duration::from_secs(2),
        poll: POLL,
    };
    let started = Instant::now();
    let report = run_gate(&client, &server.url, budget).await;
    let took = started.elapsed();
    assert!(!report.verdict.passed());
    let why = format!("{:?}", report.verdict);
    assert!(why.contains("Target.FailedHealthChecks"), "{why}");
    // Failed at NeverHealthySeconds (+ a poll), long before the readiness budget.
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(report.sent, 0);
    assert!(
        arrivals.lock().unwrap().is_empty(),
        "nothing sent to a green that is not healthy"
    );
}

#[tokio::test]
async fn unreadable_target_health_never_passes() {
    let listeners = mock!(elb::Client::describe_listeners).then_error(|| {
        elb::operation::describe_listeners::DescribeListenersError::ListenerNotFoundException(
            elb::types::error::ListenerNotFoundException::builder()
                .message("One or more listeners not found")
                .build(),
        )
    });
    let client = mock_client!(elb, RuleMode::MatchAny, [&listeners]);
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = serve(listener_behaviour(arrivals.clone())).await;
    let report = run_gate(
        &client,
        &server.url,
        WaitBudget {
            never_healthy: Duration::from_millis(300),
            readiness: Duration::from_millis(200),
            poll: POLL,
        },
    )
    .await;
    assert!(!report.verdict.passed());
    assert!(format!("{:?}", report.verdict).contains("not readable"));
    assert!(arrivals.lock().unwrap().is_empty());
}
