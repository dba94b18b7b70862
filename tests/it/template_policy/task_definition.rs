//! The task definition: size, architecture, Spot, logs, health check.

use super::*;

// ------------------------------------------------------------------ task definition

#[test]
fn task_is_right_sized_to_2048_cpu_and_4096_mib_with_only_valid_fargate_pairs() {
    let t = template();
    let td = only(&t, "AWS::ECS::TaskDefinition");
    assert_eq!(td.prop("Cpu"), Some(&r#ref("TaskCpu")));
    assert_eq!(td.prop("Memory"), Some(&r#ref("TaskMemory")));
    assert_eq!(param(&t, "TaskCpu")["Default"], "2048");
    assert_eq!(param(&t, "TaskMemory")["Default"], "4096");
    assert_eq!(
        td.prop("RequiresCompatibilities"),
        Some(&json!(["FARGATE"]))
    );

    // Every CPU value has a rule whose memory list is exactly Fargate's range for it.
    let fargate = |cpu: u32| -> Vec<String> {
        let (lo, hi) = match cpu {
            1024 => (2048, 8192),
            2048 => (4096, 16384),
            4096 => (8192, 30720),
            _ => panic!("no Fargate range for {cpu}"),
        };
        (lo..=hi).step_by(1024).map(|m| m.to_string()).collect()
    };
    let rules = t.section("Rules").as_object().expect("Rules");
    let mut union = BTreeSet::new();
    for cpu in strings(&param(&t, "TaskCpu")["AllowedValues"]) {
        let rule = rules
            .values()
            .find(|r| r["RuleCondition"] == json!({"Fn::Equals": [{"Ref": "TaskCpu"}, cpu]}))
            .unwrap_or_else(|| panic!("no memory rule for TaskCpu={cpu}"));
        let contains = &rule["Assertions"][0]["Assert"]["Fn::Contains"];
        assert_eq!(contains[1], r#ref("TaskMemory"));
        let allowed = strings(&contains[0]);
        assert_eq!(allowed, fargate(cpu.parse().unwrap()), "TaskCpu={cpu}");
        union.extend(allowed);
    }
    let offered: BTreeSet<_> = strings(&param(&t, "TaskMemory")["AllowedValues"])
        .into_iter()
        .collect();
    assert_eq!(offered, union, "TaskMemory offers exactly the valid values");
}

#[test]
fn architecture_is_a_parameter_with_both_values_arm64_by_default() {
    let t = template();
    let p = param(&t, "CpuArchitecture");
    assert_eq!(strings(&p["AllowedValues"]), vec!["ARM64", "X86_64"]);
    assert_eq!(p["Default"], "ARM64");
    let td = only(&t, "AWS::ECS::TaskDefinition");
    assert_eq!(
        td.prop("RuntimePlatform"),
        Some(
            &json!({"OperatingSystemFamily": "LINUX", "CpuArchitecture": {"Ref": "CpuArchitecture"}})
        )
    );
}

#[test]
fn spot_share_is_refused_with_arm64_and_is_the_only_way_spot_enters() {
    let t = template();
    let rules = t.section("Rules").as_object().unwrap();
    let rule = rules
        .values()
        .find(|r| {
            r["RuleCondition"] == json!({"Fn::Equals": [{"Ref": "CpuArchitecture"}, "ARM64"]})
        })
        .expect("a rule conditioned on ARM64");
    assert_eq!(
        rule["Assertions"][0]["Assert"],
        json!({"Fn::Equals": [{"Ref": "SpotWeight"}, "0"]})
    );
    assert_eq!(param(&t, "SpotWeight")["Default"], 0);

    let s = service(&t);
    assert!(
        s.prop("LaunchType").is_none(),
        "LaunchType and a strategy exclude each other"
    );
    let strategy = created(&s, "CapacityProviderStrategy").expect("strategy");
    let branches = &strategy["Fn::If"];
    assert_eq!(branches[0], "HasSpot");
    assert_eq!(
        t.section("Conditions")["HasSpot"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "SpotWeight"}, 0]}]})
    );
    let providers = |b: &Value| -> Vec<String> {
        b.as_array()
            .unwrap()
            .iter()
            .map(|e| e["CapacityProvider"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(providers(&branches[1]), vec!["FARGATE", "FARGATE_SPOT"]);
    assert_eq!(providers(&branches[2]), vec!["FARGATE"]);
    assert_eq!(branches[2][0]["Base"], r#ref("OnDemandBaseTasks"));
    assert_eq!(branches[1][1]["Weight"], r#ref("SpotWeight"));
}

#[test]
fn container_drains_logs_without_blocking_and_has_a_health_check() {
    let t = template();
    let td = only(&t, "AWS::ECS::TaskDefinition");
    let c = td.prop("ContainerDefinitions.0").unwrap();
    assert!(c["StopTimeout"].as_u64().unwrap() <= 120, "Fargate maximum");
    // Long enough to flush after the deregistration delay drained in-flight orders, short
    // enough that a rollback waiting out a bad image that ignores SIGTERM stays in budget
    // (tests/it/timing.rs).
    assert!(c["StopTimeout"].as_u64().unwrap() >= 20);
    let hc = &c["HealthCheck"]["Command"];
    assert_eq!(hc[0], "CMD-SHELL");
    assert!(references(hc).contains(&"HealthCheckPath".to_string()));
    let log = &c["LogConfiguration"];
    assert_eq!(log["LogDriver"], "awslogs");
    assert_eq!(log["Options"]["mode"], "non-blocking");
    assert!(log["Options"]["max-buffer-size"]
        .as_str()
        .unwrap()
        .ends_with('m'));
    let group = log["Options"]["awslogs-group"]["Ref"].as_str().unwrap();
    let lg = t.resource(group).unwrap();
    assert_eq!(lg.type_name(), "AWS::Logs::LogGroup");
    assert!(lg.prop("RetentionInDays").is_some());
    let jvm = c["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Name"] == "JAVA_TOOL_OPTIONS")
        .expect("JVM options");
    assert!(jvm["Value"].as_str().unwrap().contains("MaxRAMPercentage"));

    // Deregistration delay 30-60 s on both target groups.
    let p = param(&t, "DeregistrationDelaySeconds");
    assert!(p["MinValue"].as_u64().unwrap() >= 30 && p["MaxValue"].as_u64().unwrap() <= 60);
    for tg in t.resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup") {
        let attrs = tg
            .prop("TargetGroupAttributes")
            .unwrap()
            .as_array()
            .unwrap();
        assert!(attrs.contains(&json!({
            "Key": "deregistration_delay.timeout_seconds",
            "Value": {"Ref": "DeregistrationDelaySeconds"}
        })));
        assert_eq!(tg.prop("TargetType"), Some(&json!("ip")));
        assert!(
            tg.prop("HealthCheckIntervalSeconds")
                .unwrap()
                .as_u64()
                .unwrap()
                <= 10
        );
    }
}
