//! `orderbroker appspec`: golden files for both architectures, with and without a Spot share,
//! checked against the ECS AppSpec structure; ARM64 with Spot refused; missing outputs named.

use crate::support::root;
use orderbroker::deploy::appspec::{parse_outputs, render, AppSpecError};

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap()
}

const TD: &str = "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker";

fn cli(args: &[&str]) -> std::process::Output {
    crate::support::orderbroker()
        .arg("appspec")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// The ECS AppSpec structure (docs: reference-appspec-file-structure-resources, -hooks).
fn assert_appspec_structure(yaml: &str) {
    let v: serde_json::Value = serde_norway::from_str(yaml).unwrap();
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(top, ["version", "Resources", "Hooks"]);
    assert_eq!(v["version"], 0.0);
    let resources = v["Resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    let ts = &resources[0]["TargetService"];
    assert_eq!(ts["Type"], "AWS::ECS::Service");
    let allowed = [
        "TaskDefinition",
        "LoadBalancerInfo",
        "PlatformVersion",
        "NetworkConfiguration",
        "CapacityProviderStrategy",
    ];
    for k in ts["Properties"].as_object().unwrap().keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "{k} is not an ECS AppSpec property"
        );
    }
    let lb = ts["Properties"]["LoadBalancerInfo"].as_object().unwrap();
    assert_eq!(
        lb.keys().collect::<Vec<_>>(),
        ["ContainerName", "ContainerPort"]
    );
    assert!(lb["ContainerPort"].is_u64());
    // "All or none of the settings under NetworkConfiguration must be specified": all.
    let vpc = ts["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        .as_object()
        .unwrap();
    assert_eq!(
        vpc.keys().collect::<Vec<_>>(),
        ["Subnets", "SecurityGroups", "AssignPublicIp"]
    );
    assert!(!vpc["Subnets"].as_array().unwrap().is_empty());
    assert!(ts["Properties"]["PlatformVersion"].is_string());
    let strategy = ts["Properties"]["CapacityProviderStrategy"]
        .as_array()
        .unwrap();
    assert!(!strategy.is_empty(), "the strategy is always there");
    for s in strategy {
        let mut keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["Base", "CapacityProvider", "Weight"]);
    }
    let events = [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ];
    for h in v["Hooks"].as_array().unwrap() {
        let (event, function) = h.as_object().unwrap().iter().next().unwrap();
        assert!(events.contains(&event.as_str()), "{event}");
        assert!(function.as_str().unwrap().starts_with("CodeDeployHook_"));
    }
}

#[test]
fn arm64_on_fargate_matches_the_golden_file() {
    let out = cli(&[
        "--task-definition",
        &format!("{TD}:7"),
        "--outputs",
        "events/stack-outputs-arm64.json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(yaml, read("tests/golden/appspec-arm64.yaml"));
    assert_appspec_structure(&yaml);
}

#[test]
fn x86_with_a_spot_share_matches_the_golden_file() {
    let out = cli(&[
        "--task-definition",
        &format!("{TD}:8"),
        "--outputs",
        "events/stack-outputs-x86-spot.json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(yaml, read("tests/golden/appspec-x86-spot.yaml"));
    assert_appspec_structure(&yaml);
    assert!(yaml.contains("FARGATE_SPOT"));
}

#[test]
fn arm64_with_a_spot_share_is_refused() {
    let out = cli(&[
        "--task-definition",
        &format!("{TD}:8"),
        "--arch",
        "ARM64",
        "--outputs",
        "events/stack-outputs-x86-spot.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FARGATE_SPOT supports only X86_64"));
}

#[test]
fn bad_inputs_are_named() {
    let mut o = parse_outputs(&read("events/stack-outputs-arm64.json")).unwrap();
    assert_eq!(
        render(&o, "arn:aws:ecs:us-east-2:1:task-definition/x", "ARM64"),
        Err(AppSpecError::BadTaskDefinition(
            "arn:aws:ecs:us-east-2:1:task-definition/x".into()
        ))
    );
    o.remove("TestTrafficHookFunctionName");
    assert_eq!(
        render(&o, &format!("{TD}:7"), "ARM64"),
        Err(AppSpecError::MissingOutput("TestTrafficHookFunctionName"))
    );
    assert!(parse_outputs("[1, 2]").is_err());
}

#[test]
fn the_golden_outputs_fixtures_name_real_template_outputs() {
    let t = orderbroker::cfn::template::Template::load(root().join("template.yaml")).unwrap();
    let outputs = t.section("Outputs").as_object().unwrap();
    for f in [
        "events/stack-outputs-arm64.json",
        "events/stack-outputs-x86-spot.json",
    ] {
        for k in parse_outputs(&read(f)).unwrap().keys() {
            assert!(outputs.contains_key(k), "{f}: {k} is not a template output");
        }
    }
}
