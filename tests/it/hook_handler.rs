//! The CodeDeploy hook: exactly one status, with the right ids, on every path
//! (aws-smithy-mocks for CodeDeploy; the validation is injected so panics and deadlines can be
//! provoked).

use std::time::{Duration, Instant};

use crate::support::event_json as event;
use aws_sdk_codedeploy as cd;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use cd::operation::put_lifecycle_event_hook_execution_status::{
    PutLifecycleEventHookExecutionStatusError, PutLifecycleEventHookExecutionStatusOutput,
};
use cd::types::LifecycleEventStatus;
use orderbroker::gates::hook::{emf_line, handle, report_failure, HookConfig, HookError, Listener};
use orderbroker::gates::targets::WaitBudget;
use orderbroker::gates::validation::{HealthOutcome, Report, ValidationConfig, Verdict};

fn hook_id() -> String {
    event("codedeploy-lifecycle-hook.json")["LifecycleEventHookExecutionId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn status_rule(expected: LifecycleEventStatus) -> Rule {
    let id = hook_id();
    mock!(cd::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(move |r| {
            r.deployment_id() == Some("d-7QXH6BLT3")
                && r.lifecycle_event_hook_execution_id() == Some(id.as_str())
                && r.status() == Some(&expected)
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build())
}

/// Any status call that does not match the expected one fails the test through this rule.
fn unexpected() -> Rule {
    mock!(cd::Client::put_lifecycle_event_hook_execution_status).then_error(|| {
        PutLifecycleEventHookExecutionStatusError::InvalidLifecycleEventHookExecutionStatusException(
            cd::types::error::InvalidLifecycleEventHookExecutionStatusException::builder()
                .message("unexpected status call")
                .build(),
        )
    })
}

fn client(rules: &[&Rule]) -> cd::Client {
    mock_client!(cd, RuleMode::MatchAny, rules.iter().copied())
}

fn cfg() -> HookConfig {
    HookConfig {
        listener: Listener::Test,
        stack: "orderbroker".into(),
        validation: ValidationConfig::for_url("http://internal-ob:9090"),
        listener_arn: "arn:aws:elasticloadbalancing:us-east-2:111122223333:listener/app/ob/50dc6c495c0c9188/0467ef3c8400ae65".into(),
        wait: WaitBudget {
            never_healthy: Duration::from_secs(85),
            readiness: Duration::from_secs(145),
            poll: Duration::from_secs(5),
        },
        report_reserve: Duration::from_secs(2),
        max_run: Duration::from_secs(150),
    }
}

fn report(verdict: Verdict) -> Report {
    Report {
        url: "http://internal-ob:9090".into(),
        verdict,
        health: HealthOutcome {
            healthy: true,
            attempts: 3,
            waited_ms: 400,
            last_status: Some(200),
            last_error: None,
        },
        planned: 20,
        sent: 20,
        succeeded: 20,
        failed: 0,
        p50_ms: 12,
        p99_ms: 40,
        max_ms: 41,
        stopped_early: false,
        duration_ms: 900,
        failures: vec![],
        targets: None,
    }
}

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn a_passing_validation_reports_succeeded_once() {
    let ok = status_rule(LifecycleEventStatus::Succeeded);
    let other = unexpected();
    let c = client(&[&ok, &other]);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Pass) },
    )
    .await
    .unwrap();
    assert!(out.succeeded);
    assert_eq!((ok.num_calls(), other.num_calls()), (1, 0));
    assert_eq!(out.status_attempts, 1);
}

