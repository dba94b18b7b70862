//! Predictive scaling, alarms and the dashboard.

use super::*;

// ------------------------------------------------------------------ scaling

#[test]
fn predictive_scaling_forecasts_and_scales_on_ecs_cpu_ahead_of_the_hour() {
    let t = template();
    let policies: Vec<_> = t
        .resources_of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
        .collect();
    let predictive: Vec<_> = policies
        .iter()
        .filter(|p| p.prop("PolicyType") == Some(&json!("PredictiveScaling")))
        .collect();
    assert_eq!(predictive.len(), 1);
    let cfg = predictive[0]
        .prop("PredictiveScalingPolicyConfiguration")
        .unwrap();
    assert_eq!(cfg["Mode"], "ForecastAndScale");
    assert_eq!(
        cfg["MetricSpecifications"][0]["PredefinedMetricPairSpecification"]["PredefinedMetricType"],
        "ECSServiceCPUUtilization"
    );
    assert_eq!(cfg["MetricSpecifications"].as_array().unwrap().len(), 1);
    let buffer = param(&t, "PredictiveBufferSeconds");
    assert_eq!(
        cfg["SchedulingBufferTime"],
        r#ref("PredictiveBufferSeconds")
    );
    // Tasks for the 09:00 hour must start early enough to be healthy by 09:25 at the latest:
    // a buffer of at least 300 s launches them by 08:55.
    assert!(buffer["MinValue"].as_u64().unwrap() >= 300);
    assert!(buffer["MaxValue"].as_u64().unwrap() <= 3600);

    let tracking: Vec<_> = policies
        .iter()
        .filter(|p| p.prop("PolicyType") == Some(&json!("TargetTrackingScaling")))
        .collect();
    assert_eq!(tracking.len(), 1);
    // No policy is keyed to one target group (CodeDeploy swaps them).
    for p in &policies {
        let text = p.properties().to_string();
        assert!(!text.contains("ALBRequestCount"), "{}", p.id);
        assert_eq!(p.prop("ScalingTargetId"), Some(&r#ref("ScalableTarget")));
    }
    let st = t.resource("ScalableTarget").unwrap();
    assert_eq!(st.prop("MinCapacity"), Some(&r#ref("MinTasks")));
    assert_eq!(st.prop("MaxCapacity"), Some(&r#ref("MaxTasks")));
}

// ------------------------------------------------------------------ alarms

#[test]
fn every_alarm_notifies_the_cmk_encrypted_sre_topic() {
    let t = template();
    let topic = only(&t, "AWS::SNS::Topic");
    let key_id = topic.prop("KmsMasterKeyId").unwrap()["Ref"]
        .as_str()
        .expect("a customer-managed key, not alias/aws/sns");
    let key = t.resource(key_id).unwrap();
    assert_eq!(key.type_name(), "AWS::KMS::Key");
    assert!(key
        .prop("KeyPolicy.Statement")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
            && as_list(&s["Action"]).contains(&json!("kms:GenerateDataKey*"))));
    let sub = only(&t, "AWS::SNS::Subscription");
    assert_eq!(sub.prop("Protocol"), Some(&json!("email")));
    assert_eq!(sub.prop("Endpoint"), Some(&r#ref("SreEmail")));

    let alarms: Vec<_> = t.resources_of_type("AWS::CloudWatch::Alarm").collect();
    assert!(alarms.len() >= 9);
    for a in &alarms {
        assert!(
            as_list(a.prop("AlarmActions").unwrap()).contains(&r#ref(topic.id)),
            "{} must notify the SRE topic",
            a.id
        );
        assert!(
            a.prop("TreatMissingData").is_some(),
            "{}: choose missing data on purpose",
            a.id
        );
    }
    let metric = |m: &str| {
        alarms
            .iter()
            .find(|a| a.prop("MetricName") == Some(&json!(m)))
            .unwrap_or_else(|| panic!("alarm on {m}"))
    };
    for kpi in ["JvmHeapUsedPercent", "DbPoolUtilizationPercent"] {
        let a = metric(kpi);
        assert_eq!(a.prop("Namespace"), Some(&json!("OrderBroker")));
        assert_eq!(
            a.prop("Dimensions"),
            Some(&json!([{"Name": "Stack", "Value": {"Ref": "AWS::StackName"}}]))
        );
    }
    metric("HTTPCode_ELB_5XX_Count");
    let below = alarms
        .iter()
        .find(|a| {
            a.prop("Metrics")
                .is_some_and(|m| m.to_string().contains("RunningTaskCount"))
        })
        .expect("running-below-desired alarm");
    assert!(below
        .prop("Metrics")
        .unwrap()
        .to_string()
        .contains("DesiredTaskCount"));
    assert!(below.prop("EvaluationPeriods").unwrap().as_u64().unwrap() >= 3);
}

#[test]
fn dashboard_shows_tasks_cpu_memory_heap_pool_requests_5xx_and_p99() {
    let t = template();
    let d = only(&t, "AWS::CloudWatch::Dashboard");
    let body = d.prop("DashboardBody.Fn::Sub.0").unwrap().as_str().unwrap();
    for m in [
        "RunningTaskCount",
        "DesiredTaskCount",
        "CPUUtilization",
        "MemoryUtilization",
        "JvmHeapUsedPercent",
        "DbPoolUtilizationPercent",
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
    ] {
        assert!(body.contains(m), "dashboard lacks {m}");
    }
}
