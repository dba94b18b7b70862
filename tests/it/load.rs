//! `orderbroker load` against local servers on 127.0.0.1: the counts must match the server's own
//! ledger exactly (what it answered, and how), for a healthy server, one that fails a known set
//! of requests, one that never answers some, and one that dies and restarts mid-run. Plus the
//! in-VPC runner's segments against a mocked Lambda client, and the CLI's exit codes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{order_ok, serve, serve_restarting, Behaviour, Server};
use aws_sdk_lambda as lambda;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use orderbroker::gates::validation::{IDEMPOTENCY_HEADER, SYNTHETIC_ACCOUNT, SYNTHETIC_HEADER};
use orderbroker::load::generator::{admit, Limits, Listener, SegmentRequest};
use orderbroker::load::in_vpc::{plan_segments, run_via_function, Segments};
use orderbroker::load::{self, LoadReport, LoadRequest, TradeOutcome};

fn request(url: &str, rate: f64, seconds: f64) -> LoadRequest {
    LoadRequest {
        url: url.into(),
        rate,
        duration_seconds: seconds,
        path: "/orders".into(),
        timeout_ms: 1000,
        max_in_flight: 512,
        run_id: Some("t".into()),
        start_at_ms: None,
    }
}

/// One in-VPC segment's event (the function takes no URL).
fn segment(rate: f64, seconds: f64) -> SegmentRequest {
    SegmentRequest {
        listener: Listener::Production,
        rate,
        duration_seconds: seconds,
        timeout_ms: Some(1000),
        max_in_flight: None,
        run_id: Some("t".into()),
        start_at_ms: None,
    }
}

/// The function's limits with this stack's "production listener" at `url`.
fn limits(url: &str) -> Limits {
    Limits {
        production_url: url.into(),
        test_url: format!("{url}/test-listener-unused"),
        order_path: "/orders".into(),
        max_rate: 200.0,
        max_orders_per_invocation: 60_000,
        max_orders_per_day: 1_000_000,
        ledger_parameter: "/ob/load-generator/ledger".into(),
    }
}

async fn run(url: &str, rate: f64, seconds: f64) -> LoadReport {
    let cfg = request(url, rate, seconds).config().unwrap();
    load::run(&reqwest::Client::new(), &cfg, "t", None).await
}

/// The report's counts against the server's ledger: every key answered 2xx with a good body
/// is a success, every other answered one a failure, every unanswered one a drop.
fn assert_matches_ledger(r: &LoadReport, server: &Server, good: impl Fn(u16) -> bool) {
    let answered = server.answered.lock().unwrap();
    let key = |s: &crate::support::Seen| s.header(IDEMPOTENCY_HEADER).unwrap().to_string();
    let answered_ok: BTreeSet<String> = answered
        .iter()
        .filter(|(_, st)| good(*st))
        .map(|(s, _)| key(s))
        .collect();
    let answered_bad: BTreeSet<String> = answered
        .iter()
        .filter(|(_, st)| !good(*st))
        .map(|(s, _)| key(s))
        .collect();
    assert_eq!(
        answered.len(),
        answered_ok.len() + answered_bad.len(),
        "no key twice"
    );
    assert_eq!(r.sent, r.scheduled);
    assert_eq!(r.succeeded, answered_ok.len(), "succeeded = answered well");
    assert_eq!(r.failed, answered_bad.len(), "failed = answered badly");
    assert_eq!(
        r.dropped,
        r.sent - answered.len(),
        "dropped = never answered"
    );
    assert_eq!(r.succeeded + r.failed + r.dropped, r.sent);
    let incident_keys: BTreeSet<String> = r
        .incidents
        .iter()
        .map(|i| i.idempotency_key.clone())
        .collect();
    assert_eq!(incident_keys.len(), r.failed + r.dropped);
    for k in &answered_ok {
        assert!(!incident_keys.contains(k), "{k} succeeded but is reported");
    }
    for i in &r.incidents {
        match i.outcome {
            TradeOutcome::Failed => assert!(answered_bad.contains(&i.idempotency_key)),
            TradeOutcome::Dropped => assert!(
                !answered.iter().any(|(s, _)| key(s) == i.idempotency_key),
                "{} was answered but reported dropped",
                i.idempotency_key
            ),
            other => panic!("{other:?}"),
        }
        assert!(!i.cause.is_empty());
    }
    assert!(
        r.incidents.windows(2).all(|w| w[0].at <= w[1].at),
        "time order"
    );
}