#[tokio::test]
async fn a_failing_validation_reports_failed_once() {
    let failed = status_rule(LifecycleEventStatus::Failed);
    let other = unexpected();
    let c = client(&[&failed, &other]);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Fail("3 of 20 synthetic orders failed".into())) },
    )
    .await
    .unwrap();
    assert!(!out.succeeded);
    assert_eq!(out.reason, "3 of 20 synthetic orders failed");
    assert_eq!((failed.num_calls(), other.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_panic_inside_the_validation_reports_failed_once() {
    let failed = status_rule(LifecycleEventStatus::Failed);
    let other = unexpected();
    let c = client(&[&failed, &other]);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async {
            if std::hint::black_box(true) {
                panic!("index out of bounds in the order builder");
            }
            report(Verdict::Pass)
        },
    )
    .await
    .unwrap();
    assert!(!out.succeeded);
    assert!(
        out.reason.contains("panicked: index out of bounds"),
        "{}",
        out.reason
    );
    assert_eq!((failed.num_calls(), other.num_calls()), (1, 0));
}

#[tokio::test]
async fn an_expiring_deadline_reports_failed_before_the_lambda_times_out() {
    let failed = status_rule(LifecycleEventStatus::Failed);
    let other = unexpected();
    let c = client(&[&failed, &other]);
    let lambda_deadline = Instant::now() + Duration::from_secs(4);
    let t0 = Instant::now();
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        lambda_deadline,
        // A validation that ignores its deadline and hangs.
        |_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            report(Verdict::Pass)
        },
    )
    .await
    .unwrap();
    assert!(!out.succeeded);
    assert!(out.reason.contains("time budget"), "{}", out.reason);
    assert!(
        Instant::now() < lambda_deadline,
        "reported after the deadline"
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "kept the reserve, used the rest"
    );
    assert_eq!((failed.num_calls(), other.num_calls()), (1, 0));
}

#[tokio::test]
async fn the_validation_gets_the_deadline_minus_the_reserve() {
    let ok = status_rule(LifecycleEventStatus::Succeeded);
    let c = client(&[&ok]);
    let lambda_deadline = deadline(100);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        lambda_deadline,
        move |until| async move {
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                left <= Duration::from_secs(98) && left > Duration::from_secs(96),
                "{left:?}"
            );
            report(Verdict::Pass)
        },
    )
    .await
    .unwrap();
    assert!(out.succeeded);
}

#[tokio::test]
async fn transient_sdk_errors_are_retried_until_one_status_is_delivered() {
    let id = hook_id();
    let flaky = mock!(cd::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(move |r| {
            r.lifecycle_event_hook_execution_id() == Some(id.as_str())
                && r.status() == Some(&LifecycleEventStatus::Succeeded)
        })
        .sequence()
        .http_status(503, None)
        .times(2)
        .output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build())
        .build();
    let c = client(&[&flaky]);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Pass) },
    )
    .await
    .unwrap();
    assert!(out.succeeded);
    assert_eq!(
        flaky.num_calls(),
        3,
        "two transient failures, then the one delivered status"
    );
}

#[tokio::test]
async fn an_already_completed_event_counts_as_delivered() {
    let done = mock!(cd::Client::put_lifecycle_event_hook_execution_status).then_error(|| {
        PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
            cd::types::error::LifecycleEventAlreadyCompletedException::builder().build(),
        )
    });
    let c = client(&[&done]);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Pass) },
    )
    .await
    .unwrap();
    assert_eq!(done.num_calls(), 1);
    assert_eq!(out.status_attempts, 1);
}

#[tokio::test]
async fn a_permanent_error_is_not_retried_and_fails_the_invocation() {
    let bad = unexpected();
    let c = client(&[&bad]);
    let err = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Pass) },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, HookError::StatusNotDelivered { attempts: 1, .. }),
        "{err}"
    );
    assert_eq!(bad.num_calls(), 1);
}

#[tokio::test]
async fn malformed_events_report_nothing_and_fail_the_invocation() {
    for name in [
        "codedeploy-lifecycle-hook-malformed.json",
        "codedeploy-lifecycle-hook-empty-ids.json",
    ] {
        let any = unexpected();
        let c = client(&[&any]);
        let err = handle(event(name), &c, &cfg(), deadline(60), |_| async {
            report(Verdict::Pass)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, HookError::Malformed(_)), "{name}: {err}");
        assert_eq!(any.num_calls(), 0, "{name}");
    }
    let any = unexpected();
    let c = client(&[&any]);
    assert!(handle(
        serde_json::json!("not an object"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Pass) }
    )
    .await
    .is_err());
    assert_eq!(any.num_calls(), 0);
}

