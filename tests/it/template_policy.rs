//! The stack's promises, read from template.yaml as CloudFormation reads it.
//!
//! Each test names the fact it guards; the facts and their sources are in ../shared/aws-facts.md
//! and the README. Every test looks resources up by what they do (the listener that forwards to
//! the service's target group, the role CodeDeploy assumes), so an empty or reshuffled template
//! fails instead of passing vacuously.

use std::collections::BTreeSet;
use std::path::Path;

use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::{lookup, references, Resource, Template};
use orderbroker::tagging::{check_template, Finding};
use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Template {
    Template::load(root().join("template.yaml")).expect("template.yaml parses")
}

fn samconfig() -> SamConfig {
    SamConfig::load(root().join("samconfig.toml"), "default").expect("samconfig.toml parses")
}

fn only<'a>(t: &'a Template, type_name: &'a str) -> Resource<'a> {
    let all: Vec<_> = t.resources_of_type(type_name).collect();
    assert_eq!(all.len(), 1, "expected exactly one {type_name}");
    all[0]
}

fn r#ref(name: &str) -> Value {
    json!({ "Ref": name })
}

fn param<'a>(t: &'a Template, name: &str) -> &'a Value {
    t.section("Parameters")
        .get(name)
        .unwrap_or_else(|| panic!("parameter {name} missing"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The listener whose default action forwards to `target_group`.
fn listener_forwarding_to<'a>(t: &'a Template, target_group: &str) -> Resource<'a> {
    let found: Vec<_> = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::Listener")
        .filter(|l| {
            l.prop("DefaultActions")
                .and_then(Value::as_array)
                .is_some_and(|actions| {
                    actions.iter().any(|a| {
                        a["Type"] == "forward" && a["TargetGroupArn"] == r#ref(target_group)
                    })
                })
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one listener must forward to {target_group}"
    );
    found[0]
}

fn service(t: &Template) -> Resource<'_> {
    only(t, "AWS::ECS::Service")
}

/// Logical id of the target group the service registers with (the initial "blue").
fn blue_target_group(t: &Template) -> String {
    let tg = service(t)
        .prop("LoadBalancers.0.TargetGroupArn")
        .and_then(|v| v.get("Ref"))
        .and_then(Value::as_str)
        .expect("service registers with a target group by Ref")
        .to_string();
    assert!(t.resource(&tg).is_some());
    tg
}

fn green_target_group(t: &Template) -> String {
    let blue = blue_target_group(t);
    let others: Vec<_> = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::TargetGroup")
        .filter(|tg| tg.id != blue)
        .map(|tg| tg.id.to_string())
        .collect();
    assert_eq!(others.len(), 1, "exactly two target groups: blue and green");
    others[0].clone()
}

fn role_assumed_by<'a>(t: &'a Template, principal: &str) -> Vec<Resource<'a>> {
    t.resources_of_type("AWS::IAM::Role")
        .filter(|r| {
            r.prop("AssumeRolePolicyDocument.Statement")
                .and_then(Value::as_array)
                .is_some_and(|st| st.iter().any(|s| s["Principal"]["Service"] == principal))
        })
        .collect()
}

/// Inline policy statements of a role, conditional ones unwrapped (`Fn::If` true branch).
fn statements(role: &Resource<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in role
        .prop("Policies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        for s in policy["PolicyDocument"]["Statement"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            match s.get("Fn::If") {
                Some(branches) => out.push(branches[1].clone()),
                None => out.push(s),
            }
        }
    }
    out
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

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
    let strategy = s.prop("CapacityProviderStrategy").expect("strategy");
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
    assert!(c["StopTimeout"].as_u64().unwrap() >= 60);
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

// ------------------------------------------------------------------ roles