#[tokio::test]
async fn a_healthy_service_gets_every_order_once_with_the_synthetic_contract() {
    let b: Behaviour = Arc::new(|_, n| (200, order_ok(n), Duration::ZERO));
    let server = serve(b).await;
    let r = run(&server.url, 100.0, 2.0).await;
    assert_eq!(r.scheduled, 200);
    assert_eq!((r.sent, r.succeeded, r.failed, r.dropped), (200, 200, 0, 0));
    assert!(r.clean());
    assert_matches_ledger(&r, &server, |s| s == 200);
    let seen = server.seen.lock().unwrap();
    let keys: BTreeSet<&str> = seen
        .iter()
        .map(|s| s.header(IDEMPOTENCY_HEADER).unwrap())
        .collect();
    assert_eq!(keys.len(), 200, "a unique idempotency key per order");
    assert!(seen
        .iter()
        .all(|s| s.header(SYNTHETIC_HEADER) == Some("true")
            && s.body.contains(SYNTHETIC_ACCOUNT)
            && s.body.contains("ZVZZT")
            && s.method == "POST"
            && s.path == "/orders"));
    // Steady rate: 200 orders over ~2 s, not a burst.
    let span = (r.ended_at - r.started_at).num_milliseconds();
    assert!((1900..4000).contains(&span), "{span} ms");
}

