//! IAM: the task role, the database, CodeDeploy's role, wildcards.

use super::*;

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
    let sg = created(
        &service(&t),
        "NetworkConfiguration.AwsvpcConfiguration.SecurityGroups.0",
    );
    assert_eq!(rule.prop("SourceSecurityGroupId"), sg.as_ref());
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

#[test]
fn every_queue_refuses_plain_http() {
    let t = template();
    let queues: Vec<&str> = t
        .resources_of_type("AWS::SQS::Queue")
        .map(|q| q.id)
        .collect();
    assert!(queues.len() >= 6, "{queues:?}");
    for q in queues {
        let denied = t.resources_of_type("AWS::SQS::QueuePolicy").any(|p| {
            p.prop("Queues") == Some(&json!([r#ref(q)]))
                && p.prop("PolicyDocument.Statement")
                    .and_then(Value::as_array)
                    .is_some_and(|st| {
                        st.iter().any(|s| {
                            s["Effect"] == "Deny"
                                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                                && s["Resource"] == json!({"Fn::GetAtt": [q, "Arn"]})
                        })
                    })
        });
        assert!(
            denied,
            "{q}: a queue policy denying aws:SecureTransport false"
        );
    }
}

#[test]
fn every_schedule_runs_as_an_explicit_role_trusted_for_this_account_only() {
    // SAM's generated schedule roles trust EventBridge Scheduler without aws:SourceAccount.
    let t = template();
    let schedules = schedule_events(&t);
    for (f, name, e) in &schedules {
        {
            let role_id = e["Properties"]["RoleArn"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{}.{name}: RoleArn", f.id));
            let role = t.resource(role_id).unwrap();
            let trust = &role.prop("AssumeRolePolicyDocument.Statement").unwrap()[0];
            assert_eq!(trust["Principal"]["Service"], "scheduler.amazonaws.com");
            assert_eq!(
                trust["Condition"]["StringEquals"]["aws:SourceAccount"],
                r#ref("AWS::AccountId"),
                "{role_id}"
            );
            let st: Vec<Value> = role
                .prop("Policies")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| {
                    p["PolicyDocument"]["Statement"]
                        .as_array()
                        .cloned()
                        .unwrap()
                })
                .collect();
            let dlq = e["Properties"]["DeadLetterConfig"]["Arn"].clone();
            assert_eq!(
                st,
                vec![
                    json!({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": [f.id, "Arn"]}}),
                    json!({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": dlq}),
                ],
                "{role_id}: invoke this function, dead-letter to its queue, nothing else"
            );
        }
    }
    assert!(schedules.len() >= 5);
}

/// The statements of `sts` that allow `action`.
fn allowing<'a>(sts: &'a [Value], action: &str) -> Vec<&'a Value> {
    sts.iter()
        .filter(|s| as_list(&s["Action"]).iter().any(|a| a == action))
        .collect()
}

#[test]
fn every_function_runs_as_its_own_role_writing_only_its_log_group_traces_and_queue() {
    let t = template();
    let functions: Vec<_> = t.resources_of_type("AWS::Serverless::Function").collect();
    assert!(functions.len() >= 7);
    let mut roles = std::collections::BTreeSet::new();
    for f in &functions {
        assert!(
            f.prop("Policies").is_none(),
            "{}: SAM ignores Policies beside Role",
            f.id
        );
        let role = function_role(&t, f);
        assert!(roles.insert(role.id), "{}: role {} shared", f.id, role.id);
        assert!(
            role.prop("ManagedPolicyArns").is_none(),
            "{}: no managed policy (AWSLambdaBasicExecutionRole writes every log group)",
            role.id
        );
        // The trust stays Lambda's, unconditioned: a condition Lambda does not satisfy would
        // fail every invocation.
        let trust = role.prop("AssumeRolePolicyDocument.Statement").unwrap();
        assert_eq!(trust.as_array().unwrap().len(), 1);
        assert_eq!(trust[0]["Principal"]["Service"], "lambda.amazonaws.com");
        assert!(trust[0].get("Condition").is_none());

        let sts = statements(&role);
        let group = f.prop("LoggingConfig.LogGroup").unwrap_or_else(|| {
            panic!("{}: logs to a log group of its own", f.id);
        });
        let group = group["Ref"].as_str().unwrap();
        let writes = [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:CreateLogGroup",
        ];
        for s in sts.iter().filter(|s| {
            as_list(&s["Action"])
                .iter()
                .any(|a| writes.contains(&a.as_str().unwrap()))
        }) {
            assert_eq!(
                s["Resource"],
                serde_json::json!({"Fn::GetAtt": [group, "Arn"]}),
                "{}: log writes only on {group}",
                f.id
            );
        }
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            assert_eq!(allowing(&sts, action).len(), 1, "{}: {action}", f.id);
        }
        assert!(allowing(&sts, "logs:CreateLogGroup").is_empty(), "{}", f.id);
        for action in ["xray:PutTraceSegments", "xray:PutTelemetryRecords"] {
            assert_eq!(allowing(&sts, action).len(), 1, "{}: {action}", f.id);
        }

        // Its OnFailure queue, and only it.
        let send = allowing(&sts, "sqs:SendMessage");
        match f.prop("EventInvokeConfig.DestinationConfig.OnFailure.Destination") {
            Some(queue) => {
                assert_eq!(send.len(), 1, "{}: may write its OnFailure queue", f.id);
                assert_eq!(&send[0]["Resource"], queue, "{}", f.id);
            }
            None => assert!(send.is_empty(), "{}: no queue to write", f.id),
        }

        // The network-interface actions exactly for the functions in the VPC.
        let eni = allowing(&sts, "ec2:CreateNetworkInterface");
        if f.prop("VpcConfig").is_some() {
            assert_eq!(eni.len(), 1, "{}", f.id);
            for action in [
                "ec2:DeleteNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ] {
                assert_eq!(allowing(&sts, action).len(), 1, "{}: {action}", f.id);
            }
            assert_ne!(eni[0]["Resource"], "*", "{}: region-scoped", f.id);
        } else {
            assert!(eni.is_empty(), "{}: not in the VPC", f.id);
        }
    }
}
