//! The service, the cluster and the CodeDeploy blue/green group.

use super::*;

// ------------------------------------------------------------------ service

#[test]
fn service_is_codedeploy_controlled_after_both_listeners_without_desired_count() {
    let t = template();
    let s = service(&t);
    assert_eq!(
        s.prop("DeploymentController"),
        Some(&json!({"Type": "CODE_DEPLOY"}))
    );
    assert!(
        s.prop("DesiredCount").is_none(),
        "auto scaling owns the count"
    );
    let prod = listener_forwarding_to(&t, &blue_target_group(&t));
    let test = listener_forwarding_to(&t, &green_target_group(&t));
    let deps = s.depends_on();
    assert!(deps.contains(&prod.id), "DependsOn production listener");
    assert!(deps.contains(&test.id), "DependsOn test listener");
    assert_eq!(s.prop("PropagateTags"), Some(&json!("SERVICE")));
    assert_eq!(s.prop("EnableECSManagedTags"), Some(&json!(true)));
    assert_eq!(
        created(
            &s,
            "NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp"
        ),
        Some(json!("DISABLED"))
    );
    let subnets = created(&s, "NetworkConfiguration.AwsvpcConfiguration.Subnets").unwrap();
    let subnets = subnets.as_array().unwrap();
    assert_eq!(subnets.len(), 3, "three AZs");
    let min = param(&t, "MinTasks")["MinValue"].as_u64().unwrap();
    assert!(min >= subnets.len() as u64, "at least one task per AZ");
}

#[test]
fn cluster_has_enhanced_container_insights_and_both_fargate_providers() {
    let t = template();
    let c = only(&t, "AWS::ECS::Cluster");
    assert_eq!(
        c.prop("ClusterSettings"),
        Some(&json!([{"Name": "containerInsights", "Value": "enhanced"}]))
    );
    assert_eq!(
        c.prop("CapacityProviders"),
        Some(&json!(["FARGATE", "FARGATE_SPOT"]))
    );
}

// ------------------------------------------------------------------ CodeDeploy

