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
            l.contains("--parameter-overrides") && l.contains(".aws-sam/deploy-overrides.txt"),
            "sam deploy without the full list preflight judged: {l}"
        );
    }
    // preflight writes the full list it judged (samconfig's, derived, --set, Pinned*), with the
    // per-deploy nonce (never alone).
    let deploy = &make[make.find("\ndeploy:").expect("a deploy target")..];
    let preflight_cmd = &deploy[deploy.find("$(ORDERBROKER) preflight").unwrap()..];
    let preflight_cmd = &preflight_cmd[..preflight_cmd.find("\n\t$(SAM) deploy").unwrap()];
    assert!(
        preflight_cmd.contains("--set TagPolicyNonce=$$(date")
            && preflight_cmd.contains("--write-overrides .aws-sam/deploy-overrides.txt"),
        "{preflight_cmd}"
    );
    // ... and runs the market warm-up right after it (a stack update may reset MinCapacity).
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
    // ... and then carries what the stack update could not change on the running service.
    let carry = deploy
        .find("$(ORDERBROKER) carry")
        .expect("make deploy runs orderbroker carry");
    assert!(
        carry > warmup,
        "the warm-up runs even when the carrying rollout fails"
    );
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
fn the_load_generator_exists_only_for_live_tests_and_loads_only_this_stack() {
    let t = template();
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.prop("Handler") == Some(&json!("load-generator")))
        .expect("a load-generator function");
    // Off by default: the function, its role, log group, ledger and output exist only with
    // LiveTestsEnabled=true.
    assert_eq!(
        t.section("Parameters")["LiveTestsEnabled"]["Default"],
        json!("false")
    );
    assert_eq!(
        t.section("Conditions")["LiveTests"],
        json!({"Fn::Equals": [{"Ref": "LiveTestsEnabled"}, "true"]})
    );
    for id in [
        f.id,
        "LoadGeneratorFunctionRole",
        "LoadGeneratorLogGroup",
        "LoadGeneratorLedgerParameter",
    ] {
        assert_eq!(
            t.resource(id).unwrap().condition(),
            Some("LiveTests"),
            "{id}"
        );
    }
    assert_eq!(
        t.section("Outputs")["LoadGeneratorFunctionName"]["Condition"],
        json!("LiveTests")
    );
    let defaults = orderbroker::cfn::resolve::Parameters::new(&t, &[]);
    assert!(!defaults.condition(&t, "LiveTests").unwrap());
    // Its targets are this stack's listeners as the gates reach them, from its environment;
    // its caps too. The event carries neither (src/load/generator.rs refuses a url or path).
    let env = |k: &str| f.prop(&format!("Environment.Variables.{k}")).cloned();
    let hook_env = |hook: &str, k: &str| {
        t.resource(hook)
            .unwrap()
            .prop(&format!("Environment.Variables.{k}"))
            .cloned()
    };
    assert_eq!(
        env("PRODUCTION_LISTENER_URL"),
        hook_env("ProductionTrafficHookFunction", "PRODUCTION_LISTENER_URL")
    );
    assert_eq!(
        env("TEST_LISTENER_URL"),
        hook_env("TestTrafficHookFunction", "TEST_LISTENER_URL")
    );
    assert_eq!(
        env("ORDER_PATH"),
        Some(json!({"Ref": "SyntheticOrderPath"}))
    );
    for (k, p) in [
        ("MAX_RATE", "LoadGeneratorMaxRate"),
        (
            "MAX_ORDERS_PER_INVOCATION",
            "LoadGeneratorMaxOrdersPerInvocation",
        ),
        ("MAX_ORDERS_PER_DAY", "LoadGeneratorMaxOrdersPerDay"),
        ("LEDGER_PARAMETER", "LoadGeneratorLedgerParameter"),
    ] {
        assert_eq!(env(k), Some(json!({"Ref": p})), "{k}");
    }
    // In the VPC, from the validator's group (the listeners admit it; src/network/).
    assert_eq!(
        f.prop("VpcConfig.SecurityGroupIds"),
        Some(&json!([{"Ref": "ValidatorSecurityGroup"}]))
    );
    // Its only AWS permission beyond logs and network interfaces: its own ledger.
    let role = t.resource("LoadGeneratorFunctionRole").unwrap();
    let handler = role
        .prop("Policies")
        .and_then(|p| p.as_array())
        .and_then(|p| p.iter().find(|p| p["PolicyName"] == "handler"))
        .expect("a handler policy");
    let statements = handler["PolicyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0]["Action"],
        json!(["ssm:GetParameter", "ssm:PutParameter"])
    );
    assert!(statements[0]["Resource"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .ends_with("parameter${LoadGeneratorLedgerParameter}"));
    // Synchronous only, a segment fits the timeout.
    assert!(f.prop("Policies").is_none());
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
}
