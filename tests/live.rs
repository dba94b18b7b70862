//! The market-hours scenarios against a DEPLOYED stack (`make live-test`). They are
//! `#[ignore]`d, so `cargo test` reports them as ignored, never as passed; `make live-test` runs
//! them with `--include-ignored`, each only when the variables it needs are set, and a scenario
//! run without them fails naming the variable. `ORDERBROKER_STACK` names the stack (region:
//! `AWS_REGION`, default us-east-2; credentials from the standard chain):
//!
//! 1. `predictive_scaling_has_tasks_running_before_the_open`: run at 09:25 New York.
//! 2. `blue_green_under_load_drops_no_trade`: needs `ORDERBROKER_GOOD_IMAGE`.
//! 3. `a_bad_version_is_rolled_back_within_five_minutes`: needs `ORDERBROKER_BAD_IMAGE`.
//! 4. `a_crash_looping_version_is_rolled_back_by_the_watchdog`: needs `ORDERBROKER_CRASH_IMAGE`.
//!
//! Each deployment scenario prints which mechanism stopped the deployment (from CodeDeploy's
//! error code and failed lifecycle event) and every measured phase next to the range the
//! rehearsal (`orderbroker rehearse`, src/rehearse) gives for the matching built-in scenario
//! with the stack's own parameter values.
//!
//! The load runs inside the VPC through the stack's load-generator function, or directly at
//! `ORDERBROKER_LOAD_URL` from a machine with VPC access; `ORDERBROKER_LOAD_RATE` orders per
//! second (default 20). Each scenario prints its numbers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use orderbroker::aws::stack::Stack;
use orderbroker::calendar::{local_date, Calendar, EXCHANGE_TZ};
use orderbroker::deploy::aws::{self, Clients, DeployRequest, Progress};
use orderbroker::deploy::{schedule_from_parameters, Outcome};
use orderbroker::load::{LoadReport, LoadRequest};
use orderbroker::warmup::{self, Settings};

struct Live {
    rt: tokio::runtime::Runtime,
    sdk: aws_config::SdkConfig,
    clients: Clients,
    stack: Stack,
}

/// The deployed stack; a scenario cannot run without it and the variables it needs.
fn live(scenario: &str, needs: &[&str]) -> Live {
    let Ok(name) = std::env::var("ORDERBROKER_STACK") else {
        panic!("{scenario} cannot run: set ORDERBROKER_STACK to a deployed stack's name (make live-test ORDERBROKER_STACK=orderbroker)");
    };
    for var in needs {
        if std::env::var(var).is_err() {
            panic!("{scenario} cannot run: set {var} (see docs/live-tests.md)");
        }
    }
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-2".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sdk = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.clone()))
            .load(),
    );
    let clients = Clients::new(&sdk);
    let stack = rt
        .block_on(orderbroker::aws::stack::require_stack(
            &clients.cloudformation,
            &name,
            &region,
        ))
        .unwrap_or_else(|e| panic!("{scenario}: {e}"));
    Live {
        rt,
        sdk,
        clients,
        stack,
    }
}

struct Print;

impl Progress for Print {
    fn line(&mut self, text: &str) {
        println!("{} {text}", Utc::now().format("%H:%M:%SZ"));
    }
}

fn ny(t: DateTime<Utc>) -> String {
    t.with_timezone(&EXCHANGE_TZ).format("%H:%M:%S").to_string()
}

// ---------------------------------------------------------------- 1. predictive scaling