#[test]
fn deployment_group_is_blue_green_with_rollback_and_alarms_on_both_target_groups() {
    let t = template();
    let dg = only(&t, "AWS::CodeDeploy::DeploymentGroup");
    assert_eq!(
        dg.prop("DeploymentStyle"),
        Some(&json!({"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"}))
    );
    assert_eq!(
        dg.prop("AutoRollbackConfiguration.Enabled"),
        Some(&json!(true))
    );
    let events: BTreeSet<String> = strings(dg.prop("AutoRollbackConfiguration.Events").unwrap())
        .into_iter()
        .collect();
    assert_eq!(
        events,
        [
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
            "DEPLOYMENT_STOP_ON_REQUEST"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    assert_eq!(
        dg.prop(
            "BlueGreenDeploymentConfiguration.TerminateBlueInstancesOnDeploymentSuccess.Action"
        ),
        Some(&json!("TERMINATE"))
    );
    let blue = blue_target_group(&t);
    let green = green_target_group(&t);
    let pair = dg
        .prop("LoadBalancerInfo.TargetGroupPairInfoList.0")
        .unwrap();
    assert_eq!(
        pair["TargetGroups"],
        json!([{"Name": {"Fn::GetAtt": [blue, "TargetGroupName"]}}, {"Name": {"Fn::GetAtt": [green, "TargetGroupName"]}}]),
        "target groups by NAME"
    );
    let prod = listener_forwarding_to(&t, &blue);
    let test = listener_forwarding_to(&t, &green);
    assert_eq!(
        pair["ProdTrafficRoute"]["ListenerArns"],
        json!([r#ref(prod.id)])
    );
    assert_eq!(
        pair["TestTrafficRoute"]["ListenerArns"],
        json!([r#ref(test.id)])
    );

    // Alarms: enabled, at most 10, and each target-group metric watched on BOTH groups.
    assert_eq!(dg.prop("AlarmConfiguration.Enabled"), Some(&json!(true)));
    let alarms = dg
        .prop("AlarmConfiguration.Alarms")
        .unwrap()
        .as_array()
        .unwrap();
    assert!(!alarms.is_empty() && alarms.len() <= 10);
    let mut watched = BTreeSet::new();
    for a in alarms {
        let id = a["Name"]["Ref"].as_str().expect("alarm by Ref");
        let alarm = t.resource(id).unwrap();
        assert_eq!(alarm.type_name(), "AWS::CloudWatch::Alarm");
        // A plain alarm names one metric; a metric-math alarm names several in Metrics.
        let stats: Vec<Value> = match alarm.prop("Metrics") {
            Some(Value::Array(m)) => m
                .iter()
                .filter_map(|q| lookup(q, "MetricStat.Metric").cloned())
                .collect(),
            _ => vec![json!({
                "MetricName": alarm.prop("MetricName").unwrap(),
                "Dimensions": alarm.prop("Dimensions").unwrap(),
            })],
        };
        for m in stats {
            let tg = m["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["Name"] == "TargetGroup")
                .map(|d| d["Value"]["Fn::GetAtt"][0].as_str().unwrap().to_string());
            assert!(
                tg.is_some(),
                "{id}: every deployment-group alarm is per target group (the ALB-wide ELB 5xx counts the test listener too)"
            );
            watched.insert((m["MetricName"].as_str().unwrap().to_string(), tg));
        }
    }
    for metric in [
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "TargetConnectionErrorCount",
        "UnHealthyHostCount",
        "TargetResponseTime",
    ] {
        for tg in [&blue, &green] {
            assert!(
                watched.contains(&(metric.to_string(), Some(tg.clone()))),
                "{metric} on {tg}"
            );
        }
    }
}

#[test]
fn the_alb_wide_5xx_alarm_pages_but_never_rolls_a_deployment_back() {
    // HTTPCode_ELB_5XX_Count has only the LoadBalancer dimension: it counts the test listener,
    // so a gate's answers would roll a good version back. It pages SRE instead. The rollback
    // and good-version evaluation of the group's alarms is tests/it/timing.rs and tests/it/alarms.rs.
    let t = template();
    let dg = only(&t, "AWS::CodeDeploy::DeploymentGroup");
    let in_group: Vec<&str> = dg
        .prop("AlarmConfiguration.Alarms")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Name"]["Ref"].as_str().unwrap())
        .collect();
    let elb = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .find(|a| a.prop("MetricName") == Some(&json!("HTTPCode_ELB_5XX_Count")))
        .expect("an ALB-wide 5xx alarm");
    assert!(
        !in_group.contains(&elb.id),
        "{} is not a deployment-group alarm",
        elb.id
    );
    assert_eq!(
        elb.prop("AlarmActions"),
        Some(&json!([r#ref("AlarmTopic")]))
    );
}

#[test]
fn every_rollout_property_of_the_service_is_pinned_on_a_stack_update() {
    // ECS refuses them in UpdateService for CODE_DEPLOY: on a stack update make deploy passes
    // the Pinned* values (what the stack already gives the service); src/update/pins.rs.
    let t = template();
    let s = service(&t);
    let pins: BTreeSet<&str> = orderbroker::update::pins::PIN_PARAMETERS
        .into_iter()
        .collect();
    for path in [
        "TaskDefinition",
        "CapacityProviderStrategy",
        "PlatformVersion",
        "NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp",
        "NetworkConfiguration.AwsvpcConfiguration.Subnets",
        "NetworkConfiguration.AwsvpcConfiguration.SecurityGroups",
        "LoadBalancers.0.ContainerName",
        "LoadBalancers.0.ContainerPort",
    ] {
        let v = s.prop(path).unwrap_or_else(|| panic!("Service.{path}"));
        let branches = v["Fn::If"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {v}"));
        assert_eq!(branches[0], "ServicePinned", "{path}");
        let refs = orderbroker::cfn::template::references(&branches[1]);
        assert!(!refs.is_empty(), "{path}");
        for r in refs {
            assert!(pins.contains(r.as_str()), "{path}'s pinned branch uses {r}");
        }
    }
    for p in pins {
        // Empty unless make deploy sets it (AssignPublicIp: a value cfn-lint accepts).
        let default = if p == "PinnedAssignPublicIp" {
            "DISABLED"
        } else {
            ""
        };
        assert_eq!(param(&t, p)["Default"], default, "{p}");
    }
    assert_eq!(
        t.section("Conditions")["ServicePinned"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "PinnedTaskDefinitionArn"}, ""]}]})
    );
    // The revision the service may still run stays ACTIVE when a stack update replaces it.
    let td = only(&t, "AWS::ECS::TaskDefinition");
    assert_eq!(td.body["UpdateReplacePolicy"], "Retain");
}

#[test]
fn the_service_outputs_every_appspec_repeats_are_the_created_values() {
    // A rollout carries the template's settings from these outputs: they must be the values
    // the service is created with (the unpinned branch).
    let t = template();
    let s = service(&t);
    let out = |k: &str| t.section("Outputs")[k]["Value"].clone();
    let vpc = created(&s, "NetworkConfiguration.AwsvpcConfiguration").unwrap();
    assert_eq!(
        out("ServiceSubnetIds"),
        json!({"Fn::Join": [",", vpc["Subnets"]]})
    );
    assert_eq!(
        out("ServiceSecurityGroupIds"),
        json!({"Fn::Join": [",", vpc["SecurityGroups"]]})
    );
    assert_eq!(out("ServiceAssignPublicIp"), vpc["AssignPublicIp"]);
    assert_eq!(
        Some(out("ServicePlatformVersion")),
        created(&s, "PlatformVersion")
    );
    assert_eq!(
        Some(out("ContainerName")),
        created(&s, "LoadBalancers.0.ContainerName")
    );
    assert_eq!(
        Some(out("ContainerPort")),
        created(&s, "LoadBalancers.0.ContainerPort")
    );
    assert_eq!(out("TaskDefinitionArn"), json!({"Ref": "TaskDefinition"}));
}
