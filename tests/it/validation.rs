//! The traffic validation against local servers on 127.0.0.1 playing the green version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{order_ok, refusing_url, serve, Behaviour};
use orderbroker::gates::validation::{
    judge, percentile, slow_answers_that_fail_p99, validate, HealthOutcome, OrderResult,
    ValidationConfig, Verdict, IDEMPOTENCY_HEADER, SYNTHETIC_ACCOUNT, SYNTHETIC_HEADER,
    SYNTHETIC_SYMBOL,
};

fn fast(url: &str) -> ValidationConfig {
    let mut c = ValidationConfig::for_url(url);
    c.warmup = Duration::from_secs(5);
    c.warmup_interval = Duration::from_millis(100);
    c.request_timeout = Duration::from_secs(1);
    c.p99_threshold = Duration::from_millis(300);
    c.orders = 10;
    c.concurrency = 3;
    c
}

fn behaviour(
    f: impl Fn(&str, usize) -> (u16, String, Duration) + Send + Sync + 'static,
) -> Behaviour {
    Arc::new(f)
}

const NOW: Duration = Duration::ZERO;

async fn run(cfg: &ValidationConfig) -> (orderbroker::gates::validation::Report, Duration) {
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    let r = validate(
        &client,
        cfg,
        "run1",
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    (r, t0.elapsed())
}

#[tokio::test]
async fn healthy_green_passes_with_harmless_unique_orders() {
    let s = serve(behaviour(|path, n| match path {
        "/health" => (200, "{}".into(), NOW),
        _ => (201, order_ok(n), Duration::from_millis(5)),
    }))
    .await;
    let (r, _) = run(&fast(&s.url)).await;
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    assert_eq!((r.sent, r.succeeded, r.failed), (10, 10, 0));
    let seen = s.seen.lock().unwrap().clone();
    let orders: Vec<_> = seen.iter().filter(|s| s.path == "/orders").collect();
    assert_eq!(orders.len(), 10);
    let mut keys: Vec<_> = orders
        .iter()
        .map(|o| o.header(IDEMPOTENCY_HEADER).unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "every order has its own idempotency key");
    for o in orders {
        assert_eq!(o.method, "POST");
        assert_eq!(o.header(SYNTHETIC_HEADER), Some("true"));
        let body: serde_json::Value = serde_json::from_str(&o.body).unwrap();
        assert_eq!(body["account"], SYNTHETIC_ACCOUNT);
        assert_eq!(body["symbol"], SYNTHETIC_SYMBOL);
        assert_eq!(body["dryRun"], true);
        assert_eq!(body["clientOrderId"], o.header(IDEMPOTENCY_HEADER).unwrap());
    }
}

#[tokio::test]
async fn always_500_fails_within_a_second() {
    let s = serve(behaviour(|_, _| (500, "{\"error\":\"boom\"}".into(), NOW))).await;
    let (r, took) = run(&fast(&s.url)).await;
    assert!(
        matches!(&r.verdict, Verdict::Fail(why) if why.contains("health check")),
        "{r:?}"
    );
    assert_eq!(r.health.last_status, Some(500));
    assert_eq!(r.sent, 0);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn refused_connections_fail_within_a_second() {
    let url = refusing_url().await;
    let (r, took) = run(&fast(&url)).await;
    assert!(!r.verdict.passed());
    assert!(
        r.health
            .last_error
            .as_deref()
            .unwrap()
            .contains("connection"),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn slow_green_fails_on_p99_and_stops_at_the_first_slow_answer() {
    let s = serve(behaviour(|path, n| match path {
        "/health" => (200, "{}".into(), NOW),
        _ => (200, order_ok(n), Duration::from_millis(450)),
    }))
    .await;
    let (r, took) = run(&fast(&s.url)).await;
    assert!(
        matches!(&r.verdict, Verdict::Fail(why) if why.contains("p99")),
        "{r:?}"
    );
    assert!(r.p99_ms >= 300);
    assert!(r.stopped_early);
    // 10 orders: one slow answer already loses p99, so only the first concurrent batch goes out.
    assert!(r.sent <= 3, "{}", r.sent);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn flapping_health_that_settles_within_the_warm_up_passes() {
    let s = serve(behaviour(|path, n| match path {
        // 503 (load balancer, targets registering) and 200 alternate, then steady 200.
        "/health" if n <= 6 => (if n % 2 == 0 { 200 } else { 503 }, "{}".into(), NOW),
        "/health" => (200, "{}".into(), NOW),
        _ => (200, order_ok(n), NOW),
    }))
    .await;
    let (r, _) = run(&fast(&s.url)).await;
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    // 503,200,503,200,503,200,200,200: the lone 200s do not count, three in a row do.
    assert_eq!(r.health.attempts, 8, "needs 3 healthy answers in a row");
}

#[tokio::test]
async fn healthy_health_but_failing_orders_fails_and_names_the_failure() {
    let s = serve(behaviour(|path, n| match path {
        "/health" => (200, "{}".into(), NOW),
        _ if n == 2 => (500, "{\"error\":\"db pool exhausted\"}".into(), NOW),
        _ => (200, order_ok(n), NOW),
    }))
    .await;
    let (r, took) = run(&fast(&s.url)).await;
    assert!(!r.verdict.passed());
    assert!(r.failed >= 1);
    let f = &r.failures[0];
    assert_eq!(f.status, Some(500));
    assert_eq!(f.error.as_deref(), Some("status 500"));
    assert!(f
        .body_excerpt
        .as_deref()
        .unwrap()
        .contains("db pool exhausted"));
    assert!(r.stopped_early && r.sent < 10);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn answers_without_the_expected_shape_fail() {
    let s = serve(behaviour(|path, _| match path {
        "/health" => (200, "{}".into(), NOW),
        _ => (200, "{\"ok\":true}".into(), NOW),
    }))
    .await;
    let (r, _) = run(&fast(&s.url)).await;
    assert!(
        matches!(&r.verdict, Verdict::Fail(why) if why.contains("answer lacks orderId, status")),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_green_that_never_becomes_healthy_fails_when_the_warm_up_ends() {
    let s = serve(behaviour(|_, _| (503, "{}".into(), NOW))).await;
    let mut cfg = fast(&s.url);
    cfg.warmup = Duration::from_millis(800);
    let (r, took) = run(&cfg).await;
    assert!(!r.verdict.passed());
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn the_run_fits_the_deadline_it_is_given() {
    let s = serve(behaviour(|path, n| match path {
        "/health" => (200, "{}".into(), NOW),
        _ => (200, order_ok(n), Duration::from_millis(150)),
    }))
    .await;
    let mut cfg = fast(&s.url);
    cfg.orders = 100;
    cfg.concurrency = 1;
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    let r = validate(
        &client,
        &cfg,
        "run2",
        Instant::now() + Duration::from_millis(1200),
    )
    .await;
    assert!(
        t0.elapsed() < Duration::from_millis(1600),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        matches!(&r.verdict, Verdict::Fail(why) if why.contains("time budget")),
        "{r:?}"
    );
}

#[test]
fn verdict_and_percentiles_are_pure() {
    assert_eq!(percentile(&[], 99.0), 0);
    assert_eq!(percentile(&[10, 20, 30, 40], 50.0), 20);
    assert_eq!(percentile(&(1..=100).collect::<Vec<_>>(), 99.0), 99);
    assert_eq!(slow_answers_that_fail_p99(10), 1);
    assert_eq!(slow_answers_that_fail_p99(100), 2);
    assert_eq!(slow_answers_that_fail_p99(200), 3);
    let cfg = ValidationConfig::for_url("http://x");
    let healthy = HealthOutcome {
        healthy: true,
        attempts: 3,
        waited_ms: 10,
        last_status: Some(200),
        last_error: None,
    };
    let ok = |i| OrderResult {
        index: i,
        idempotency_key: format!("k{i}"),
        status: Some(200),
        latency_ms: 20,
        error: None,
        body_excerpt: None,
    };
    let all: Vec<_> = (0..cfg.orders).map(ok).collect();
    assert_eq!(judge(&cfg, &healthy, &all, false), Verdict::Pass);
    assert!(
        !judge(&cfg, &healthy, &all[..5], false).passed(),
        "too few orders"
    );
}

async fn run_cold(c: &ValidationConfig) -> orderbroker::gates::validation::Report {
    validate(
        &reqwest::Client::new(),
        c,
        "cold",
        Instant::now() + Duration::from_secs(20),
    )
    .await
}

#[tokio::test]
async fn a_cold_jvms_slow_first_answers_do_not_fail_a_good_version() {
    // The first 3 orders take 700 ms (the JIT warming up), the rest 5 ms; the threshold is
    // 300 ms. With 5 warm-up orders the judged 10 are fast: pass. Without, one slow answer of
    // 10 already loses p99: the gate would roll a good version back.
    // Health answers at once; order n gets what `order` says.
    let green = |order: fn(usize) -> (u16, Duration)| -> Behaviour {
        Arc::new(move |path: &str, n: usize| {
            if path.starts_with("/health") {
                return (200, "{}".into(), Duration::ZERO);
            }
            let (status, delay) = order(n);
            let body = if status == 200 {
                order_ok(n)
            } else {
                "{}".into()
            };
            (status, body, delay)
        })
    };
    let slow_start = green(|n| {
        let ms = if n <= 3 { 700 } else { 5 };
        (200, Duration::from_millis(ms))
    });
    let server = serve(slow_start.clone()).await;
    let mut c = fast(&server.url);
    c.concurrency = 1;
    c.warmup_orders = 5;
    let r = run_cold(&c).await;
    assert!(r.verdict.passed(), "{:?}", r.verdict);
    assert_eq!(r.sent, 15);
    assert!(r.p99_ms < 300, "judged p99 {} ms", r.p99_ms);
    let server = serve(slow_start).await;
    let mut c = fast(&server.url);
    c.concurrency = 1;
    let r = run_cold(&c).await;
    assert!(!r.verdict.passed());
    // A warm-up order that fails still fails the gate: every order must succeed.
    let failing_first = green(|n| (if n == 1 { 500 } else { 200 }, Duration::ZERO));
    let server = serve(failing_first).await;
    let mut c = fast(&server.url);
    c.warmup_orders = 5;
    let r = run_cold(&c).await;
    assert!(!r.verdict.passed());
}

#[test]
fn a_run_is_sized_for_its_healthy_targets() {
    use orderbroker::gates::validation::{CONCURRENCY_PER_TARGET, MAX_CONCURRENCY};
    let mut cfg = ValidationConfig::for_url("http://green:9090");
    cfg.warmup_orders = 10;
    cfg.warmup_per_target = 50;
    // Three healthy targets: each past its cold start (50 answers) before any order is judged.
    let three = cfg.for_targets(3);
    assert_eq!(three.warmup_orders, 150);
    assert_eq!(three.concurrency, 3 * CONCURRENCY_PER_TARGET);
    assert_eq!(three.orders, cfg.orders);
    // Never below the configured floor, never above the cap.
    assert_eq!(cfg.for_targets(0).warmup_orders, 10);
    assert_eq!(cfg.for_targets(0).concurrency, cfg.concurrency);
    assert_eq!(cfg.for_targets(100).concurrency, MAX_CONCURRENCY);
}