#[test]
#[ignore = "needs a deployed stack: make live-test ORDERBROKER_STACK=..."]
fn predictive_scaling_has_tasks_running_before_the_open() {
    let l = live("predictive scaling", &[]);
    let now = Utc::now();
    let (calendar, settings) = schedule_from_parameters(&l.stack.parameters).unwrap();
    let today = local_date(now);
    let v =
        l.rt.block_on(aws::status(
            &l.clients,
            &l.stack,
            now,
            &settings.action_prefix,
        ))
        .unwrap();
    println!("{}", orderbroker::deploy::status::render_status(&v, now));

    // The next sessions are covered: each has its open and close raise actions.
    let upcoming: Vec<_> = calendar
        .upcoming(now, 3)
        .unwrap()
        .into_iter()
        .filter(|s| s.date > today || s.open_at() > now)
        .collect();
    for s in &upcoming {
        for w in warmup::windows(s, &settings) {
            if w.raise_at <= now {
                continue; // already fired
            }
            let name = warmup::action_name(&settings.action_prefix, &w, "raise");
            assert!(
                v.actions.iter().any(|a| a.name == name),
                "no scheduled action {name}: the warm-up did not plan session {}",
                s.date
            );
        }
    }
    println!(
        "scheduled: raise actions in place for {} upcoming session(s)",
        upcoming.len()
    );

    let Some(session) = calendar.session(today).unwrap() else {
        let why = calendar.closed(today).unwrap();
        println!("{today} is not a trading day ({why:?}): checking nothing is scheduled for it");
        let stray: Vec<&str> = v
            .actions
            .iter()
            .filter(|a| a.name.contains(&format!("-{today}-")))
            .map(|a| a.name.as_str())
            .collect();
        assert!(
            stray.is_empty(),
            "actions scheduled on a closed day: {stray:?}"
        );
        return;
    };
    let [open, _] = warmup::windows(&session, &settings);
    if !(open.raise_at + chrono::Duration::minutes(5) <= now && now < open.spike_start) {
        println!(
            "PARTIAL: now is {} New York; the running-task check needs {}-{} New York on a trading day (run at 09:25: cron `25 9 * * 1-5` with TZ=America/New_York). Schedule checked only.",
            ny(now),
            ny(open.raise_at + chrono::Duration::minutes(5)),
            ny(open.spike_start)
        );
        return;
    }
    // Pre-market: the fewest running tasks between 07:00 and 08:30 New York, Container Insights.
    let premarket = l.rt.block_on(premarket_running(&l, &session.date)).unwrap();
    let min = v.min.unwrap_or(0);
    let forecast =
        l.rt.block_on(forecast_peak(&l, open.spike_start, open.spike_end));
    println!(
        "at {} New York: running {} (desired {}), pre-market running {premarket}, MinCapacity {min}, forecast peak for {}-{}: {}",
        ny(now),
        v.running,
        v.desired,
        ny(open.spike_start),
        ny(open.spike_end),
        forecast.map_or("none".into(), |f| format!("{f:.1}"))
    );
    assert!(
        f64::from(v.running) > premarket,
        "running {} is not above the pre-market {premarket}",
        v.running
    );
    assert!(
        v.running >= min,
        "running {} below the plan's floor {min}",
        v.running
    );
    if let Some(f) = forecast {
        assert!(
            f64::from(v.running) >= f.ceil(),
            "running {} below the forecast for the open {f:.1}",
            v.running
        );
    }
}

async fn premarket_running(l: &Live, date: &chrono::NaiveDate) -> Result<f64, String> {
    let from = orderbroker::calendar::local_instant(
        *date,
        chrono::NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
    )
    .map_err(|e| e.to_string())?;
    let to = from + chrono::Duration::minutes(90);
    let q = orderbroker::aws::cloudwatch::running_tasks_query(
        l.stack.output("ClusterName").unwrap(),
        l.stack.output("ServiceName").unwrap(),
        60,
        "Minimum",
    );
    let series =
        orderbroker::aws::cloudwatch::metric_series(&l.clients.cloudwatch, vec![q], from, to)
            .await
            .map_err(|e| e.to_string())?;
    series
        .iter()
        .map(|(_, v)| *v)
        .reduce(f64::min)
        .ok_or_else(|| "no Container Insights RunningTaskCount between 07:00 and 08:30".into())
}

async fn forecast_peak(l: &Live, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let policy = l.stack.output("PredictiveScalingPolicyName").ok()?;
    let out = l
        .clients
        .autoscaling
        .get_predictive_scaling_forecast()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(l.stack.output("ScalableTargetResourceId").ok()?)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_name(policy)
        .start_time(orderbroker::aws::to_smithy(
            from - chrono::Duration::hours(1),
        ))
        .end_time(orderbroker::aws::to_smithy(to))
        .send()
        .await
        .ok()?;
    let cap = out.capacity_forecast()?;
    cap.timestamps()
        .iter()
        .zip(cap.values())
        .filter_map(|(t, v)| {
            let t = orderbroker::aws::from_smithy(t)?;
            (t + chrono::Duration::hours(1) > from && t < to).then_some(*v)
        })
        .reduce(f64::max)
}