#[test]
fn task_role_only_writes_trades_and_connects_to_orders() {
    let t = template();
    let td = only(&t, "AWS::ECS::TaskDefinition");
    let role_id = td.prop("TaskRoleArn").unwrap()["Fn::GetAtt"][0]
        .as_str()
        .unwrap();
    let exec_id = td.prop("ExecutionRoleArn").unwrap()["Fn::GetAtt"][0]
        .as_str()
        .unwrap();
    assert_ne!(role_id, exec_id, "separate task and execution roles");
    let role = t.resource(role_id).unwrap();
    assert!(
        role.prop("ManagedPolicyArns").is_none(),
        "no managed policies on the task role"
    );

    let mut grants: Vec<(Vec<Value>, Value)> = statements(&role)
        .into_iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow");
            (as_list(&s["Action"]), s["Resource"].clone())
        })
        .collect();
    grants.sort_by_key(|(a, _)| a[0].to_string());
    let expected = vec![
        (
            vec![json!("kinesis:PutRecord"), json!("kinesis:PutRecords")],
            json!({"Fn::Sub": "arn:${AWS::Partition}:kinesis:${AWS::Region}:${AWS::AccountId}:stream/${TradesStreamName}"}),
        ),
        (
            vec![json!("kms:GenerateDataKey")],
            json!({"Ref": "TradesStreamKmsKeyArn"}),
        ),
        (
            vec![json!("rds-db:connect")],
            json!({"Fn::Sub": "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:${OrdersDbResourceId}/${OrdersDbUser}"}),
        ),
    ];
    assert_eq!(grants, expected);
    // The KMS grant exists only when the stream has a customer key.
    let kms_if = role.prop("Policies.0.PolicyDocument.Statement").unwrap()[2]["Fn::If"][0].clone();
    assert_eq!(kms_if, "HasTradesKey");
    for (actions, resource) in &grants {
        assert!(actions.iter().all(|a| !a.as_str().unwrap().contains('*')));
        assert!(!resource.to_string().contains('*'));
    }
    assert_eq!(
        param(&t, "TradesStreamName")["Default"],
        "trades",
        "the trades stream by default"
    );
    let pattern = param(&t, "OrdersDbResourceId")["AllowedPattern"]
        .as_str()
        .unwrap();
    assert!(pattern.contains("prx") && pattern.contains("db") && pattern.contains("cluster"));
}

