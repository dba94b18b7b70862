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
        s.prop("NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp"),
        Some(&json!("DISABLED"))
    );
    let subnets = s
        .prop("NetworkConfiguration.AwsvpcConfiguration.Subnets")
        .unwrap()
        .as_array()
        .unwrap();
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
        let metric = alarm
            .prop("MetricName")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        let tg = alarm
            .prop("Dimensions")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["Name"] == "TargetGroup")
            .map(|d| d["Value"]["Fn::GetAtt"][0].as_str().unwrap().to_string());
        watched.insert((metric, tg));
    }
    for metric in [
        "HTTPCode_Target_5XX_Count",
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
fn canary_and_alarm_periods_detect_a_bad_green_before_full_shift() {
    let t = template();
    let dg = only(&t, "AWS::CodeDeploy::DeploymentGroup");
    let cfg_id = dg.prop("DeploymentConfigName").unwrap()["Ref"]
        .as_str()
        .unwrap();
    let cfg = t.resource(cfg_id).unwrap();
    assert_eq!(cfg.prop("ComputePlatform"), Some(&json!("ECS")));
    let canary_minutes = cfg
        .prop("TrafficRoutingConfig.TimeBasedCanary.CanaryInterval")
        .unwrap()
        .as_u64()
        .unwrap();
    for a in dg
        .prop("AlarmConfiguration.Alarms")
        .unwrap()
        .as_array()
        .unwrap()
    {
        let alarm = t.resource(a["Name"]["Ref"].as_str().unwrap()).unwrap();
        let period = alarm.prop("Period").unwrap().as_u64().unwrap();
        let datapoints = alarm.prop("DatapointsToAlarm").unwrap().as_u64().unwrap();
        // ALB metrics land about a minute late: detection = datapoints x period + 60 s.
        let detect = datapoints * period + 60;
        assert!(
            detect <= canary_minutes * 60,
            "{}: detection {detect}s vs canary",
            alarm.id
        );
        // Detection plus moving the listener back (seconds: blue still runs) stays under 5 min.
        assert!(detect + 60 <= 300, "{}", alarm.id);
    }
}
