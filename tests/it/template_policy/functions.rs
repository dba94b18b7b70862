//! The Lambda functions: warm-up, gates, warm pool, tag policy.

use super::*;

// ------------------------------------------------------------------ market warm-up

#[test]
fn market_warmup_runs_hourly_and_in_session_in_new_york_time_with_alarms() {
    let t = template();
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.prop("Handler") == Some(&json!("market-warmup")))
        .expect("market-warmup function");
    assert_eq!(f.body["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(f.prop("ReservedConcurrentExecutions"), Some(&json!(1)));
    let events = f.prop("Events").unwrap().as_object().unwrap();
    let mut expressions = Vec::new();
    for (name, e) in events {
        assert_eq!(e["Type"], "ScheduleV2", "{name}");
        if e["Properties"]["ScheduleExpression"] == "rate(1 minute)" {
            // The reservation's per-minute check: a rate has no time zone; on only when enabled.
            assert_eq!(name, "ReservationEveryMinute");
        } else {
            assert_eq!(
                e["Properties"]["ScheduleExpressionTimezone"], "America/New_York",
                "{name}"
            );
        }
        let input: Value =
            serde_json::from_str(e["Properties"]["Input"].as_str().unwrap()).unwrap();
        assert!(input["trigger"].is_string(), "{name}");
        assert_eq!(
            e["Properties"]["DeadLetterConfig"]["Arn"],
            json!({"Fn::GetAtt": ["WarmupDeadLetterQueue", "Arn"]})
        );
        match e["Properties"]["ScheduleExpression"].as_str() {
            Some(x) => expressions.push(x.to_string()),
            // The deadline check's cron is a parameter, and it runs only when enabled.
            None => {
                assert_eq!(name, "ReservationDeadline");
                assert_eq!(
                    e["Properties"]["ScheduleExpression"],
                    r#ref("AlbReservationDeadlineCron")
                );
            }
        }
        if name.starts_with("Reservation") {
            assert_eq!(
                e["Properties"]["State"],
                json!({"Fn::If": ["ReserveAlb", "ENABLED", "DISABLED"]}),
                "{name}"
            );
        }
    }
    expressions.sort();
    // Hourly every day (weekends and holidays too: the dead-man alarm needs it), every 10
    // minutes from 07:00 through the session on weekdays, and the reservation's check.
    assert_eq!(
        expressions,
        vec![
            "cron(0/10 7-16 ? * MON-FRI *)",
            "cron(5 * * * ? *)",
            "rate(1 minute)"
        ]
    );
    assert_eq!(
        f.prop("EventInvokeConfig.DestinationConfig.OnFailure.Destination"),
        Some(&json!({"Fn::GetAtt": ["WarmupDeadLetterQueue", "Arn"]}))
    );
    let env = f.prop("Environment.Variables").unwrap();
    assert_eq!(env["BASELINE_MIN_TASKS"], r#ref("MinTasks"));
    assert_eq!(env["MARKET_CLOSURES"], r#ref("MarketClosures"));
    assert_eq!(
        env["SCALABLE_RESOURCE_ID"],
        t.resource("ScalableTarget")
            .unwrap()
            .prop("ResourceId")
            .cloned()
            .unwrap()
    );

    // Dead man's switch: missing data is breaching.
    let coverage = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .find(|a| a.prop("MetricName") == Some(&json!("NextSpikeCovered")))
        .expect("coverage alarm");
    assert_eq!(coverage.prop("TreatMissingData"), Some(&json!("breaching")));
    assert_eq!(coverage.prop("Namespace"), env.get("METRICS_NAMESPACE"));
    let failures = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .find(|a| {
            a.prop("Dimensions.0.Value")
                == Some(&json!({"Fn::GetAtt": ["WarmupDeadLetterQueue", "QueueName"]}))
        })
        .expect("dead-letter queue alarm");
    assert_eq!(
        failures.prop("MetricName"),
        Some(&json!("ApproximateNumberOfMessagesVisible"))
    );

    // Least privilege: writes only on scalable targets, reads on "*" only where the API has no
    // resource type, metrics only in its namespace.
    let st = function_statements(&f);
    let by_sid = |sid: &str| {
        st.iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("statement {sid}"))
            .clone()
    };
    let write = by_sid("WriteScheduledActionsAndMinCapacity");
    assert!(write["Resource"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .contains(":scalable-target/"));
    let publish = by_sid("PublishCoverage");
    assert_eq!(
        publish["Condition"],
        json!({"StringEquals": {"cloudwatch:namespace": "OrderBroker/WarmUp"}})
    );
    for s in &st {
        for a in as_list(&s["Action"]) {
            assert!(!a.as_str().unwrap().contains('*'), "{a}");
        }
    }
    let wildcard: BTreeSet<String> = st
        .iter()
        .filter(|s| s["Resource"] == "*")
        .flat_map(|s| as_list(&s["Action"]))
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        wildcard,
        [
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScheduledActions",
            "application-autoscaling:GetPredictiveScalingForecast",
            "cloudwatch:GetMetricData",
            "cloudwatch:PutMetricData",
            // ELB Describe actions have no resource-level permissions (ALB reservation, enabled only).
            "elasticloadbalancing:DescribeCapacityReservation",
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
}

// ------------------------------------------------------------------ deployment gates

#[test]
fn deployment_gates_are_codedeploy_hook_functions_in_the_vpc_that_may_only_report_status() {
    let t = template();
    let hooks: Vec<_> = t
        .resources_of_type("AWS::Serverless::Function")
        .filter(|f| f.prop("Handler") == Some(&json!("traffic-validator")))
        .collect();
    assert_eq!(hooks.len(), 2);
    let stack = samconfig().get_str("stack_name").unwrap().to_string();
    let mut listeners = Vec::new();
    for h in &hooks {
        let name = h.prop("FunctionName").unwrap()["Fn::Sub"].as_str().unwrap();
        assert!(
            name.starts_with("CodeDeployHook_"),
            "{name}: the Limited role invokes only this prefix"
        );
        assert!(name.replace("${AWS::StackName}", &stack).len() <= 64);
        assert_eq!(
            h.prop("VpcConfig.SecurityGroupIds"),
            Some(&json!([{"Ref": "ValidatorSecurityGroup"}]))
        );
        assert_eq!(
            h.prop("VpcConfig.SubnetIds")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let env = h.prop("Environment.Variables").unwrap();
        listeners.push(env["LISTENER"].as_str().unwrap().to_string());
        let st = function_statements(h);
        assert_eq!(st.len(), 2, "{}: the status call and target health", h.id);
        // Target health before anything is sent; the ELB Describe actions allow only "*".
        assert_eq!(
            st[1]["Action"],
            json!([
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeTargetHealth"
            ])
        );
        assert_eq!(st[1]["Resource"], "*");
        assert!(
            env["LISTENER_ARN"].get("Ref").is_some(),
            "{}: the listener it tests",
            h.id
        );
        assert_eq!(env["READINESS_SECONDS"], r#ref("GateReadinessSeconds"));
        assert_eq!(env["NEVER_HEALTHY_SECONDS"], r#ref("NeverHealthySeconds"));
        assert_eq!(h.prop("Timeout"), Some(&r#ref("HookTimeoutSeconds")));
        // No Lambda retry: a retried gate would run past the watchdog's silence deadline.
        assert_eq!(
            h.prop("EventInvokeConfig.MaximumRetryAttempts"),
            Some(&json!(0)),
            "{}",
            h.id
        );
        // p99 is judged only once every healthy target is past its declared cold start.
        assert_eq!(env["P99_THRESHOLD_MS"], r#ref("ValidationP99Milliseconds"));
        assert_eq!(env["WARMUP_ORDERS_PER_TARGET"], r#ref("ColdStartRequests"));
        assert_eq!(
            st[0]["Action"],
            "codedeploy:PutLifecycleEventHookExecutionStatus"
        );
        let res = st[0]["Resource"]["Fn::Sub"].as_str().unwrap();
        assert!(
            res.ends_with(":deploymentgroup:${CodeDeployApplication}/${DeploymentGroup}"),
            "{res}"
        );
        assert!(h
            .prop("EventInvokeConfig.DestinationConfig.OnFailure.Destination")
            .is_some());
        // The Lambda timeout (derived: readiness + orders + reserve) leaves the validation's
        // budget plus the reserve the function keeps; tests/it/timing.rs checks the numbers.
        assert!(
            env.get("MAX_RUN_SECONDS").is_none(),
            "{}: derived from READINESS_SECONDS",
            h.id
        );
        assert_eq!(
            env["REPORT_RESERVE_SECONDS"],
            json!(orderbroker::timing::REPORT_RESERVE_SECONDS.to_string())
        );
        assert_eq!(env["HEALTH_PATH"], r#ref("HealthCheckPath"));
    }
    listeners.sort();
    assert_eq!(listeners, vec!["production", "test"]);
    let test = hooks
        .iter()
        .find(|h| h.prop("Environment.Variables.LISTENER") == Some(&json!("test")))
        .unwrap();
    assert_eq!(
        test.prop("Environment.Variables.TEST_LISTENER_URL"),
        Some(&json!({"Fn::If": [
            "HasCertificate",
            {"Fn::Sub": "https://${CertificateHostName}:9090"},
            {"Fn::Sub": "http://${LoadBalancer.DNSName}:9090"}
        ]}))
    );
    let prod = hooks
        .iter()
        .find(|h| h.prop("Environment.Variables.LISTENER") == Some(&json!("production")))
        .unwrap();
    assert_eq!(
        prod.prop("Environment.Variables.PRODUCTION_LISTENER_URL.Fn::If.1"),
        Some(&json!({"Fn::Sub": "https://${CertificateHostName}"})),
        "with HTTPS the production check uses the certificate's host name"
    );
    // The deployment group's role may invoke them: Limited policy (CodeDeployHook_* only).
    let outputs = t.section("Outputs");
    assert_eq!(
        outputs["TestTrafficHookFunctionName"]["Value"],
        r#ref(test.id)
    );
    assert_eq!(
        outputs["ProductionTrafficHookFunctionName"]["Value"],
        r#ref(prod.id)
    );
}

// ------------------------------------------------------------------ warm pool

#[test]
fn target_tracking_keeps_demand_plus_n_standby_tasks_through_metric_math() {
    let t = template();
    let tracking: Vec<_> = t
        .resources_of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
        .filter(|p| p.prop("PolicyType") == Some(&json!("TargetTrackingScaling")))
        .collect();
    assert_eq!(
        tracking.len(),
        1,
        "the standby-aware policy replaces the plain CPU one"
    );
    let cfg = tracking[0]
        .prop("TargetTrackingScalingPolicyConfiguration")
        .unwrap();
    assert!(cfg.get("PredefinedMetricSpecification").is_none());
    assert_eq!(cfg["TargetValue"], r#ref("CpuTargetValue"));
    let metrics = cfg["CustomizedMetricSpecification"]["Metrics"]
        .as_array()
        .unwrap();
    let by_id = |id: &str| {
        metrics
            .iter()
            .find(|m| m["Id"] == id)
            .unwrap_or_else(|| panic!("query {id}"))
    };
    // Only the final expression returns data.
    let returning: Vec<_> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
    assert_eq!(returning.len(), 1);
    assert_eq!(returning[0]["Id"], "tracked");
    assert_eq!(
        returning[0]["Expression"],
        json!({"Fn::Sub": "IF(desired > 0, (cpu * running + n * ${CpuTargetValue}) / desired, n * ${CpuTargetValue})"}),
        "the expression orderbroker::warm_pool::tracked_metric implements"
    );
    assert_eq!(
        by_id("n")["Expression"],
        json!({"Fn::Sub": "FILL(standby, ${StandbyTasksDefault})"})
    );
    let metric = |id: &str| {
        let m = &by_id(id)["MetricStat"]["Metric"];
        (
            m["Namespace"].as_str().unwrap().to_string(),
            m["MetricName"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(metric("cpu"), ("AWS/ECS".into(), "CPUUtilization".into()));
    assert_eq!(
        metric("running"),
        ("ECS/ContainerInsights".into(), "RunningTaskCount".into())
    );
    assert_eq!(
        metric("desired"),
        ("ECS/ContainerInsights".into(), "DesiredTaskCount".into())
    );
    assert_eq!(
        metric("standby"),
        ("OrderBroker/WarmPool".into(), "StandbyTasks".into())
    );

    // The warm-pool function publishes N every minute and never touches MinCapacity/policies.
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.prop("Handler") == Some(&json!("warm-pool")))
        .expect("warm-pool function");
    assert_eq!(
        f.prop("Events.EveryMinute.Properties.ScheduleExpression"),
        Some(&json!("rate(1 minute)"))
    );
    let actions: BTreeSet<String> = function_statements(&f)
        .iter()
        .flat_map(|s| as_list(&s["Action"]))
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(
        actions
            .iter()
            .all(|a| !a.starts_with("application-autoscaling:")),
        "{actions:?}"
    );
    let publish = function_statements(&f)
        .into_iter()
        .find(|s| s["Action"] == "cloudwatch:PutMetricData")
        .unwrap();
    assert_eq!(
        publish["Condition"]["StringEquals"]["cloudwatch:namespace"],
        "OrderBroker/WarmPool"
    );
    assert_eq!(
        f.prop("Environment.Variables.STANDBY_DEFAULT"),
        Some(&r#ref("StandbyTasksDefault")),
        "failure paths publish the same default FILL assumes"
    );
}

// ------------------------------------------------------------------ tagging policy (run time)

#[test]
fn the_tag_policy_runs_last_on_every_deploy_and_hourly_with_tag_keys_limited() {
    let t = template();
    let cr = only(&t, "Custom::TagPolicy");
    assert_eq!(cr.prop("DeployNonce"), Some(&r#ref("TagPolicyNonce")));
    assert_eq!(cr.prop("CostCenter"), Some(&r#ref("CostCenter")));
    let timeout = cr.prop("ServiceTimeout").unwrap().as_u64().unwrap();
    let f = t.resource("TagEnforcerFunction").unwrap();
    assert_eq!(
        cr.prop("ServiceToken"),
        Some(&json!({"Fn::GetAtt": ["TagEnforcerFunction", "Arn"]}))
    );
    assert!(
        f.prop("Timeout").unwrap().as_u64().unwrap() < timeout,
        "answers before CloudFormation gives up"
    );
    // Created after every other unconditional resource.
    let deps: BTreeSet<&str> = cr.depends_on().into_iter().collect();
    for r in t.resources() {
        if r.id == cr.id || r.id == f.id || r.condition().is_some() {
            continue;
        }
        assert!(deps.contains(r.id), "TagPolicy must wait for {}", r.id);
    }
    assert_eq!(
        f.prop("Events.Hourly.Properties.ScheduleExpression"),
        Some(&json!("rate(1 hour)"))
    );
    let st = function_statements(&f);
    let write = st
        .iter()
        .find(|s| as_list(&s["Action"]).contains(&json!("tag:TagResources")))
        .unwrap();
    assert_eq!(
        write["Condition"],
        json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["CostCenter", "Project", "Service"]}})
    );
    let inventory = st
        .iter()
        .find(|s| s["Action"] == "cloudformation:ListStackResources")
        .unwrap();
    assert_eq!(inventory["Resource"], r#ref("AWS::StackId"));
    let alarm = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .find(|a| a.prop("MetricName") == Some(&json!("NonCompliantResources")))
        .expect("non-compliance alarm");
    assert_eq!(alarm.prop("TreatMissingData"), Some(&json!("breaching")));
}

#[test]
fn every_function_ships_its_own_executable_a_bin_of_a_default_member_named_like_its_handler() {
    // `sam build` runs `cargo lambda build --bin <Binary>` at the workspace root: the binary must
    // be a bin target of a default member, or the build fails (or builds something else).
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let default_members: BTreeSet<&str> = meta["workspace_default_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let bins: BTreeSet<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| default_members.contains(p["id"].as_str().unwrap()))
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .filter_map(|t| t["name"].as_str())
        .collect();
    let t = template();
    let functions: Vec<_> = t.resources_of_type("AWS::Serverless::Function").collect();
    assert!(functions.len() >= 6, "{} functions", functions.len());
    let mut shipped = BTreeSet::new();
    for f in &functions {
        let binary = lookup(f.body, "Metadata.BuildProperties.Binary")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{} has no BuildProperties.Binary", f.id));
        assert!(
            bins.contains(binary),
            "{}: {binary} is not a bin of a default member",
            f.id
        );
        assert!(
            ::functions::FUNCTIONS.contains(&binary),
            "{}: {binary} is not one of the functions package's executables",
            f.id
        );
        let handler = f
            .prop("Handler")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{} names no Handler", f.id));
        assert_eq!(
            ::functions::handler_mismatch(binary, Some(handler)),
            None,
            "{}: Handler and Binary differ",
            f.id
        );
        shipped.insert(binary);
    }
    // Every executable the functions package builds is shipped by some function.
    let all: BTreeSet<&str> = ::functions::FUNCTIONS.into_iter().collect();
    assert_eq!(shipped, all);
}

#[test]
fn the_shipped_release_profile_unwinds_on_panic_whatever_cargo_lambda_defaults_to() {
    // cargo-lambda adds `profile.release.panic="abort"` unless Cargo.toml sets `panic`: the
    // custom resource and the hooks would then die on a panic without answering.
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    assert_eq!(
        cargo["profile"]["release"]["panic"].as_str(),
        Some("unwind"),
        "[profile.release] must set panic = \"unwind\" explicitly"
    );
}

#[test]
fn the_deployment_watchdog_hears_stopped_tasks_and_may_only_stop_this_groups_deployments() {
    let t = template();
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.prop("Handler") == Some(&json!("deploy-watchdog")))
        .expect("the deploy-watchdog function");
    assert!(
        f.prop("VpcConfig").is_none(),
        "outside the VPC: AWS APIs only"
    );
    let env = f.prop("Environment.Variables").unwrap();
    assert_eq!(env["NEVER_HEALTHY_SECONDS"], r#ref("NeverHealthySeconds"));
    assert_eq!(env["COUNTED_STOPS"], "2");
    assert!(f
        .prop("EventInvokeConfig.DestinationConfig.OnFailure.Destination")
        .is_some());
    // The rule: this cluster, this service, STOPPED only, targeting the function.
    let rule = t
        .resources_of_type("AWS::Events::Rule")
        .find(|r| r.prop("Targets.0.Arn") == Some(&json!({"Fn::GetAtt": [f.id, "Arn"]})))
        .expect("an EventBridge rule targeting the watchdog");
    let p = rule.prop("EventPattern").unwrap();
    assert_eq!(p["source"], json!(["aws.ecs"]));
    assert_eq!(p["detail-type"], json!(["ECS Task State Change"]));
    assert_eq!(p["detail"]["lastStatus"], json!(["STOPPED"]));
    assert_eq!(
        p["detail"]["clusterArn"],
        json!([{"Fn::GetAtt": ["Cluster", "Arn"]}])
    );
    assert_eq!(
        p["detail"]["group"],
        json!([{"Fn::Sub": "service:${Service.Name}"}])
    );
    assert!(rule.prop("Targets.0.DeadLetterConfig.Arn").is_some());
    // Every minute too, without a fixed schedule name.
    let schedule = f.prop("Events.EveryMinute.Properties").unwrap();
    assert_eq!(schedule["ScheduleExpression"], "rate(1 minute)");
    assert_eq!(schedule["OmitName"], true);
    // IAM: CodeDeploy actions on this deployment group only; ECS reads only.
    let st = function_statements(&f);
    let mut actions = BTreeSet::new();
    for s in &st {
        let list = match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            other => panic!("{other:?}"),
        };
        for a in &list {
            // The lifecycle-event reads have no resource type (Service Authorization Reference).
            let unscoped = [
                "codedeploy:ListDeploymentTargets",
                "codedeploy:BatchGetDeploymentTargets",
            ];
            if unscoped.contains(&a.as_str()) {
                assert_eq!(s["Resource"], "*", "{a}");
                assert_eq!(s["Effect"], "Allow");
            } else if a.starts_with("codedeploy:") {
                let res = s["Resource"]["Fn::Sub"].as_str().unwrap();
                assert!(
                    res.ends_with(":deploymentgroup:${CodeDeployApplication}/${DeploymentGroup}"),
                    "{a}: {res}"
                );
            }
        }
        actions.extend(list);
    }
    let expected: BTreeSet<String> = [
        "ecs:DescribeServices",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "codedeploy:ListDeployments",
        "codedeploy:GetDeployment",
        "codedeploy:StopDeployment",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:BatchGetDeploymentTargets",
        "elasticloadbalancing:DescribeTargetHealth",
    ]
    .map(String::from)
    .into_iter()
    .collect();
    assert_eq!(actions, expected);
    // It knows the gates' time budget: a hook past it + 60 s never reports.
    assert_eq!(
        f.prop("Environment.Variables.HOOK_TIMEOUT_SECONDS"),
        Some(&json!({"Ref": "HookTimeoutSeconds"}))
    );
}
