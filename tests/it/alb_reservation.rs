//! The ALB capacity reservation the warm-up owns: its decisions as pure functions (lead, size
//! from history, the decrease rules, an operator's reservation, pending and failed states), and
//! the edge against mocked clients (request, provisioned, reset after the close, each refusal
//! named by its SDK variant, the deadline check).

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch as cw;
use aws_sdk_elasticloadbalancingv2 as elb;
use aws_sdk_ssm as ssm;
use aws_smithy_mocks::{mock, mock_client, MockResponse, RuleMode};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, Duration, Utc};
use orderbroker::calendar::Calendar;
use orderbroker::warmup::aws::{reserve, Clients, ReservationConfig, StepMode, WarmupConfig};
use orderbroker::warmup::reservation::*;
use orderbroker::warmup::{windows, Settings};

use crate::support::ny;

const LB: &str =
    "arn:aws:elasticloadbalancing:us-east-2:111122223333:loadbalancer/app/orderbroker/50dc6c495c0c9188";

fn settings() -> ReservationSettings {
    ReservationSettings {
        enabled: true,
        ..ReservationSettings::default()
    }
}

fn zones(state: ZoneState) -> Vec<(String, ZoneState, Option<String>)> {
    ["us-east-2a", "us-east-2b", "us-east-2c"]
        .iter()
        .map(|az| (az.to_string(), state.clone(), None))
        .collect()
}

fn ours_at(units: u32, at: DateTime<Utc>) -> (Observed, Record) {
    (
        Observed {
            units: Some(units),
            zones: zones(ZoneState::Provisioned),
            last_modified: Some(at + Duration::seconds(2)),
            decreases_remaining: Some(2),
        },
        Record {
            units,
            at,
            aws_modified: Some(at + Duration::seconds(2)),
            transitioning: false,
        },
    )
}

#[test]
fn the_size_is_the_history_peak_times_the_safety_factor_at_least_the_floor() {
    let s = ReservationSettings {
        floor_units: 20,
        ..settings()
    };
    assert_eq!(size(&[40.0, 55.2], &s).0, 67);
    assert_eq!(size(&[5.0], &s).0, 20, "below the floor");
    let (units, why) = size(&[], &s);
    assert_eq!(units, 20);
    assert!(why.contains("no PeakLCUs history"), "{why}");
    assert_eq!(size(&[], &settings()).0, 0, "neither: nothing");
}

#[test]
fn the_day_needs_it_from_the_lead_before_the_first_raise_to_the_last_window() {
    let session = Calendar::new()
        .session(chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap())
        .unwrap()
        .unwrap();
    let w = windows(&session, &Settings::default());
    let (from, to) = needed_between(&w, &settings()).unwrap();
    assert_eq!(from, ny("2026-12-02", "07:17"), "09:17 raise - 120 min");
    assert_eq!(to, ny("2026-12-02", "16:15"));
}

