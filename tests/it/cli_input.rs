//! The CLI under bad input and bad output, round two: no panic, no silent minute, no wrong
//! verdict (the issue's commands, each with what it must do instead). Offline unless a local
//! stand-in plays AWS; every exit is one of docs/cli.md's table.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{orderbroker, root};

fn run(args: &[&str]) -> Output {
    orderbroker()
        .current_dir(root())
        .args(args)
        .env_remove("MARKET_CLOSURES")
        .env_remove("ORDERBROKER_STACK")
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A scratch directory of this test process.
fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ob-cli-input-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_stdout_that_cannot_be_written_ends_with_one_line_and_exit_2() {
    for args in [
        &["calendar", "--from", "2018-01-01", "--to", "2030-12-31"][..],
        &["plan", "--date", "2026-12-02", "--json"][..],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = orderbroker()
            .current_dir(root())
            .args(args)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        let e = err(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains("cannot write to standard output"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // Started with descriptor 1 closed (`>&-`): said, exit 2, not exit 0 and nothing.
    let mut cmd = orderbroker();
    cmd.current_dir(root())
        .args(["calendar", "--from", "2026-12-01", "--to", "2026-12-05"]);
    use std::os::unix::process::CommandExt;
    // SAFETY: only close(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("standard output is closed"));
    // /dev/null from a shell (write-only) or a parent (read-write) is a normal sink.
    let out = orderbroker()
        .current_dir(root())
        .args(["calendar", "--from", "2026-12-01", "--to", "2026-12-05"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn stack_names_are_checked_against_cloudformations_rule_before_any_call() {
    for name in ["", "x y", "1stack", "a_b"] {
        let out = run(&["status", "--stack", name]);
        let e = err(&out);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {e}");
        assert!(e.contains("is not a stack name"), "{e}");
    }
    let long = "a".repeat(129);
    assert_eq!(run(&["status", "--stack", &long]).status.code(), Some(2));
    // An empty stack_name in samconfig is refused too, naming the file.
    let dir = scratch("samconfig");
    let text = std::fs::read_to_string(root().join("samconfig.toml"))
        .unwrap()
        .replace("stack_name = \"orderbroker\"", "stack_name = \"\"");
    let file = dir.join("samconfig.toml");
    std::fs::write(&file, text).unwrap();
    let out = run(&[
        "samconfig",
        "stack-name",
        "--samconfig",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("stack_name"), "{}", err(&out));
}

#[test]
fn dates_negative_numbers_and_two_digit_years_say_what_is_wrong() {
    let cases: [(&[&str], &str); 4] = [
        (&["plan", "--date", "2026-02-29"], "is not a date"),
        (&["plan", "--date", "26-02-01"], "four-digit year"),
        (
            &["calendar", "--from", "2026-13-01", "--to", "2026-12-31"],
            "is not a date",
        ),
        (
            &["plan", "--date", "2026-12-02", "--baseline", "-1"],
            "-1 is not in 1..=500",
        ),
    ];
    for (args, says) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(err(&out).contains(says), "{args:?}: {}", err(&out));
        assert!(!err(&out).contains("unexpected argument"), "{}", err(&out));
    }
}

#[test]
fn samconfig_overrides_checks_names_and_types_against_the_template() {
    let cases = [
        ("Bogus=1", "Bogus is not a parameter of the template"),
        ("MinTasks=three", "MinTasks=\"three\" is not a number"),
        ("MinTasks=40", "MinTasks 40 is above MaxTasks 30"),
        ("SreEmail=", "SreEmail is required and empty"),
        (
            "LoadBalancerScheme=public",
            "is not one of internal, internet-facing",
        ),
    ];
    for (set, says) in cases {
        let out = run(&["samconfig", "overrides", "--set", set]);
        assert_eq!(out.status.code(), Some(2), "{set}: {}", err(&out));
        assert!(err(&out).contains(says), "{set}: {}", err(&out));
    }
    // A file error names the file.
    let dir = scratch("template");
    let t = dir.join("t.yaml");
    std::fs::write(&t, "Resources:\n  X: {Type: AWS::S3::Bucket}\n").unwrap();
    let out = run(&["samconfig", "overrides", "--template", t.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains(t.to_str().unwrap()), "{}", err(&out));
}

#[test]
fn untrusted_yaml_is_bounded_before_it_is_parsed() {
    let dir = scratch("yaml");
    let deep = dir.join("deep.yaml");
    let text = format!(
        "Resources:\n  X:\n    Type: A\n    Properties:\n      P: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    std::fs::write(&deep, text).unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(
        &big,
        format!("Resources: {{}}\n# {}\n", "x".repeat(2_000_000)),
    )
    .unwrap();
    for (file, says) in [(&deep, "nested more than 64"), (&big, "more than 1048576")] {
        let started = Instant::now();
        let out = run(&["tags", "check", file.to_str().unwrap()]);
        assert!(started.elapsed() < Duration::from_secs(5), "{file:?}");
        assert_eq!(out.status.code(), Some(2), "{}", err(&out));
        assert!(err(&out).contains(says), "{}", err(&out));
    }
}

#[test]
fn warm_pool_input_with_impossible_timings_or_unknown_keys_is_refused_by_name() {
    let good: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events/warm-pool-model-input.json")).unwrap(),
    )
    .unwrap();
    let dir = scratch("warm-pool");
    let mut before = good.clone();
    before["task_starts"][0]["started_at"] = "2026-11-30T14:04:00Z".into();
    let mut absurd = good.clone();
    absurd["task_starts"][1]["started_at"] = "2036-11-30T14:04:00Z".into();
    let mut unknown = good.clone();
    unknown["task_starts"][0]["stopped_at"] = "2026-11-30T14:09:00Z".into();
    for (name, doc, says) in [
        ("before", before, "task_starts[0]: started_at"),
        ("absurd", absurd, "is not a task start"),
        ("unknown", unknown, "unknown field `stopped_at`"),
    ] {
        let f = dir.join(format!("{name}.json"));
        std::fs::write(&f, doc.to_string()).unwrap();
        let out = run(&["warm-pool", "recommend", "--input", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", err(&out));
        assert!(err(&out).contains(says), "{name}: {}", err(&out));
    }
}

#[test]
fn appspec_refuses_outputs_that_name_no_real_service() {
    let outputs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events/stack-outputs-arm64.json")).unwrap(),
    )
    .unwrap();
    let dir = scratch("appspec");
    let td = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker:7";
    let edit = |key: &str, value: &str| {
        let mut o = outputs.clone();
        let list = o["Stacks"][0]["Outputs"].as_array_mut().unwrap();
        for entry in list.iter_mut() {
            if entry["OutputKey"] == key {
                entry["OutputValue"] = value.into();
            }
        }
        o
    };
    let cases = [
        (edit("ContainerPort", "0"), td, "not a port"),
        (
            edit("CpuArchitecture", "RISCV"),
            td,
            "neither ARM64 nor X86_64",
        ),
        (
            edit(
                "CapacityProviderStrategy",
                r#"[{"CapacityProvider":"EC2","Weight":1}]"#,
            ),
            td,
            "not a Fargate capacity provider",
        ),
        (
            edit("ServiceSubnetIds", "subnet-0a,vpc-0b"),
            td,
            "is not a subnet-... id",
        ),
        (
            edit("ServiceAssignPublicIp", "YES"),
            td,
            "neither ENABLED nor DISABLED",
        ),
        (
            outputs.clone(),
            "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker:0",
            "not a task-definition ARN",
        ),
    ];
    for (k, (doc, arn, says)) in cases.into_iter().enumerate() {
        let f = dir.join(format!("outputs-{k}.json"));
        std::fs::write(&f, doc.to_string()).unwrap();
        let out = run(&[
            "appspec",
            "--task-definition",
            arn,
            "--outputs",
            f.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{says}: {}", err(&out));
        assert!(err(&out).contains(says), "{says}: {}", err(&out));
    }
}

#[test]
fn plan_judges_every_event_alike_and_refuses_days_the_forecast_misses() {
    let dir = scratch("plan");
    let events = dir.join("events.json");
    // The docs' own Good Friday example is refused even when the planned day is that day.
    std::fs::write(
        &events,
        r#"[{"date":"2021-04-02","start":"08:30","end":"09:00","floor":10,"reason":"payrolls"}]"#,
    )
    .unwrap();
    let out = run(&[
        "plan",
        "--date",
        "2021-04-02",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("Good Friday"), "{}", err(&out));
    // A past event is said to be skipped, not dropped unseen.
    std::fs::write(
        &events,
        r#"[{"date":"2026-11-30","start":"08:30","end":"09:00","floor":10,"reason":"old"}]"#,
    )
    .unwrap();
    let out = run(&[
        "plan",
        "--date",
        "2026-12-02",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(
        err(&out).contains("is before 2026-12-02: skipped"),
        "{}",
        err(&out)
    );
    // A forecast covering only one of the trading days is refused for the others.
    let forecast = root().join("events/predictive-forecast-2026-11-30.json");
    let out = run(&[
        "plan",
        "--from",
        "2026-11-30",
        "--to",
        "2026-12-02",
        "--forecast",
        forecast.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(
        err(&out).contains("2026-12-01, 2026-12-02"),
        "{}",
        err(&out)
    );
    // A manual floor above MaxCapacity is said to be capped, once, without a contradiction.
    let out = run(&[
        "plan",
        "--date",
        "2026-12-02",
        "--manual-floor",
        "100",
        "--max",
        "30",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("manual floor").count(), 1, "{text}");
    assert!(
        text.contains("manual floor 100 is above MaxCapacity 30: capped, 30 in force"),
        "{text}"
    );
}

/// An endpoint answering every request with `status` and `body`.
fn answering(status: u16, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 65536];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The CLI contract tests' runner: credentials set, no profile files, AWS at `endpoint`.
fn with_aws(args: &[&str], endpoint: &str, env: &[(&str, &str)]) -> Output {
    crate::cli_contract::cli(args, endpoint, env)
}

#[test]
fn an_http_answer_is_named_by_its_status_not_as_unreachable() {
    let url = answering(500, "<html>proxy error</html>");
    let out = with_aws(&["status", "--aws-timeout", "5"], &url, &[]);
    let e = err(&out);
    assert_eq!(out.status.code(), Some(3), "{e}");
    assert!(e.contains(&format!("HTTP 500 from {url}")), "{e}");
    assert!(!e.contains("cannot be reached"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_profile_wins_over_environment_credentials_and_a_missing_one_is_named() {
    let url = answering(500, "unused");
    let out = with_aws(
        &["status", "--profile", "nope", "--aws-timeout", "5"],
        &url,
        &[],
    );
    let e = err(&out);
    assert_eq!(out.status.code(), Some(3), "{e}");
    assert!(e.contains("profile nope gives no credentials"), "{e}");
}

#[test]
fn images_without_a_version_or_in_another_region_are_refused_before_any_call() {
    let url = answering(500, "must not be asked");
    for (image, says) in [
        (
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/orderbroker",
            "names no version",
        ),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/orderbroker:1.4.2",
            "is in eu-west-1, the stack in us-east-2",
        ),
    ] {
        let out = with_aws(&["deploy", "--image", image], &url, &[]);
        let e = err(&out);
        assert_eq!(out.status.code(), Some(2), "{image}: {e}");
        assert!(e.contains(says), "{image}: {e}");
        assert!(!e.contains("HTTP 500"), "no AWS call: {e}");
    }
}

#[test]
fn a_command_that_stops_hearing_from_aws_ends_by_its_deadline_saying_it_still_waits() {
    // Answers STS, then holds every other request open without an answer.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n]).contains("GetCallerIdentity") {
                    let body = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::111122223333:user/sre</Arn><UserId>A</UserId><Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                } else {
                    std::thread::sleep(Duration::from_secs(120));
                }
            });
        }
    });
    let started = Instant::now();
    let out = with_aws(
        &["status", "--aws-timeout", "60", "--command-deadline", "12"],
        &url,
        &[],
    );
    let took = started.elapsed();
    let e = err(&out);
    assert!(took < Duration::from_secs(20), "took {took:?}: {e}");
    assert_eq!(out.status.code(), Some(4), "gave up waiting: {e}");
    assert!(
        e.contains("still working, waiting for AWS"),
        "a line every 10 s: {e}"
    );
    assert!(e.contains("--command-deadline"), "{e}");
}