#[tokio::test]
async fn a_misconfigured_validator_still_reports_failed() {
    let failed = status_rule(LifecycleEventStatus::Failed);
    let c = client(&[&failed]);
    let ids = report_failure(event("codedeploy-lifecycle-hook.json"), &c, deadline(30))
        .await
        .unwrap();
    assert_eq!(ids.deployment_id, "d-7QXH6BLT3");
    assert_eq!(failed.num_calls(), 1);
}

#[test]
fn configuration_comes_from_the_environment_and_errors_name_the_variable() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = HookConfig::from_env(env(&[
        ("LISTENER", "production"),
        ("PRODUCTION_LISTENER_URL", "https://orders.example.com/"),
        ("STACK_NAME", "orderbroker"),
        ("SYNTHETIC_ORDERS", "40"),
        ("P99_THRESHOLD_MS", "250"),
        (
            "LISTENER_ARN",
            "arn:aws:elasticloadbalancing:us-east-2:111122223333:listener/app/ob/1/2",
        ),
        ("READINESS_SECONDS", "145"),
        ("NEVER_HEALTHY_SECONDS", "85"),
    ]))
    .unwrap();
    assert_eq!(c.listener, Listener::Production);
    assert_eq!(c.wait.readiness, Duration::from_secs(145));
    assert_eq!(c.wait.never_healthy, Duration::from_secs(85));
    // The longest run: the readiness wait plus the orders' time.
    assert_eq!(c.max_run, Duration::from_secs(145 + 60));
    let e = HookConfig::from_env(env(&[
        ("LISTENER", "test"),
        ("TEST_LISTENER_URL", "http://internal-ob:9090"),
        ("STACK_NAME", "x"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("LISTENER_ARN"), "{e}");
    let e = HookConfig::from_env(env(&[
        ("LISTENER", "test"),
        ("TEST_LISTENER_URL", "http://internal-ob:9090"),
        ("STACK_NAME", "x"),
        ("LISTENER_ARN", "arn:x"),
        ("READINESS_SECONDS", "soon"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("READINESS_SECONDS"), "{e}");
    assert_eq!(c.validation.base_url, "https://orders.example.com");
    assert_eq!(c.validation.orders, 40);
    assert_eq!(c.validation.p99_threshold, Duration::from_millis(250));
    let e = HookConfig::from_env(env(&[("LISTENER", "test"), ("STACK_NAME", "x")])).unwrap_err();
    assert!(e.to_string().contains("TEST_LISTENER_URL"), "{e}");
    let e = HookConfig::from_env(env(&[("LISTENER", "blue")])).unwrap_err();
    assert!(e.to_string().contains("LISTENER"), "{e}");
}

#[tokio::test]
async fn the_verdict_is_published_as_an_emf_line() {
    let ok = status_rule(LifecycleEventStatus::Succeeded);
    let c = client(&[&ok]);
    let out = handle(
        event("codedeploy-lifecycle-hook.json"),
        &c,
        &cfg(),
        deadline(60),
        |_| async { report(Verdict::Pass) },
    )
    .await
    .unwrap();
    let line: serde_json::Value =
        serde_json::from_str(&emf_line("orderbroker", &out, 1_795_705_500_000)).unwrap();
    let m = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(m["Namespace"], "OrderBroker/Deployments");
    assert_eq!(m["Dimensions"], serde_json::json!([["Stack", "Listener"]]));
    for metric in m["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(line[name].is_number(), "{name} has no value");
    }
    assert_eq!(line["ValidationPassed"], 1);
    assert_eq!(line["Listener"], "test");
    assert_eq!(line["SyntheticOrdersSent"], 20);
}