// ---------------------------------------------------------------- load

/// Starts the load; returns the stop switch and the running task's handle.
fn start_load(
    l: &Live,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<Result<LoadReport, String>> {
    let rate: f64 = std::env::var("ORDERBROKER_LOAD_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20.0);
    let direct = std::env::var("ORDERBROKER_LOAD_URL").ok();
    let url = direct
        .clone()
        .unwrap_or_else(|| l.stack.output("ProductionUrl").unwrap().to_string());
    let path = l
        .stack
        .parameters
        .get("SyntheticOrderPath")
        .cloned()
        .unwrap_or_else(|| "/orders".into());
    let base = LoadRequest {
        url,
        rate,
        duration_seconds: 1.0,
        path,
        timeout_ms: 5000,
        max_in_flight: 512,
        run_id: Some(format!("live-{}", Utc::now().format("%Y%m%dT%H%M%S"))),
        start_at_ms: None,
    };
    // At most two hours of load; the scenario stops it when the deployment ends.
    let total = Duration::from_secs(2 * 3600);
    // From inside the VPC the load-generator function loads the stack's own production
    // listener; it exists only when the stack was deployed with LiveTestsEnabled=true.
    let function = match (
        &direct,
        l.stack.parameters.get("LiveTestsEnabled").map(String::as_str),
    ) {
        (None, Some("true")) => l
            .stack
            .output("LoadGeneratorFunctionName")
            .map(str::to_string),
        (None, _) => panic!(
            "live-test: stack {} runs with LiveTestsEnabled=false, so it has no load generator: deploy it with `make deploy LIVE_TESTS=true` first (or set ORDERBROKER_LOAD_URL to load from this machine)",
            l.stack.name
        ),
        (Some(_), _) => Err(orderbroker::aws::stack::StackError::MissingOutput {
            stack: l.stack.name.clone(),
            output: "LoadGeneratorFunctionName (not used: ORDERBROKER_LOAD_URL)".into(),
        }),
    };
    let segment = orderbroker::load::generator::SegmentRequest {
        listener: orderbroker::load::generator::Listener::Production,
        rate,
        duration_seconds: 1.0,
        timeout_ms: Some(base.timeout_ms),
        max_in_flight: Some(base.max_in_flight),
        run_id: base.run_id.clone(),
        start_at_ms: None,
    };
    // No automatic retry (a retried Invoke re-runs a segment), TCP keepalive.
    let lambda = orderbroker::load::in_vpc::lambda_client(
        &l.sdk,
        orderbroker::load::in_vpc::DEFAULT_SEGMENT,
    )
    .expect("the Lambda client");
    println!(
        "load: {rate}/s to {} {}",
        base.url,
        if direct.is_some() {
            "from this machine"
        } else {
            "from inside the VPC (load-generator function)"
        }
    );
    l.rt.spawn(async move {
        match direct {
            Some(_) => {
                let mut cfg = base.config().map_err(|e| e.to_string())?;
                cfg.duration = total;
                let client = reqwest::Client::new();
                Ok(orderbroker::load::run(
                    &client,
                    &cfg,
                    base.run_id.as_deref().unwrap_or("live"),
                    Some(stop),
                )
                .await)
            }
            None => {
                let function = function.map_err(|e| e.to_string())?;
                orderbroker::load::in_vpc::run_via_function(
                    &lambda,
                    &function,
                    &segment,
                    orderbroker::load::in_vpc::Segments {
                        total,
                        segment: orderbroker::load::in_vpc::DEFAULT_SEGMENT,
                        lead: orderbroker::load::in_vpc::SEGMENT_LEAD,
                    },
                    Some(stop),
                    &mut |l| println!("{l}"),
                )
                .await
                .and_then(|run| run.into_result())
                .map_err(|e| e.to_string())
            }
        }
    })
}

fn deploy_request(image: String, now: DateTime<Utc>, stack: &Stack) -> DeployRequest {
    let (calendar, settings): (Calendar, Settings) =
        schedule_from_parameters(&stack.parameters).unwrap();
    DeployRequest {
        timeout: Duration::from_secs(90 * 60),
        ..DeployRequest::new(image, now, calendar, settings)
    }
}

fn production_revision(l: &Live) -> String {
    let names = aws::Names::from_stack(&l.stack).unwrap();
    let svc =
        l.rt.block_on(aws::service_state(&l.clients.ecs, &names))
            .unwrap();
    aws::primary_task_set(&svc)
        .map(|(td, _)| td)
        .expect("a PRIMARY task set")
}

/// Load on production for `margin`, `deploy --wait` of `image`, `margin` more, then the load's
/// report: (the deploy's result, how long it took, the report).
fn deploy_under_load(
    l: &Live,
    image: String,
    margin: Duration,
) -> (
    Result<aws::Deployed, orderbroker::deploy::DeployError>,
    Duration,
    LoadReport,
) {
    let stop = Arc::new(tokio::sync::Notify::new());
    let load = start_load(l, stop.clone());
    std::thread::sleep(margin);
    let t0 = Instant::now();
    let deployed = l.rt.block_on(aws::deploy(
        &l.clients,
        &l.stack,
        &deploy_request(image, Utc::now(), &l.stack),
        &mut Print,
    ));
    let took = t0.elapsed();
    std::thread::sleep(margin);
    stop.notify_one();
    let report = l.rt.block_on(load).unwrap().expect("the load ran");
    print!("{}", report.summary());
    (deployed, took, report)
}

/// The rehearsal of a built-in scenario with the deployed stack's own parameter values.
fn rehearsal(l: &Live, scenario: &str) -> orderbroker::rehearse::Rehearsal {
    use orderbroker::rehearse::{rehearse, scenario::built_in, world::Setup};
    let t = orderbroker::cfn::template::Template::load(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml"),
    )
    .unwrap();
    let pairs: Vec<(String, String)> = l
        .stack
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let s = built_in(scenario).unwrap();
    let setup =
        Setup::for_scenario(&t, &pairs, &s).unwrap_or_else(|e| panic!("the rehearsal: {e}"));
    rehearse(&setup, &s, false)
}

/// Which mechanism stopped the deployment, and each lifecycle event's duration from CodeDeploy
/// (and the whole `deploy --wait`) next to the rehearsal's range for `scenario`.
fn print_against_rehearsal(
    l: &Live,
    deployment_id: &str,
    scenario: &str,
    waited: Duration,
) -> String {
    use orderbroker::rehearse::live::{compare, mechanism};
    let names = aws::Names::from_stack(&l.stack).unwrap();
    let snap =
        l.rt.block_on(aws::snapshot(
            &l.clients.codedeploy,
            deployment_id,
            &names.target_id(),
        ))
        .unwrap();
    let r = rehearsal(l, scenario);
    let failed = snap
        .events
        .iter()
        .find(|(_, status)| status == "Failed")
        .map(|(n, _)| n.as_str());
    let by = mechanism(snap.error_code.as_deref(), failed, snap.error.as_deref());
    println!(
        "{deployment_id}: stopped by {by} | rehearsal ({scenario}): {} in {} of {} runs",
        r.nominal.stopped_by.as_deref().unwrap_or("none"),
        r.stopped_by_runs
            .get(r.nominal.stopped_by.as_deref().unwrap_or("none"))
            .copied()
            .unwrap_or(0),
        r.runs
    );
    let mut measured: Vec<(String, f64)> = snap
        .event_times
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.seconds()?)))
        .collect();
    measured.push(("reported by the CLI".into(), waited.as_secs_f64()));
    for line in compare(&measured, &r) {
        println!("  {line}");
    }
    by
}

