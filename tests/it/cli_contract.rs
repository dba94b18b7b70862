//! What the CLI promises an SRE, tried as the operator would: every AWS call bounded (a server
//! that accepts and never answers), the account and region named before acting (samconfig's
//! region wins over AWS_REGION when acting on its stack), no panic on a closed pipe or an
//! extreme number, one-line errors, and the exit-code table (docs/cli.md).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{orderbroker, root};

/// A local endpoint playing STS and CloudFormation (both AWS query protocol): the caller
/// identity, and "stack does not exist" for DescribeStacks. Every request body is recorded.
fn fake_aws() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    fake_aws_with(false)
}

/// The same; with `hang`, every request but those two is accepted and never answered.
fn fake_aws_with(hang: bool) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            // Read headers, then the body by Content-Length.
            loop {
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&got).to_string();
            log.lock().unwrap().push(text.clone());
            let known =
                text.contains("Action=GetCallerIdentity") || text.contains("Action=DescribeStacks");
            if hang && !known {
                // Held open, never answered.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(600));
                    drop(s);
                });
                continue;
            }
            let (status, body) = if text.contains("Action=GetCallerIdentity") {
                (
                    200,
                    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::111122223333:user/sre</Arn><UserId>AIDAEXAMPLE</UserId><Account>111122223333</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>".to_string(),
                )
            } else {
                (
                    400,
                    "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id orderbroker does not exist</Message></Error><RequestId>2</RequestId></ErrorResponse>".to_string(),
                )
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

/// A CLI run with credentials set, no profile files and AWS at `endpoint`.
pub(crate) fn cli(args: &[&str], endpoint: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = orderbroker();
    cmd.current_dir(root()).args(args);
    for k in [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "ORDERBROKER_STACK",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_ENDPOINT_URL", endpoint);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A CLI run from the repository root with the shell's environment (no AWS call expected).
fn offline(args: &[&str]) -> Output {
    orderbroker()
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn an_endpoint_that_never_answers_is_an_aws_error_within_the_timeout_not_a_hang() {
    // Accepts every connection and never answers (a black-holed proxy).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    for command in [
        &["status", "--aws-timeout", "2"][..],
        &["rollback", "--aws-timeout", "2"][..],
        &["preflight", "--aws-timeout", "2"][..],
    ] {
        let started = Instant::now();
        let out = cli(command, &url, &[]);
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{command:?}: {err}");
        assert!(took < Duration::from_secs(20), "{command:?} took {took:?}");
        assert!(err.contains("cannot be reached"), "{command:?}: {err}");
        assert!(
            err.contains("timeout"),
            "{command:?} names the timeout: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn readiness_against_aws_that_stops_answering_ends_by_its_deadline_saying_what_it_waits_for() {
    // STS and CloudFormation answer; every other call is accepted and never answered.
    let (url, _) = fake_aws_with(true);
    let started = Instant::now();
    let out = cli(
        &[
            "readiness",
            "--aws-timeout",
            "30",
            "--deadline",
            "12",
            "--set",
            "VpcId=vpc-0123456789abcdef0",
            "--set",
            "PrivateSubnet1=subnet-0123456789abcdef0",
            "--set",
            "PrivateSubnet2=subnet-0123456789abcdef1",
            "--set",
            "PrivateSubnet3=subnet-0123456789abcdef2",
            "--set",
            "OrdersDbResourceId=prx-0123456789abcdef0",
            "--set",
            "OrdersDbSecurityGroupId=sg-0123456789abcdef0",
        ],
        &url,
        &[],
    );
    let took = started.elapsed();
    let err = stderr(&out);
    // The checks run at once: the deadline bounds them all, not 7 x 30 s one after the other.
    assert!(took < Duration::from_secs(25), "took {took:?}: {err}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "facts not read are exit 3: {err}"
    );
    assert!(
        err.contains("readiness: still reading:"),
        "progress every 10 s: {err}"
    );
    assert!(
        err.contains("readiness: UNREAD"),
        "each check said as it ends: {err}"
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("--deadline"), "{report}");
}

#[test]
fn samconfigs_region_wins_over_aws_region_and_the_banner_names_account_and_region() {
    let (url, seen) = fake_aws();
    let out = cli(&["preflight"], &url, &[("AWS_REGION", "us-east-1")]);
    let err = stderr(&out);
    assert!(err.contains("AWS_REGION=us-east-1 ignored"), "{err}");
    assert!(
        err.contains("account 111122223333, region us-east-2 (samconfig.toml), stack orderbroker"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("orderbroker"), "{stdout}");
    // Every request was signed for samconfig's region.
    for r in seen.lock().unwrap().iter() {
        assert!(r.contains("/us-east-2/"), "signed for us-east-2: {r}");
    }
    // --region overrides samconfig, and a named stack is not samconfig's.
    let out = cli(&["preflight", "--region", "us-west-2"], &url, &[]);
    assert!(
        stderr(&out).contains("region us-west-2 (--region)"),
        "{}",
        stderr(&out)
    );
    let out = cli(
        &["status", "--stack", "other"],
        &url,
        &[("AWS_REGION", "eu-west-1")],
    );
    let err = stderr(&out);
    assert!(err.contains("region eu-west-1 (AWS_REGION"), "{err}");
    assert!(!err.contains("ignored"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing stack is bad input: {err}"
    );
    assert!(err.contains("stack other not found in eu-west-1"), "{err}");
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly_without_a_panic() {
    let mut child = orderbroker()
        .current_dir(root())
        .args(["calendar", "--from", "2020-01-01", "--to", "2030-12-31"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe (what `| head -1` does).
    let mut first = [0u8; 32];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn extreme_numbers_are_usage_errors_naming_the_flag_never_a_panic() {
    for args in [
        &["preflight", "--window-margin-minutes", "99999999999999"][..],
        &[
            "deploy",
            "--image",
            "x",
            "--timeout-minutes",
            "999999999999999999",
        ][..],
        &["deploy", "--image", "x", "--poll-seconds", "0"][..],
        &["status", "--aws-timeout", "0"][..],
    ] {
        let out = orderbroker()
            .current_dir(root())
            .args(args)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let flag = args
            .iter()
            .find(|a| a.starts_with("--") && **a != "--image")
            .unwrap();
        assert!(err.contains(flag), "{args:?} names {flag}: {err}");
    }
}

#[test]
fn local_input_is_checked_before_any_aws_call() {
    let (url, seen) = fake_aws();
    let out = cli(&["deploy", "--image", "nginx:latest"], &url, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not an ECR image"), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "no AWS call was made");
}

#[test]
fn a_bad_samconfig_is_named_once() {
    let dir = std::env::temp_dir().join(format!("ob-samconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("samconfig.toml");
    std::fs::write(&bad, "version = 0.1\n[default.deploy.parameters\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_orderbroker"))
        .args(["samconfig", "stack-name", "--samconfig"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&bad.display().to_string()),
        "names the file: {err}"
    );
    assert_eq!(err.matches("TOML").count(), 1, "said once: {err}");
}

#[test]
fn input_that_would_be_ignored_or_overrides_a_single_source_is_refused_by_name() {
    let run = offline;
    let out = run(&["samconfig", "overrides", "--set", "CostCenter=OTHER"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("CostCenter") && err.contains("stack tag"),
        "{err}"
    );
    // The tag's own value is no conflict.
    let tag = String::from_utf8(run(&["samconfig", "tags"]).stdout).unwrap();
    let value = tag
        .split("CostCenter=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let same = format!("CostCenter={value}");
    assert!(run(&["samconfig", "overrides", "--set", &same])
        .status
        .success());
    let out = run(&["samconfig", "overrides", "--set", "=value"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("non-empty KEY"), "{err}");
    let outputs = root().join("events/describe-stacks-deployed.json");
    let out = run(&[
        "appspec",
        "--task-definition",
        "arn:aws:ecs:us-east-2:111122223333:task-definition/x:1",
        "--outputs",
        outputs.to_str().unwrap(),
        "--stack",
        "other",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("--stack/ORDERBROKER_STACK ignored"));
}

/// The exit-code table in docs/cli.md is the one the CLI uses, and each offline outcome gets
/// its row's code.
#[test]
fn every_command_exits_by_the_one_table() {
    let doc = std::fs::read_to_string(root().join("docs/cli.md")).unwrap();
    let documented: Vec<u8> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(documented, [0, 1, 2, 3, 4, 130], "{doc}");

    let dir = std::env::temp_dir().join(format!("ob-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let untagged = dir.join("untagged.yaml");
    std::fs::write(
        &untagged,
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties: {}\n",
    )
    .unwrap();
    let bad_yaml = dir.join("bad.yaml");
    std::fs::write(&bad_yaml, "Resources: [\n").unwrap();
    let run = offline;
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (
            vec!["calendar", "--from", "2026-12-01", "--to", "2026-12-02"],
            0,
        ),
        (vec!["tags", "check", "template.yaml"], 0),
        (vec!["tags", "check", untagged.to_str().unwrap()], 1),
        (vec!["tags", "check", bad_yaml.to_str().unwrap()], 2),
        (vec!["plan", "--date", "2026-12-02", "--max", "0"], 2),
        (vec!["nonsense-command"], 2),
        (vec!["deploy", "--image", "nginx:latest"], 2),
    ];
    for (args, code) in cases {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    }
    // A YAML error names the file, once.
    let err = stderr(&run(&["tags", "check", bad_yaml.to_str().unwrap()]));
    assert!(err.contains(&bad_yaml.display().to_string()), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