#[test]
fn database_admits_the_tasks_on_its_port() {
    let t = template();
    let rule = t
        .resources_of_type("AWS::EC2::SecurityGroupIngress")
        .find(|r| r.prop("GroupId") == Some(&r#ref("OrdersDbSecurityGroupId")))
        .expect("ingress on the database security group");
    assert_eq!(rule.prop("FromPort"), Some(&r#ref("OrdersDbPort")));
    assert_eq!(rule.prop("ToPort"), Some(&r#ref("OrdersDbPort")));
    let sg = service(&t).prop("NetworkConfiguration.AwsvpcConfiguration.SecurityGroups.0");
    assert_eq!(rule.prop("SourceSecurityGroupId"), sg);
}

#[test]
fn codedeploy_role_is_the_limited_policy_plus_passrole_on_the_two_task_roles() {
    let t = template();
    let roles = role_assumed_by(&t, "codedeploy.amazonaws.com");
    assert_eq!(roles.len(), 1);
    let role = roles[0];
    assert_eq!(
        role.prop("ManagedPolicyArns"),
        Some(
            &json!([{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSCodeDeployRoleForECSLimited"}])
        )
    );
    let st = statements(&role);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["Action"], "iam:PassRole");
    let td = only(&t, "AWS::ECS::TaskDefinition");
    let mut want = vec![
        td.prop("TaskRoleArn").unwrap().clone(),
        td.prop("ExecutionRoleArn").unwrap().clone(),
    ];
    let mut got = as_list(&st[0]["Resource"]);
    want.sort_by_key(|v| v.to_string());
    got.sort_by_key(|v| v.to_string());
    assert_eq!(got, want);
    assert_eq!(
        st[0]["Condition"],
        json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}})
    );
    let dg = only(&t, "AWS::CodeDeploy::DeploymentGroup");
    assert_eq!(
        dg.prop("ServiceRoleArn"),
        Some(&json!({"Fn::GetAtt": [role.id, "Arn"]}))
    );
}

#[test]
fn no_role_grants_a_wildcard_action_and_every_wildcard_resource_is_explained() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let t = template();
    let roles = t
        .resources_of_type("AWS::IAM::Role")
        .map(|r| (r, statements(&r)));
    let functions = t
        .resources_of_type("AWS::Serverless::Function")
        .map(|f| (f, function_statements(&f)));
    for (role, sts) in roles.chain(functions) {
        for s in sts {
            for a in as_list(&s["Action"]) {
                assert!(
                    !a.as_str().unwrap().ends_with('*'),
                    "{}: action {a}",
                    role.id
                );
            }
            if s["Resource"] == "*" {
                // The YAML line carries a comment naming why the API allows nothing narrower.
                let sid = s["Sid"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: wildcard needs a Sid", role.id));
                let at = text.find(&format!("Sid: {sid}")).unwrap();
                let line = text[at..]
                    .lines()
                    .find(|l| l.trim_start().starts_with("Resource: \"*\""))
                    .unwrap();
                assert!(
                    line.contains('#'),
                    "{}/{sid}: Resource \"*\" without a reason",
                    role.id
                );
            }
        }
    }
}

// ------------------------------------------------------------------ load balancer

#[test]
fn listeners_are_80_and_9090_attached_to_blue_and_green() {
    let t = template();
    let blue = blue_target_group(&t);
    let green = green_target_group(&t);
    let prod = listener_forwarding_to(&t, &blue);
    let test = listener_forwarding_to(&t, &green);
    assert_eq!(
        prod.prop("Port"),
        Some(&json!({"Fn::If": ["HasCertificate", 443, 80]}))
    );
    assert_eq!(test.prop("Port"), Some(&json!(9090)));
    // With a certificate :80 still exists, as a redirect.
    let redirect = t
        .resources_of_type("AWS::ElasticLoadBalancingV2::Listener")
        .find(|l| l.prop("DefaultActions.0.Type") == Some(&json!("redirect")))
        .expect("HTTP->HTTPS redirect listener");
    assert_eq!(redirect.condition(), Some("HasCertificate"));
    assert_eq!(redirect.prop("Port"), Some(&json!(80)));
    assert_eq!(
        prod.prop("SslPolicy").unwrap()["Fn::If"][1],
        "ELBSecurityPolicy-TLS13-1-2-2021-06"
    );
}

#[test]
fn test_listener_is_reachable_only_from_the_allowed_cidr_and_the_validator() {
    let t = template();
    let lb = only(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    let sg_id = lb.prop("SecurityGroups.0").unwrap()["Ref"]
        .as_str()
        .unwrap();
    let sg = t.resource(sg_id).unwrap();
    let mut sources = Vec::new();
    // A port may be conditional (`Fn::If`): the rule covers 9090 if any branch does.
    fn ports(v: &Value) -> Vec<u64> {
        match v {
            Value::Number(n) => vec![n.as_u64().unwrap()],
            Value::Object(m) if m.contains_key("Fn::If") => {
                let b = &m["Fn::If"];
                [ports(&b[1]), ports(&b[2])].concat()
            }
            other => panic!("port {other} cannot be checked"),
        }
    }
    let covers_9090 = |r: &Value| {
        r["IpProtocol"] == "-1"
            || ports(&r["FromPort"])
                .iter()
                .zip(ports(&r["ToPort"]))
                .any(|(from, to)| *from <= 9090 && 9090 <= to)
    };
    for r in sg.prop("SecurityGroupIngress").unwrap().as_array().unwrap() {
        if covers_9090(r) {
            sources.push((
                None,
                r["CidrIp"].clone(),
                r["SourceSecurityGroupId"].clone(),
            ));
        }
    }
    for r in t.resources_of_type("AWS::EC2::SecurityGroupIngress") {
        if r.prop("GroupId") == Some(&r#ref(sg_id)) && covers_9090(r.properties()) {
            sources.push((
                r.condition(),
                r.properties()["CidrIp"].clone(),
                r.properties()["SourceSecurityGroupId"].clone(),
            ));
        }
    }
    assert_eq!(
        sources,
        vec![
            (None, r#ref("TestListenerAllowedCidr"), Value::Null),
            (None, Value::Null, r#ref("ValidatorSecurityGroup")),
            (
                Some("AllowValidatorCidr"),
                r#ref("ValidatorSourceCidr"),
                Value::Null
            ),
        ]
    );
    // The NAT path exists only for an internet-facing ALB, which a rule makes name it.
    let rules = t.section("Rules").as_object().unwrap();
    let rule = rules
        .values()
        .find(|r| {
            r["RuleCondition"]
                == json!({"Fn::Equals": [{"Ref": "LoadBalancerScheme"}, "internet-facing"]})
        })
        .expect("internet-facing rule");
    assert!(rule["Assertions"]
        .to_string()
        .contains("ValidatorSourceCidr"));
    assert_eq!(param(&t, "LoadBalancerScheme")["Default"], "internal");
}

#[test]
fn load_balancer_drops_invalid_headers_and_logs_to_an_sse_s3_bucket_it_waits_for() {
    let t = template();
    let lb = only(&t, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    let attrs = lb
        .prop("LoadBalancerAttributes")
        .unwrap()
        .as_array()
        .unwrap();
    let attr = |k: &str| {
        attrs
            .iter()
            .find(|a| a["Key"] == k)
            .map(|a| a["Value"].clone())
            .unwrap_or_else(|| panic!("attribute {k}"))
    };
    assert_eq!(
        attr("routing.http.drop_invalid_header_fields.enabled"),
        "true"
    );
    assert_eq!(
        attr("deletion_protection.enabled"),
        r#ref("LoadBalancerDeletionProtection")
    );
    assert_eq!(attr("access_logs.s3.enabled"), "true");
    let bucket_id = attr("access_logs.s3.bucket")["Ref"]
        .as_str()
        .unwrap()
        .to_string();
    let bucket = t.resource(&bucket_id).unwrap();
    assert_eq!(
        bucket.prop("BucketEncryption.ServerSideEncryptionConfiguration.0.ServerSideEncryptionByDefault.SSEAlgorithm"),
        Some(&json!("AES256")),
        "ALB log delivery supports SSE-S3 only"
    );
    let policy = t
        .resources_of_type("AWS::S3::BucketPolicy")
        .find(|p| p.prop("Bucket") == Some(&r#ref(&bucket_id)))
        .expect("log-delivery bucket policy");
    assert!(lb.depends_on().contains(&policy.id));
    let put = &policy.prop("PolicyDocument.Statement.0").unwrap();
    assert_eq!(put["Action"], "s3:PutObject");
    assert!(put["Principal"].to_string().contains("ElbLogDelivery"));
    assert_eq!(
        t.section("Mappings")["ElbLogDelivery"]["us-east-2"]["Account"],
        "033677994240"
    );
}

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

// ------------------------------------------------------------------ tags and names

#[test]
fn every_taggable_resource_carries_the_three_tags_even_without_stack_tags() {
    let t = template();
    let report = check_template(&t, &[]);
    assert!(
        report.is_clean(),
        "{}",
        report
            .findings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(report.compliant.len() >= 30, "{}", report.compliant.len());
    // And the stack tags carry them too, for what the template cannot tag.
    let tags = samconfig().stack_tags().unwrap();
    for (k, v) in [("Project", "TradingPlatform"), ("Service", "OrderBroker")] {
        assert!(
            tags.contains(&(k.to_string(), v.to_string())),
            "stack tag {k}"
        );
    }
    assert!(tags.iter().any(|(k, v)| k == "CostCenter" && !v.is_empty()));
}

#[test]
fn a_resource_missing_a_tag_fails_the_check_by_name() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    // Drop the Service tag from the task definition only.
    let anchor = text.find("  TaskDefinition:\n").unwrap();
    let tag_at = anchor
        + text[anchor..]
            .find("        - {Key: Service, Value: OrderBroker}\n")
            .unwrap();
    let broken = format!(
        "{}{}",
        &text[..tag_at],
        &text[tag_at + "        - {Key: Service, Value: OrderBroker}\n".len()..]
    );
    let report = check_template(&Template::parse(&broken).unwrap(), &[]);
    assert_eq!(
        report.findings,
        vec![Finding::Missing {
            resource: "TaskDefinition".into(),
            tag: "Service".into()
        }]
    );
}

/// Lambda function names the stack would create, resolved with the stack name (names set with
/// `FunctionName`; CloudFormation shortens generated names to fit by itself).
fn function_names(t: &Template, stack: &str) -> Vec<(String, String)> {
    t.resources()
        .filter(|r| {
            matches!(
                r.type_name(),
                "AWS::Serverless::Function" | "AWS::Lambda::Function"
            )
        })
        .filter_map(|r| {
            let name = match r.prop("FunctionName")? {
                Value::String(s) => s.clone(),
                Value::Object(m) if m.contains_key("Fn::Sub") => m["Fn::Sub"]
                    .as_str()
                    .expect("FunctionName !Sub with a plain string")
                    .replace("${AWS::StackName}", stack),
                other => panic!("{}: FunctionName {other} cannot be checked", r.id),
            };
            Some((r.id.to_string(), name))
        })
        .collect()
}

#[test]
fn function_names_fit_lambdas_64_characters() {
    let stack = samconfig().get_str("stack_name").unwrap().to_string();
    for (id, name) in function_names(&template(), &stack) {
        assert!(
            name.len() <= 64,
            "{id}: {name} is {} characters",
            name.len()
        );
        assert!(!name.contains("${"), "{id}: unresolved {name}");
    }
    // The check itself catches a long name.
    let long = Template::parse(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      FunctionName: !Sub \"CodeDeployHook_${AWS::StackName}-after-allow-test-traffic-production-validator\"\n",
    )
    .unwrap();
    let names = function_names(&long, &stack);
    assert_eq!(names.len(), 1);
    assert!(names[0].1.len() > 64);
}

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
        .find(|f| f.body["Metadata"]["BuildProperties"]["Binary"] == "load-generator")
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
    // Its binary is a workspace default member (sam build runs cargo lambda at the root).
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let line = cargo
        .lines()
        .find(|l| l.starts_with("default-members"))
        .unwrap();
    assert!(line.contains("\"functions/load-generator\""), "{line}");
}

// ------------------------------------------------------------------ market warm-up

fn function_statements(f: &Resource<'_>) -> Vec<Value> {
    f.prop("Policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn market_warmup_runs_hourly_and_in_session_in_new_york_time_with_alarms() {
    let t = template();
    let f = t
        .resources_of_type("AWS::Serverless::Function")
        .find(|f| f.body["Metadata"]["BuildProperties"]["Binary"] == "market-warmup")
        .expect("market-warmup function");
    assert_eq!(f.body["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(f.prop("ReservedConcurrentExecutions"), Some(&json!(1)));
    let events = f.prop("Events").unwrap().as_object().unwrap();
    let mut expressions = Vec::new();
    for (name, e) in events {
        assert_eq!(e["Type"], "ScheduleV2", "{name}");
        assert_eq!(
            e["Properties"]["ScheduleExpressionTimezone"], "America/New_York",
            "{name}"
        );
        let input: Value =
            serde_json::from_str(e["Properties"]["Input"].as_str().unwrap()).unwrap();
        assert!(input["trigger"].is_string(), "{name}");
        assert_eq!(
            e["Properties"]["DeadLetterConfig"]["Arn"],
            json!({"Fn::GetAtt": ["WarmupDeadLetterQueue", "Arn"]})
        );
        expressions.push(
            e["Properties"]["ScheduleExpression"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    expressions.sort();
    // Hourly every day (weekends and holidays too: the dead-man alarm needs it), and every
    // 10 minutes through the session on weekdays.
    assert_eq!(
        expressions,
        vec!["cron(0/10 9-16 ? * MON-FRI *)", "cron(5 * * * ? *)"]
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
        .filter(|f| f.body["Metadata"]["BuildProperties"]["Binary"] == "traffic-validator")
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
        assert_eq!(st.len(), 1, "{}: only the status call", h.id);
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
        // The Lambda timeout leaves the validation's budget plus its reserve.
        let timeout = h.prop("Timeout").unwrap().as_u64().unwrap();
        let run: u64 = env["MAX_RUN_SECONDS"].as_str().unwrap().parse().unwrap();
        let reserve: u64 = env["REPORT_RESERVE_SECONDS"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(run + reserve <= timeout, "{}", h.id);
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
        Some(&json!({"Fn::Sub": "http://${LoadBalancer.DNSName}:9090"}))
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
        .find(|f| f.body["Metadata"]["BuildProperties"]["Binary"] == "warm-pool")
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