// ---------------------------------------------------------------- 2. blue/green under load

#[test]
#[ignore = "needs a deployed stack: make live-test ORDERBROKER_STACK=..."]
fn blue_green_under_load_drops_no_trade() {
    let l = live("blue/green under load", &["ORDERBROKER_GOOD_IMAGE"]);
    let image = std::env::var("ORDERBROKER_GOOD_IMAGE").unwrap();
    // A minute of load on the old version first (the baseline), and a minute after the blue
    // task set is gone.
    let (deployed, took, report) = deploy_under_load(&l, image, Duration::from_secs(60));
    let deployed = deployed.unwrap_or_else(|e| panic!("deploy refused: {e}"));
    let outcome = deployed.outcome.clone().unwrap();
    println!(
        "deployment {} took {:.0} s (traffic shift and blue termination wait included): {}",
        deployed.deployment_id,
        took.as_secs_f64(),
        outcome.describe()
    );
    let by = print_against_rehearsal(&l, &deployed.deployment_id, "good-slow-jvm", took);
    assert_eq!(by, "none", "a good version was stopped");
    assert!(outcome.succeeded(), "{}", outcome.describe());
    assert_eq!(production_revision(&l), deployed.task_definition);
    assert!(
        report.clean(),
        "{} trades failed, {} dropped, {} not sent during the deployment",
        report.failed,
        report.dropped,
        report.not_sent
    );
}

