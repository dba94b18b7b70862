//! Parameters, samconfig overrides and outputs.

use super::*;

// ------------------------------------------------------------------ parameters and outputs

#[test]
fn samconfig_overrides_name_real_parameters_and_cover_every_required_one() {
    let t = template();
    let c = samconfig();
    let params = t.section("Parameters").as_object().unwrap();
    let overrides = c.deploy_overrides(&[]).unwrap();
    for (k, _) in &overrides {
        assert!(
            params.contains_key(k),
            "samconfig overrides unknown parameter {k}"
        );
    }
    for (name, p) in params {
        if p.get("Default").is_none() {
            assert!(
                overrides.iter().any(|(k, _)| k == name),
                "required parameter {name} has no value in samconfig"
            );
        }
    }
    // CostCenter has one source: the stack tag.
    assert!(c
        .parameter_overrides()
        .unwrap()
        .iter()
        .all(|(k, _)| k != "CostCenter"));
    let tag = c
        .stack_tags()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "CostCenter")
        .unwrap();
    assert!(overrides.contains(&tag));
    assert_eq!(c.get_str("region"), Some("us-east-2"));
}

#[test]
fn make_deploy_passes_the_full_override_list_not_a_partial_one() {
    let make = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let deploy_lines: Vec<&str> = make
        .lines()
        .filter(|l| l.contains("$(SAM) deploy"))
        .collect();
    assert!(!deploy_lines.is_empty(), "make deploy runs sam deploy");
    for l in deploy_lines {
        assert!(
            l.contains("--parameter-overrides") && l.contains("OVERRIDES"),
            "sam deploy without the full list: {l}"
        );
    }
    assert!(make.contains("samconfig overrides"));
    // The per-deploy nonce rides along with the full list (never alone).
    let overrides_line = make
        .lines()
        .find(|l| l.contains("$(ORDERBROKER) samconfig overrides"))
        .unwrap();
    assert!(
        overrides_line.contains("--set TagPolicyNonce=$$(date"),
        "{overrides_line}"
    );
    // ... and runs the market warm-up right after it (a stack update may reset MinCapacity).
    let deploy = &make[make.find("\ndeploy:").expect("a deploy target")..];
    let sam_deploy = deploy.find("$(SAM) deploy").unwrap();
    // The stack-update guard runs first, on the template about to be deployed.
    let preflight = deploy
        .find("$(ORDERBROKER) preflight --template template.yaml")
        .expect("make deploy runs orderbroker preflight");
    assert!(preflight < sam_deploy, "preflight before sam deploy");
    let warmup = deploy
        .find("$(SAM) remote invoke MarketWarmupFunction")
        .expect("make deploy invokes the warm-up");
    assert!(warmup > sam_deploy);
    assert!(deploy[warmup..].contains("events/market-warmup-deploy.json"));
}

#[test]
fn outputs_name_everything_the_cli_functions_and_live_tests_need() {
    let t = template();
    let outputs = t.section("Outputs").as_object().unwrap();
    for o in [
        "LoadBalancerDnsName",
        "ProductionListenerArn",
        "TestListenerArn",
        "BlueTargetGroupArn",
        "GreenTargetGroupArn",
        "BlueTargetGroupName",
        "GreenTargetGroupName",
        "ClusterName",
        "ServiceName",
        "CodeDeployApplicationName",
        "DeploymentGroupName",
        "AlarmTopicArn",
        "ContainerName",
        "ContainerPort",
        "CapacityProviderStrategy",
        "ScalableTargetResourceId",
        "TestUrl",
        "ProductionUrl",
        "CpuArchitecture",
        "PredictiveScalingPolicyName",
        "LoadGeneratorFunctionName",
        "TestTrafficHookFunctionName",
        "ProductionTrafficHookFunctionName",
    ] {
        assert!(outputs.contains_key(o), "output {o}");
    }
    let container = only(&template(), "AWS::ECS::TaskDefinition")
        .prop("ContainerDefinitions.0.Name")
        .cloned()
        .unwrap();
    assert_eq!(outputs["ContainerName"]["Value"], container);
    assert_eq!(
        lookup(&outputs["ScalableTargetResourceId"], "Value"),
        t.resource("ScalableTarget").unwrap().prop("ResourceId")
    );
}

#[test]
fn the_load_generator_runs_in_the_vpc_from_the_validators_group_with_no_aws_permissions() {
    let t = template();
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.prop("Handler") == Some(&json!("load-generator")))
        .expect("a load-generator function");
    // Both listeners admit the validator's group: the load reaches an internal ALB.
    assert_eq!(
        f.prop("VpcConfig.SecurityGroupIds"),
        Some(&json!([{"Ref": "ValidatorSecurityGroup"}]))
    );
    assert_eq!(
        f.prop("VpcConfig.SubnetIds"),
        Some(
            &json!([{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}, {"Ref": "PrivateSubnet3"}])
        )
    );
    for rule in [
        "ValidatorToProductionListener",
        "ProductionListenerFromValidator",
    ] {
        assert!(t.resource(rule).is_some(), "{rule}");
    }
    // No AWS permissions, synchronous only, a segment fits the timeout.
    assert!(
        f.prop("Policies").is_none(),
        "the load needs no AWS permission"
    );
    assert!(
        f.prop("Events").is_none(),
        "invoked synchronously by the runner only"
    );
    assert_eq!(f.prop("Timeout"), Some(&json!(900)));
    assert_eq!(f.prop("ReservedConcurrentExecutions"), Some(&json!(2)));
    assert_eq!(
        f.prop("FunctionName"),
        Some(&json!({"Fn::Sub": "${AWS::StackName}-load-generator"}))
    );
    // It runs the load-generator handler of the shared bootstrap (that the bootstrap is a bin of
    // a default member: every_function_ships_the_bootstrap_binary_of_a_default_member...).
    assert_eq!(f.prop("Handler"), Some(&json!("load-generator")));
}