#[tokio::test]
async fn known_failures_are_counted_exactly_with_time_and_cause() {
    // Requests 10, 20, 30 answer 500; 40 answers 200 without the order fields.
    let b: Behaviour = Arc::new(|_, n| match n {
        10 | 20 | 30 => (500, r#"{"error":"boom"}"#.into(), Duration::ZERO),
        40 => (200, r#"{"ok":true}"#.into(), Duration::ZERO),
        _ => (200, order_ok(n), Duration::ZERO),
    });
    let server = serve(b).await;
    let r = run(&server.url, 50.0, 2.0).await;
    assert_eq!((r.sent, r.succeeded, r.failed, r.dropped), (100, 96, 4, 0));
    assert!(!r.clean());
    // Against the server's ledger: the three 500s it wrote, and its 40th request (arrival
    // order) is the one whose answer lacked the fields.
    let answered = server.answered.lock().unwrap();
    let key = |s: &crate::support::Seen| s.header(IDEMPOTENCY_HEADER).unwrap().to_string();
    let five_hundreds: BTreeSet<String> = answered
        .iter()
        .filter(|(_, st)| *st == 500)
        .map(|(s, _)| key(s))
        .collect();
    assert_eq!(five_hundreds.len(), 3);
    let fortieth = key(&server.seen.lock().unwrap()[39]);
    for i in &r.incidents {
        if i.cause == "status 500" {
            assert!(five_hundreds.contains(&i.idempotency_key));
        } else {
            assert_eq!(i.idempotency_key, fortieth);
        }
    }
    assert_eq!(answered.len(), 100, "every order answered: none dropped");
    let causes: Vec<&str> = r.incidents.iter().map(|i| i.cause.as_str()).collect();
    assert_eq!(
        causes.iter().filter(|c| **c == "status 500").count(),
        3,
        "{causes:?}"
    );
    assert_eq!(
        causes
            .iter()
            .filter(|c| c.contains("answer lacks orderId, status"))
            .count(),
        1,
        "{causes:?}"
    );
    assert!(r.summary().contains("failed 4 / dropped 0"));
}

#[tokio::test]
async fn orders_without_an_answer_are_dropped_not_failed() {
    // Request 7 is read and never answered (connection closed); request 15 answers too late.
    let b: Behaviour = Arc::new(|_, n| match n {
        7 => (0, String::new(), Duration::ZERO),
        15 => (200, order_ok(n), Duration::from_millis(1500)),
        _ => (200, order_ok(n), Duration::ZERO),
    });
    let server = serve(b).await;
    let r = run(&server.url, 40.0, 1.0).await;
    assert_eq!((r.sent, r.failed, r.dropped), (40, 0, 2));
    assert_eq!(r.succeeded, 38);
    let mut causes: Vec<String> = r.incidents.iter().map(|i| i.cause.clone()).collect();
    causes.sort();
    assert!(
        causes.iter().any(|c| c.starts_with("timed out")),
        "{causes:?}"
    );
    assert!(
        causes.iter().any(|c| c.starts_with("no answer")),
        "{causes:?}"
    );
    assert!(r
        .incidents
        .iter()
        .all(|i| i.outcome == TradeOutcome::Dropped && i.status.is_none()));
}

#[tokio::test]
async fn a_restart_mid_run_drops_exactly_what_the_server_never_answered() {
    let b: Behaviour = Arc::new(|_, n| (200, order_ok(n), Duration::ZERO));
    // Dies on its 100th request, refuses connections for 400 ms, comes back on the same port.
    let server = serve_restarting(b, 100, Duration::from_millis(400)).await;
    let r = run(&server.url, 100.0, 3.0).await;
    println!("{}", r.summary());
    assert_eq!(r.sent, 300);
    assert!(
        r.dropped >= 2,
        "the crashed request and the refused ones: {}",
        r.summary()
    );
    assert!(r.succeeded >= 250, "it came back: {}", r.summary());
    assert_eq!(r.failed, 0);
    assert_matches_ledger(&r, &server, |s| s == 200);
    // The drops are one contiguous outage, after the first 99 answers.
    let first = r.incidents.first().unwrap().index;
    assert!(first >= 99, "{first}");
    let outage =
        (r.incidents.last().unwrap().at - r.incidents.first().unwrap().at).num_milliseconds();
    assert!(outage < 1500, "{outage} ms");
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reason() {
    for (req, expect) in [
        (request("ftp://x", 1.0, 1.0), "is not http(s)://host[:port]"),
        (request("http://x", 0.0, 1.0), "rate 0"),
        (request("http://x", 1.0, -1.0), "duration -1"),
        (
            LoadRequest {
                path: "orders".into(),
                ..request("http://x", 1.0, 1.0)
            },
            "must start with /",
        ),
    ] {
        assert!(
            req.config().unwrap_err().to_string().contains(expect),
            "{expect}"
        );
    }
    // The in-VPC function names what is wrong in its event and sends nothing.
    let e = admit(
        serde_json::json!({"listener": "production", "rate": 5, "duration_seconds": 1, "colour": "blue"}),
        &limits("http://127.0.0.1:1"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown field `colour`"), "{e}");
    let e = load::run_segment(
        &reqwest::Client::new(),
        request("http://127.0.0.1:1", 5.0, 600.0),
        Duration::from_secs(300),
    )
    .await
    .unwrap_err();
    assert!(e.contains("use shorter segments"), "{e}");
}

// Multi-threaded: the mocked invoke blocks its worker while the segment runs; the local server
// answers from the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_vpc_runner_joins_segments_without_gaps_and_merges_their_reports() {
    assert_eq!(
        plan_segments(Duration::from_secs(1500), Duration::from_secs(600)),
        vec![
            (Duration::ZERO, Duration::from_secs(600)),
            (Duration::from_secs(600), Duration::from_secs(600)),
            (Duration::from_secs(1200), Duration::from_secs(300)),
        ]
    );
    // The mocked function runs each segment's load for real against a local server.
    let b: Behaviour = Arc::new(|_, n| match n {
        25 => (503, "{}".into(), Duration::ZERO),
        _ => (200, order_ok(n), Duration::ZERO),
    });
    let server = serve(b).await;
    let seen: Arc<Mutex<Vec<SegmentRequest>>> = Arc::default();
    let seen2 = seen.clone();
    let url = server.url.clone();
    let rule = mock!(lambda::Client::invoke)
        .match_requests(|r| {
            r.function_name() == Some("orderbroker-load-generator")
                && r.invocation_type() == Some(&lambda::types::InvocationType::RequestResponse)
        })
        .then_compute_output(move |r| {
            let event: serde_json::Value =
                serde_json::from_slice(r.payload().unwrap().as_ref()).unwrap();
            let req: SegmentRequest = serde_json::from_value(event.clone()).unwrap();
            seen2.lock().unwrap().push(req.clone());
            let (admitted, _) = admit(event, &limits(&url)).unwrap();
            let report = std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(load::run_segment(
                        &reqwest::Client::new(),
                        admitted,
                        Duration::from_secs(60),
                    ))
            })
            .join()
            .unwrap()
            .unwrap();
            lambda::operation::invoke::InvokeOutput::builder()
                .status_code(200)
                .payload(aws_smithy_types::Blob::new(
                    serde_json::to_vec(&report).unwrap(),
                ))
                .build()
        });
    let client = mock_client!(lambda, RuleMode::MatchAny, &[&rule]);
    let mut lines = Vec::new();
    let mut say = |l: String| lines.push(l);
    let base = segment(20.0, 0.0);
    let r = run_via_function(
        &client,
        "orderbroker-load-generator",
        &base,
        Segments {
            total: Duration::from_millis(2500),
            segment: Duration::from_secs(1),
            // A generous lead: with every test running at once on 2 cores a segment invoked
            // 200 ms early was once more than 1 s late (a "late segment" note).
            lead: Duration::from_secs(1),
        },
        None,
        &mut say,
    )
    .await
    .unwrap()
    .into_result()
    .unwrap();
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs.iter().map(|q| q.duration_seconds).collect::<Vec<_>>(),
        [1.0, 1.0, 0.5]
    );
    let starts: Vec<u64> = reqs.iter().map(|q| q.start_at_ms.unwrap()).collect();
    assert_eq!(starts[1] - starts[0], 1000, "segments join exactly");
    assert_eq!(starts[2] - starts[1], 1000);
    assert_eq!(r.scheduled, 20 + 20 + 10);
    assert_eq!((r.sent, r.succeeded, r.failed, r.dropped), (50, 49, 1, 0));
    assert_eq!(r.incidents[0].cause, "status 503");
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(lines.len(), 3);
    assert_matches_ledger(&r, &server, |s| s == 200);

    // A segment whose function fails makes the whole run an error, never a partial count.
    let failing = mock!(lambda::Client::invoke).then_output(|| {
        lambda::operation::invoke::InvokeOutput::builder()
            .status_code(200)
            .function_error("Unhandled")
            .payload(aws_smithy_types::Blob::new(
                r#"{"errorType":"&alloc::string::String","errorMessage":"a 600 s segment needs 615 s"}"#,
            ))
            .build()
    });
    let client = mock_client!(lambda, RuleMode::MatchAny, &[&failing]);
    let run = run_via_function(
        &client,
        "orderbroker-load-generator",
        &base,
        Segments {
            total: Duration::from_millis(100),
            segment: Duration::from_secs(1),
            lead: Duration::ZERO,
        },
        None,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(run.report.is_none(), "nothing finished");
    let e = run.into_result().unwrap_err().to_string();
    assert!(
        e.contains("failed (Unhandled): a 600 s segment needs 615 s"),
        "{e}"
    );
}

#[tokio::test]
async fn the_cli_exits_non_zero_on_any_failure_and_writes_the_report() {
    let ok: Behaviour = Arc::new(|_, n| (200, order_ok(n), Duration::ZERO));
    let bad: Behaviour = Arc::new(|_, n| {
        if n == 3 {
            (500, "{}".into(), Duration::ZERO)
        } else {
            (200, order_ok(n), Duration::ZERO)
        }
    });
    let dir = std::env::temp_dir().join(format!("ob-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (behaviour, code, failed) in [(ok, 0, 0), (bad, 1, 1)] {
        let server = serve(behaviour).await;
        let file = dir.join(format!("report-{code}.json"));
        let (url, path) = (server.url.clone(), file.clone());
        // The server runs on this test's runtime: the CLI runs on a blocking thread meanwhile.
        let out = tokio::task::spawn_blocking(move || {
            crate::support::orderbroker()
                .args([
                    "load",
                    "--url",
                    &url,
                    "--rate",
                    "20",
                    "--duration",
                    "1",
                    "--report",
                ])
                .arg(&path)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(
                "sent 20 / succeeded {} / failed {failed} / dropped 0",
                20 - failed
            )),
            "{stdout}"
        );
        let report: LoadReport =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(report.failed, failed);
        assert_eq!(report.incidents.len(), failed);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn in_vpc_segments_are_never_retried_and_time_out_just_above_their_length() {
    use orderbroker::load::in_vpc::{
        invoke_segment, lambda_client, segment_client_settings, DEFAULT_SEGMENT,
    };
    // 300 s segments by default (a NAT gateway drops a flow idle for 350 s).
    assert_eq!(DEFAULT_SEGMENT, Duration::from_secs(300));
    let (retry, timeout) = segment_client_settings(DEFAULT_SEGMENT);
    assert_eq!(
        retry.max_attempts(),
        1,
        "a retried Invoke would re-run the segment"
    );
    assert_eq!(timeout.read_timeout(), Some(Duration::from_secs(335)));
    // The real client (keepalive pool): a failing Invoke is attempted exactly once.
    let server = serve(Arc::new(|_: &str, _| {
        (500, r#"{"message":"boom"}"#.to_string(), Duration::ZERO)
    }))
    .await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-2"))
        .endpoint_url(&server.url)
        .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(
            aws_sdk_lambda::config::Credentials::for_tests(),
        ))
        .build();
    let lambda = lambda_client(&sdk, Duration::from_secs(10)).unwrap();
    let r = invoke_segment(&lambda, "orderbroker-load-generator", &segment(1.0, 1.0)).await;
    let e = r.unwrap_err();
    assert_eq!(
        server.seen.lock().unwrap().len(),
        1,
        "exactly one attempt: {e:?}"
    );
}

/// The CLI `load` against `url` with `extra` arguments, on a blocking thread (the test's server
/// runs on this runtime).
async fn cli_load(url: String, extra: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        crate::support::orderbroker()
            .args(["load", "--url", &url])
            .args(extra)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_bad_target_or_report_path_is_refused_before_the_first_order() {
    let ok: Behaviour = Arc::new(|_, n| (200, order_ok(n), Duration::ZERO));
    let server = serve(ok).await;
    let args = |more: &[&str]| {
        let mut v: Vec<String> = ["--rate", "5", "--duration", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    for (url, says) in [
        (
            "http://no-such-host.invalid",
            "cannot resolve no-such-host.invalid",
        ),
        ("http://127.0.0.1:99999", "--url"),
    ] {
        let out = cli_load(url.into(), args(&[])).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("dropped"), "{url}: {err}");
    }
    let out = cli_load(
        server.url.clone(),
        args(&["--report", "/nonexistent-dir/report.json"]),
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--report /nonexistent-dir/report.json"),
        "{err}"
    );
    assert!(server.seen.lock().unwrap().is_empty(), "no order was sent");
}

#[tokio::test]
async fn progress_is_shown_while_it_runs_and_ctrl_c_still_writes_the_report() {
    let ok: Behaviour = Arc::new(|_, n| (200, order_ok(n), Duration::ZERO));
    let server = serve(ok).await;
    // Progress: a line at least every 5 s (not a terminal here: plain lines on stderr).
    let out = cli_load(
        server.url.clone(),
        ["--rate", "5", "--duration", "6"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("load: sent "), "{err}");
    assert!(err.contains("of 30 scheduled"), "{err}");

    // Ctrl-C after about a second of a 20 s run: stops, writes the report, exits 130.
    let dir = std::env::temp_dir().join(format!("ob-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.json");
    let (url, path) = (server.url.clone(), file.clone());
    let out = tokio::task::spawn_blocking(move || {
        let child = crate::support::orderbroker()
            .args([
                "load",
                "--url",
                &url,
                "--rate",
                "10",
                "--duration",
                "20",
                "--report",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: signals a child process this test owns.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    let report: LoadReport =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(report.sent > 0 && report.sent < 200, "{}", report.sent);
    assert_eq!(report.dropped, 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_load_generator_charges_its_daily_ledger_before_any_order() {
    use aws_sdk_ssm as ssm;
    use orderbroker::load::aws::charge_ledger;
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T15:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let get = |value: &'static str| {
        mock!(ssm::Client::get_parameter)
            .match_requests(|r| r.name() == Some("/ob/load-generator/ledger"))
            .then_output(move || {
                ssm::operation::get_parameter::GetParameterOutput::builder()
                    .parameter(ssm::types::Parameter::builder().value(value).build())
                    .build()
            })
    };
    let put = |expect: &'static str| {
        mock!(ssm::Client::put_parameter)
            .match_requests(move |r| {
                r.name() == Some("/ob/load-generator/ledger")
                    && r.overwrite() == Some(true)
                    && r.value() == Some(expect)
            })
            .then_output(|| ssm::operation::put_parameter::PutParameterOutput::builder().build())
    };
    let l = limits("http://unused");
    // Nothing yet today: charged and written.
    let (g, p) = (get("{}"), put(r#"{"day":"2026-12-02","orders":6000}"#));
    let client = mock_client!(ssm, RuleMode::Sequential, &[&g, &p]);
    let ledger = charge_ledger(&client, &l, now, 6000).await.unwrap();
    assert_eq!(ledger.orders, 6000);
    assert_eq!((g.num_calls(), p.num_calls()), (1, 1));
    // Over the day's cap: refused, nothing written (and so nothing sent).
    let (g, p) = (get(r#"{"day":"2026-12-02","orders":995000}"#), put("never"));
    let client = mock_client!(ssm, RuleMode::MatchAny, &[&g, &p]);
    let e = charge_ledger(&client, &l, now, 6000).await.unwrap_err();
    assert!(e.contains("above MAX_ORDERS_PER_DAY 1000000"), "{e}");
    assert_eq!(p.num_calls(), 0);
    // Yesterday's ledger: today starts at 0.
    let (g, p) = (
        get(r#"{"day":"2026-12-01","orders":999999}"#),
        put(r#"{"day":"2026-12-02","orders":6000}"#),
    );
    let client = mock_client!(ssm, RuleMode::Sequential, &[&g, &p]);
    assert_eq!(
        charge_ledger(&client, &l, now, 6000).await.unwrap().orders,
        6000
    );
    // A ledger that cannot be read is refused, naming it.
    let (g, p) = (get("garbage"), put("never"));
    let client = mock_client!(ssm, RuleMode::MatchAny, &[&g, &p]);
    let e = charge_ledger(&client, &l, now, 1).await.unwrap_err();
    assert!(e.contains("/ob/load-generator/ledger is not valid"), "{e}");
    assert_eq!(p.num_calls(), 0);
}

#[tokio::test]
async fn a_failed_segment_keeps_the_finished_segments_report() {
    // Segment 0 answers its report, segment 1 fails: the run keeps segment 0's counts (the
    // CLI writes and prints them) and names the failed segment.
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let calls2 = calls.clone();
    let rule = mock!(lambda::Client::invoke).then_compute_output(move |_| {
        let k = calls2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = lambda::operation::invoke::InvokeOutput::builder().status_code(200);
        if k == 0 {
            let report = serde_json::json!({
                "url": "http://x", "run_id": "t-s00", "rate": 1.0, "duration_seconds": 1.0,
                "started_at": "2026-12-02T15:00:00Z", "ended_at": "2026-12-02T15:00:01Z",
                "scheduled": 1, "sent": 1, "succeeded": 1, "failed": 0, "dropped": 0,
                "not_sent": 0, "latency_p50_ms": 5, "latency_p99_ms": 5, "latency_max_ms": 5,
                "incidents": []
            });
            out.payload(aws_smithy_types::Blob::new(
                serde_json::to_vec(&report).unwrap(),
            ))
            .build()
        } else {
            out.function_error("Unhandled")
                .payload(aws_smithy_types::Blob::new(
                    r#"{"errorMessage":"rate 5000/s is above this function's MAX_RATE 200/s"}"#,
                ))
                .build()
        }
    });
    let client = mock_client!(lambda, RuleMode::MatchAny, &[&rule]);
    let run = run_via_function(
        &client,
        "orderbroker-load-generator",
        &segment(1.0, 0.0),
        Segments {
            total: Duration::from_millis(200),
            segment: Duration::from_millis(100),
            lead: Duration::ZERO,
        },
        None,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(run.report.as_ref().map(|r| r.succeeded), Some(1));
    assert_eq!(run.failures.len(), 1);
    assert_eq!(run.failures[0].0, 1);
    assert!(run.failures[0].1.to_string().contains("MAX_RATE"));
}

#[test]
fn a_run_with_no_answer_prints_no_latency() {
    let report: LoadReport = serde_json::from_value(serde_json::json!({
        "url": "http://x", "run_id": "t", "rate": 5.0, "duration_seconds": 2.0,
        "started_at": "2026-12-02T15:00:00Z", "ended_at": "2026-12-02T15:00:02Z",
        "scheduled": 10, "sent": 10, "succeeded": 0, "failed": 0, "dropped": 10,
        "not_sent": 0, "latency_p50_ms": 0, "latency_p99_ms": 0, "latency_max_ms": 0,
        "incidents": []
    }))
    .unwrap();
    let s = report.summary();
    assert!(s.contains("latency: no order was answered"), "{s}");
    assert!(!s.contains("p50 0 ms"), "{s}");
}

#[test]
fn the_canned_segment_the_cold_start_smoke_test_sends_is_a_valid_short_segment() {
    // scripts/cold-start.py hands events/load-generator-segment.json to the load-generator
    // executable: it must parse as the function's event and stay a fraction of a second.
    let req: SegmentRequest =
        serde_json::from_value(crate::support::event_json("load-generator-segment.json")).unwrap();
    assert_eq!(req.listener, Listener::Test);
    assert!(req.duration_seconds > 0.0 && req.duration_seconds <= 1.0);
    assert!(
        req.rate * req.duration_seconds >= 1.0,
        "at least one order is sent"
    );
}

/// The smoke test's environment for each function (scripts/cold-start.py) names every variable
/// the template gives that function: a variable a function requires and the smoke lacks fails
/// `make test` only at the smoke, late; this names it at once.
#[test]
fn the_cold_start_smoke_sets_every_variable_the_template_sets() {
    let script =
        std::fs::read_to_string(crate::support::root().join("scripts/cold-start.py")).unwrap();
    let body = &script[script.find("def scenarios(aws_url):").unwrap()..];
    let body = &body[..body.find("\n# ----").unwrap()];
    let keys_in = |text: &str| -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        for token in
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '=' || c == '"'))
        {
            let token = token.trim_matches('"');
            let name = token.split('=').next().unwrap_or_default();
            if (token.contains('=') || text.contains(&format!("\"{name}\":")))
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                keys.insert(name.to_string());
            }
        }
        if text.contains("dict(common") {
            keys.insert("STACK_NAME".into());
        }
        keys
    };
    let template =
        orderbroker::cfn::template::Template::load(crate::support::root().join("template.yaml"))
            .unwrap();
    for f in template.resources_of_type("AWS::Serverless::Function") {
        let handler = f
            .prop("Handler")
            .and_then(|h| h.as_str())
            .unwrap()
            .to_string();
        let block = if handler == "traffic-validator" {
            let at = body.find("hook = dict(").unwrap();
            &body[at..at + body[at..].find("return").unwrap()]
        } else {
            let at = body
                .find(&format!("\"{handler}\": ("))
                .unwrap_or_else(|| panic!("scripts/cold-start.py has no {handler}"));
            &body[at..at + body[at..].find(".json\"").unwrap()]
        };
        let smoke = keys_in(block);
        let vars = f
            .prop("Environment.Variables")
            .and_then(|v| v.as_object())
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let missing: Vec<&String> = vars.iter().filter(|v| !smoke.contains(*v)).collect();
        assert!(
            missing.is_empty(),
            "{} ({handler}): the smoke sets no {missing:?}",
            f.id
        );
    }
}