// ---------------------------------------------------------------- 3. auto-rollback

#[test]
#[ignore = "needs a deployed stack: make live-test ORDERBROKER_STACK=..."]
fn a_bad_version_is_rolled_back_within_five_minutes() {
    let l = live("auto-rollback", &["ORDERBROKER_BAD_IMAGE"]);
    let image = std::env::var("ORDERBROKER_BAD_IMAGE").unwrap();
    // The documented bad image never answers its health check: rehearsed as never-listens.
    rolled_back(&l, image, "never-listens");
}

// ---------------------------------------------------------------- 4. crash loop

#[test]
#[ignore = "needs a deployed stack: make live-test ORDERBROKER_STACK=..."]
fn a_crash_looping_version_is_rolled_back_by_the_watchdog() {
    let l = live("crash loop", &["ORDERBROKER_CRASH_IMAGE"]);
    let image = std::env::var("ORDERBROKER_CRASH_IMAGE").unwrap();
    let by = rolled_back(&l, image, "crash-loop");
    // Only the watchdog stops a deployment with StopDeployment in this stack (the gates report
    // Failed, the alarms are ALARM_ACTIVE).
    assert!(by.starts_with("watchdog"), "stopped by {by}");
}

/// Deploys `image` under load and asserts the rollback (the old revision PRIMARY again, within
/// five minutes of the deployment's start, no trade dropped); prints the mechanism and the
/// phases against the rehearsal of `scenario`; what stopped it.
fn rolled_back(l: &Live, image: String, scenario: &str) -> String {
    let before = production_revision(l);
    let (deployed, to_rollback_complete, report) =
        deploy_under_load(l, image, Duration::from_secs(30));
    let deployed = deployed.unwrap_or_else(|e| panic!("deploy refused: {e}"));
    let outcome = deployed.outcome.clone().unwrap();
    println!("{}", outcome.describe());
    let Outcome::RolledBack {
        rollback_id,
        rollback_status,
        ..
    } = &outcome
    else {
        panic!(
            "CodeDeploy did not report a rollback: {}",
            outcome.describe()
        );
    };
    let by = print_against_rehearsal(l, &deployed.deployment_id, scenario, to_rollback_complete);
    let names = aws::Names::from_stack(&l.stack).unwrap();
    let rollback =
        l.rt.block_on(aws::snapshot(
            &l.clients.codedeploy,
            rollback_id,
            &names.target_id(),
        ))
        .unwrap();
    if let (Some(a), Some(b)) = (rollback.created_at, rollback.completed_at) {
        println!(
            "  rollback deployment {rollback_id}: {} s",
            (b - a).num_seconds()
        );
    }
    assert_eq!(rollback_status, "Succeeded");
    assert_eq!(
        production_revision(l),
        before,
        "the old revision serves production"
    );
    assert!(
        to_rollback_complete < Duration::from_secs(300),
        "rollback took {:.0} s",
        to_rollback_complete.as_secs_f64()
    );
    assert!(
        report.clean(),
        "production dropped {} / failed {} trades meanwhile",
        report.dropped,
        report.failed
    );
    by
}