#[test]
fn an_operators_reservation_is_left_alone_and_an_unexplained_change_pages() {
    let t = ny("2026-12-02", "07:20");
    let theirs = Observed {
        units: Some(80),
        zones: zones(ZoneState::Provisioned),
        last_modified: Some(t),
        decreases_remaining: Some(2),
    };
    assert!(matches!(
        decide(&theirs, None, Some(67), false, &settings()),
        Decision::Operator { .. }
    ));
    // Other units than the warm-up requested: the operator's, never reset.
    let (_, rec) = ours_at(67, t);
    assert!(matches!(
        decide(&theirs, Some(&rec), None, true, &settings()),
        Decision::Operator { .. }
    ));
    // The requested units, a later stamp, nothing pending or rebalancing to explain it: the
    // warm-up cannot tell whose it is. Neither reset nor kept silently: it pages.
    let (mut o, rec) = ours_at(67, t);
    o.last_modified = Some(t + Duration::hours(1));
    for (target, day_over) in [(Some(67), false), (None, true)] {
        match decide(&o, Some(&rec), target, day_over, &settings()) {
            Decision::Unclassified { why } => {
                assert!(why.contains("no pending or rebalancing zone"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_pending_request_provisioned_later_stays_ours_and_is_reset_after_the_close() {
    let t = ny("2026-12-02", "07:20");
    // Read back right after the request: pending, stamped t + 2 s.
    let rec = Record {
        units: 67,
        at: t,
        aws_modified: Some(t + Duration::seconds(2)),
        transitioning: true,
    };
    // Provisioned two hours later: AWS moved the stamp, the units are the requested ones.
    let later = Observed {
        units: Some(67),
        zones: zones(ZoneState::Provisioned),
        last_modified: Some(t + Duration::hours(2)),
        decreases_remaining: Some(2),
    };
    assert_eq!(ownership(&later, Some(&rec)), Ownership::Ours);
    assert!(matches!(
        decide(&later, Some(&rec), None, true, &settings()),
        Decision::Reset { .. }
    ));
    // Rebalancing now explains a moved stamp too.
    let rebalancing = Observed {
        zones: zones(ZoneState::Rebalancing),
        ..later.clone()
    };
    let settled = Record {
        transitioning: false,
        ..rec
    };
    assert_eq!(ownership(&rebalancing, Some(&settled)), Ownership::Ours);
    // A record written before the stamp was kept: the request time and the slack.
    let legacy = Record {
        aws_modified: None,
        transitioning: false,
        ..rec
    };
    let soon = Observed {
        last_modified: Some(t + Duration::seconds(30)),
        ..later.clone()
    };
    assert_eq!(ownership(&soon, Some(&legacy)), Ownership::Ours);
    assert!(matches!(
        ownership(&later, Some(&legacy)),
        Ownership::Unclassified { .. }
    ));
}

#[test]
fn it_increases_only_never_while_pending_and_retries_a_failure() {
    let t = ny("2026-12-02", "07:20");
    let none = Observed::default();
    match decide(&none, None, Some(67), false, &settings()) {
        Decision::Request { units, .. } => assert_eq!(units, 67),
        other => panic!("{other:?}"),
    }
    let (ours, rec) = ours_at(67, t);
    // A smaller need later in the day: no intraday decrease.
    assert!(matches!(
        decide(&ours, Some(&rec), Some(40), false, &settings()),
        Decision::Hold { .. }
    ));
    // A bigger one (an event): increase.
    assert!(matches!(
        decide(&ours, Some(&rec), Some(90), false, &settings()),
        Decision::Request { units: 90, .. }
    ));
    let mut pending = ours.clone();
    pending.zones[1].1 = ZoneState::Pending;
    match decide(&pending, Some(&rec), Some(90), false, &settings()) {
        Decision::Hold { why } => assert!(why.contains("pending in us-east-2b"), "{why}"),
        other => panic!("{other:?}"),
    }
    let mut failed = ours.clone();
    failed.zones[2] = (
        "us-east-2c".into(),
        ZoneState::Failed,
        Some("insufficient capacity".into()),
    );
    match decide(&failed, Some(&rec), Some(67), false, &settings()) {
        Decision::Request { units, why } => {
            assert_eq!(units, 67);
            assert!(why.contains("failed in us-east-2c"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!ready(&failed, Some(67)));
    assert!(!ready(&pending, Some(67)));
    assert!(ready(&ours, Some(67)));
    assert!(ready(&none, None), "outside the span: ready");
    assert!(!ready(&none, Some(67)));
}

#[test]
fn one_reset_after_the_last_spike_keeping_a_decrease_for_the_operator() {
    let t = ny("2026-12-02", "07:20");
    let (ours, rec) = ours_at(67, t);
    assert!(matches!(
        decide(&ours, Some(&rec), None, true, &settings()),
        Decision::Reset { .. }
    ));
    let mut last = ours.clone();
    last.decreases_remaining = Some(1);
    match decide(&last, Some(&rec), None, true, &settings()) {
        Decision::Hold { why } => assert!(why.contains("kept for the operator"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Before the day's last spike nothing is released, whatever is reserved.
    assert!(matches!(
        decide(&ours, Some(&rec), None, false, &settings()),
        Decision::Hold { .. }
    ));
}

// ------------------------------------------------------------------ the edge, mocked

#[derive(Default, Clone)]
struct Seen {
    modify: Arc<
        Mutex<Vec<elb::operation::modify_capacity_reservation::ModifyCapacityReservationInput>>,
    >,
    records: Arc<Mutex<Vec<String>>>,
    metrics: Arc<Mutex<Vec<(String, f64)>>>,
}

struct Account {
    observed: Observed,
    /// What DescribeCapacityReservation answers once ModifyCapacityReservation succeeded (the
    /// read-back); `observed` again when `None`.
    after_modify: Option<Observed>,
    record: &'static str,
    modify_error:
        Option<fn() -> elb::operation::modify_capacity_reservation::ModifyCapacityReservationError>,
}

fn config() -> (WarmupConfig, ReservationConfig) {
    let env = [
        ("SCALABLE_RESOURCE_ID", "service/ob-cluster/ob-service"),
        ("PREDICTIVE_POLICY_NAME", "p"),
        ("STACK_NAME", "orderbroker"),
        ("OVERRIDES_PARAMETER", "/orderbroker/warmup/overrides"),
        ("BASELINE_MIN_TASKS", "3"),
        ("ALB_RESERVATION_ENABLED", "true"),
        ("LOAD_BALANCER_ARN", LB),
        (
            "ALB_RESERVATION_RECORD_PARAMETER",
            "/orderbroker/warmup/alb-reservation",
        ),
        ("ALB_RESERVATION_FLOOR_UNITS", "10"),
    ];
    let cfg = WarmupConfig::from_env(|k| {
        env.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let rc = cfg.reservation.clone().expect("enabled");
    (cfg, rc)
}

fn smithy(t: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_secs(t.timestamp())
}

async fn step(
    a: Account,
    now: DateTime<Utc>,
    deadline: bool,
) -> (orderbroker::warmup::aws::ReservationReport, Seen) {
    let seen = Seen::default();
    let before = a.observed.clone();
    let after = a.after_modify.clone().unwrap_or_else(|| a.observed.clone());
    let modified = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let modified2 = modified.clone();
    let modify_log = seen.modify.clone();
    let modify_error = a.modify_error;
    let elb_rules = vec![
        mock!(elb::Client::describe_capacity_reservation)
            .match_requests(|r| r.load_balancer_arn() == Some(LB))
            .then_output(move || {
                let o = if modified2.load(std::sync::atomic::Ordering::SeqCst) {
                    after.clone()
                } else {
                    before.clone()
                };
                let mut b = elb::operation::describe_capacity_reservation::DescribeCapacityReservationOutput::builder()
                    .set_decrease_requests_remaining(o.decreases_remaining)
                    .set_last_modified_time(o.last_modified.map(smithy));
                if let Some(u) = o.units {
                    b = b.minimum_load_balancer_capacity(
                        elb::types::MinimumLoadBalancerCapacity::builder()
                            .capacity_units(u as i32)
                            .build(),
                    );
                }
                for (az, st, _) in &o.zones {
                    let code = match st {
                        ZoneState::Pending => elb::types::CapacityReservationStateEnum::Pending,
                        ZoneState::Provisioned => elb::types::CapacityReservationStateEnum::Provisioned,
                        ZoneState::Failed => elb::types::CapacityReservationStateEnum::Failed,
                        _ => elb::types::CapacityReservationStateEnum::Rebalancing,
                    };
                    b = b.capacity_reservation_state(
                        elb::types::ZonalCapacityReservationState::builder()
                            .availability_zone(az)
                            .state(elb::types::CapacityReservationStatus::builder().code(code).build())
                            .build(),
                    );
                }
                b.build()
            }),
        mock!(elb::Client::modify_capacity_reservation).then_compute_response(move |r| {
            modify_log.lock().unwrap().push(r.clone());
            match modify_error {
                Some(e) => MockResponse::Error(e()),
                None => {
                    modified.store(true, std::sync::atomic::Ordering::SeqCst);
                    MockResponse::Output(
                    elb::operation::modify_capacity_reservation::ModifyCapacityReservationOutput::builder()
                        .build(),
                )
                }
            }
        }),
    ];
    let record = a.record;
    let records = seen.records.clone();
    let ssm_rules = vec![
        mock!(ssm::Client::get_parameter).then_output(move || {
            ssm::operation::get_parameter::GetParameterOutput::builder()
                .parameter(ssm::types::Parameter::builder().value(record).build())
                .build()
        }),
        mock!(ssm::Client::put_parameter)
            .match_requests(|r| r.name() == Some("/orderbroker/warmup/alb-reservation"))
            .then_compute_output(move |r| {
                records
                    .lock()
                    .unwrap()
                    .push(r.value().unwrap_or_default().to_string());
                ssm::operation::put_parameter::PutParameterOutput::builder().build()
            }),
    ];
    let metrics = seen.metrics.clone();
    let cw_rules = vec![
        // History: PeakLCUs peaks of 40 and 50 in two recent sessions' open windows.
        mock!(cw::Client::get_metric_data).then_output(|| {
            cw::operation::get_metric_data::GetMetricDataOutput::builder()
                .metric_data_results(
                    cw::types::MetricDataResult::builder()
                        .id("lcu")
                        .timestamps(smithy(ny("2026-12-01", "09:35")))
                        .values(50.0)
                        .timestamps(smithy(ny("2026-11-30", "09:40")))
                        .values(40.0)
                        .build(),
                )
                .build()
        }),
        mock!(cw::Client::put_metric_data).then_compute_output(move |r| {
            for d in r.metric_data() {
                metrics.lock().unwrap().push((
                    d.metric_name().unwrap_or_default().to_string(),
                    d.value().unwrap_or(-1.0),
                ));
            }
            cw::operation::put_metric_data::PutMetricDataOutput::builder().build()
        }),
    ];
    let (cfg, rc) = config();
    let no_rules: Vec<aws_smithy_mocks::Rule> = Vec::new();
    let clients = Clients {
        autoscaling: mock_client!(
            aws_sdk_applicationautoscaling,
            RuleMode::MatchAny,
            &no_rules
        ),
        cloudwatch: mock_client!(cw, RuleMode::MatchAny, &cw_rules),
        ssm: mock_client!(ssm, RuleMode::MatchAny, &ssm_rules),
        elb: mock_client!(elb, RuleMode::MatchAny, &elb_rules),
    };
    let mode = StepMode {
        dry_run: false,
        deadline_check: deadline,
    };
    let r = reserve(&clients, &cfg, &rc, &Calendar::new(), &[], now, mode).await;
    (r, seen)
}

fn metric(seen: &Seen, name: &str) -> Vec<f64> {
    seen.metrics
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .collect()
}

#[tokio::test]
async fn inside_the_lead_it_requests_the_sized_units_and_records_them() {
    let now = ny("2026-12-02", "07:30");
    let stamp = now + Duration::seconds(1);
    let (r, seen) = step(
        Account {
            observed: Observed::default(),
            // Read back after the request: pending everywhere, AWS's stamp a second later.
            after_modify: Some(Observed {
                units: Some(60),
                zones: zones(ZoneState::Pending),
                last_modified: Some(stamp),
                decreases_remaining: Some(2),
            }),
            record: "{}",
            modify_error: None,
        },
        now,
        false,
    )
    .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.target, Some(60), "50 x 1.2: {}", r.sized_by);
    let modify = seen.modify.lock().unwrap();
    assert_eq!(modify.len(), 1);
    assert_eq!(
        modify[0]
            .minimum_load_balancer_capacity()
            .and_then(|m| m.capacity_units()),
        Some(60)
    );
    assert_ne!(modify[0].reset_capacity_reservation(), Some(true));
    // The record carries AWS's own stamp and that the request was still pending.
    let rec: Record = serde_json::from_str(&seen.records.lock().unwrap()[0]).unwrap();
    assert_eq!(
        rec,
        Record {
            units: 60,
            at: now,
            aws_modified: Some(stamp),
            transitioning: true,
        }
    );
    assert_eq!(
        metric(&seen, "ReservationReady"),
        [0.0],
        "requested, not provisioned yet"
    );
}

#[tokio::test]
async fn provisioned_and_ours_it_sends_nothing_and_is_ready() {
    let at = ny("2026-12-02", "07:20");
    let (observed, _) = ours_at(60, at);
    let (r, seen) = step(
        Account {
            observed,
            after_modify: None,
            record: r#"{"units":60,"at":"2026-12-02T12:20:00Z"}"#,
            modify_error: None,
        },
        ny("2026-12-02", "09:00"),
        true,
    )
    .await;
    assert!(seen.modify.lock().unwrap().is_empty(), "{:?}", r.decision);
    assert!(r.ready);
    assert_eq!(metric(&seen, "ReservationReady"), [1.0]);
    assert_eq!(metric(&seen, "ReservationDeadlineMissed"), [0.0]);
}

#[tokio::test]
async fn after_the_close_it_resets_once_and_records_the_reset() {
    let at = ny("2026-12-02", "07:20");
    let (observed, _) = ours_at(60, at);
    let (r, seen) = step(
        Account {
            observed,
            after_modify: None,
            record: r#"{"units":60,"at":"2026-12-02T12:20:00Z"}"#,
            modify_error: None,
        },
        ny("2026-12-02", "16:30"),
        false,
    )
    .await;
    assert!(
        matches!(r.decision, Some(Decision::Reset { .. })),
        "{:?}",
        r.decision
    );
    let modify = seen.modify.lock().unwrap();
    assert_eq!(modify[0].reset_capacity_reservation(), Some(true));
    let records = seen.records.lock().unwrap();
    let rec: Record = serde_json::from_str(records.last().unwrap()).unwrap();
    assert_eq!(rec.units, 0);
}

#[tokio::test]
async fn a_request_provisioned_hours_later_with_a_new_stamp_is_still_reset_after_the_close() {
    // 07:30: requested, read back pending at 07:30:01. 09:45: AWS provisions it and moves
    // LastModifiedTime. 16:30: the day is over; the reservation is the warm-up's and is reset.
    let requested = ny("2026-12-02", "07:30");
    let record = r#"{"units":60,"at":"2026-12-02T12:30:00Z","aws_modified":"2026-12-02T12:30:01Z","transitioning":true}"#;
    let provisioned = Observed {
        units: Some(60),
        zones: zones(ZoneState::Provisioned),
        last_modified: Some(ny("2026-12-02", "09:45")),
        decreases_remaining: Some(2),
    };
    let (r, seen) = step(
        Account {
            observed: provisioned,
            after_modify: None,
            record,
            modify_error: None,
        },
        ny("2026-12-02", "16:30"),
        false,
    )
    .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        matches!(r.decision, Some(Decision::Reset { .. })),
        "{:?}",
        r.decision
    );
    assert_eq!(
        seen.modify.lock().unwrap()[0].reset_capacity_reservation(),
        Some(true)
    );
    // The record followed AWS's stamp before the reset was recorded.
    let records = seen.records.lock().unwrap();
    let restamped: Record = serde_json::from_str(&records[0]).unwrap();
    assert_eq!(restamped.aws_modified, Some(ny("2026-12-02", "09:45")));
    assert_eq!(restamped.at, requested);
    let reset: Record = serde_json::from_str(records.last().unwrap()).unwrap();
    assert_eq!(reset.units, 0);
}

#[tokio::test]
async fn an_unexplained_change_is_neither_reset_nor_kept_silently() {
    let record = r#"{"units":60,"at":"2026-12-02T12:30:00Z","aws_modified":"2026-12-02T12:30:01Z","transitioning":false}"#;
    let changed = Observed {
        units: Some(60),
        zones: zones(ZoneState::Provisioned),
        last_modified: Some(ny("2026-12-02", "13:00")),
        decreases_remaining: Some(2),
    };
    let (r, seen) = step(
        Account {
            observed: changed,
            after_modify: None,
            record,
            modify_error: None,
        },
        ny("2026-12-02", "16:30"),
        false,
    )
    .await;
    assert!(seen.modify.lock().unwrap().is_empty());
    assert!(seen.records.lock().unwrap().is_empty());
    // The run fails (its OnFailure queue pages SRE), naming why.
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("no pending or rebalancing zone")),
        "{:?}",
        r.errors
    );
}

#[tokio::test]
async fn every_refusal_is_reported_by_its_sdk_variant_and_never_hidden() {
    use elb::operation::modify_capacity_reservation::ModifyCapacityReservationError as M;
    use elb::types::error::*;
    type Case = (fn() -> M, &'static str);
    let cases: [Case; 8] = [
        (
            || {
                M::CapacityDecreaseRequestsLimitExceededException(
                    CapacityDecreaseRequestsLimitExceededException::builder().build(),
                )
            },
            "daily decrease limit",
        ),
        (
            || {
                M::CapacityReservationPendingException(
                    CapacityReservationPendingException::builder().build(),
                )
            },
            "still pending",
        ),
        (
            || {
                M::CapacityUnitsLimitExceededException(
                    CapacityUnitsLimitExceededException::builder().build(),
                )
            },
            "capacity-units limit",
        ),
        (
            || M::InsufficientCapacityException(InsufficientCapacityException::builder().build()),
            "insufficient capacity",
        ),
        (
            || {
                M::InvalidConfigurationRequestException(
                    InvalidConfigurationRequestException::builder().build(),
                )
            },
            "not valid",
        ),
        (
            || M::LoadBalancerNotFoundException(LoadBalancerNotFoundException::builder().build()),
            "does not exist",
        ),
        (
            || M::OperationNotPermittedException(OperationNotPermittedException::builder().build()),
            "not permitted",
        ),
        (
            || {
                M::PriorRequestNotCompleteException(
                    PriorRequestNotCompleteException::builder().build(),
                )
            },
            "prior request",
        ),
    ];
    for (error, says) in cases {
        let (r, seen) = step(
            Account {
                observed: Observed::default(),
                after_modify: None,
                record: "{}",
                modify_error: Some(error),
            },
            ny("2026-12-02", "07:30"),
            false,
        )
        .await;
        assert_eq!(r.errors.len(), 1, "{says}: {:?}", r.errors);
        assert!(r.errors[0].contains(says), "{says}: {}", r.errors[0]);
        assert!(
            r.errors[0].contains("retried on the next run"),
            "{}",
            r.errors[0]
        );
        assert!(
            seen.records.lock().unwrap().is_empty(),
            "nothing recorded on a refusal"
        );
    }
}

#[tokio::test]
async fn the_deadline_check_reports_a_reservation_that_is_not_ready() {
    let observed = Observed {
        units: Some(60),
        zones: zones(ZoneState::Pending),
        last_modified: Some(ny("2026-12-02", "07:20")),
        ..Observed::default()
    };
    let (r, seen) = step(
        Account {
            observed,
            after_modify: None,
            record: r#"{"units":60,"at":"2026-12-02T12:20:00Z"}"#,
            modify_error: None,
        },
        ny("2026-12-02", "09:00"),
        true,
    )
    .await;
    assert_eq!(r.deadline_missed, Some(true));
    assert_eq!(metric(&seen, "ReservationDeadlineMissed"), [1.0]);
    assert!(
        seen.modify.lock().unwrap().is_empty(),
        "pending: no new request"
    );
}
