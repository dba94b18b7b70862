//! The tag enforcer against moto (a local AWS emulator on 127.0.0.1), where moto is faithful:
//! CloudFormation stacks of log groups, and the tagging API on log groups (moto's tagging API
//! tags almost nothing else). `make test` starts moto and sets MOTO_ENDPOINT; without it the test
//! fails naming what to start (it is never silently skipped).

use orderbroker::tagging::aws::{enforce, EnforcerClients, EnforcerConfig};

macro_rules! client {
    ($krate:ident, $url:expr) => {{
        let conf = $krate::Config::builder()
            .behavior_version_latest()
            .region($krate::config::Region::new("us-east-2"))
            .endpoint_url($url)
            .credentials_provider($krate::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .build();
        $krate::Client::from_conf(conf)
    }};
}

#[tokio::test]
async fn untagged_and_half_tagged_log_groups_of_a_stack_get_the_policy_tags() {
    let url = std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!("MOTO_ENDPOINT is not set: run `make test` (it starts moto and sets it), or start .venv/moto/bin/moto_server and set MOTO_ENDPOINT=http://127.0.0.1:PORT")
    });
    let clients = EnforcerClients {
        cloudformation: client!(aws_sdk_cloudformation, &url),
        autoscaling: client!(aws_sdk_applicationautoscaling, &url),
        tagging: client!(aws_sdk_resourcegroupstagging, &url),
        ecs: client!(aws_sdk_ecs, &url),
        cloudwatch: client!(aws_sdk_cloudwatch, &url),
    };
    let run = format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let (bare, half) = (format!("ob-moto-bare-{run}"), format!("ob-moto-half-{run}"));
    let template = serde_json::json!({
        "Resources": {
            "Bare": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": bare}},
            "Half": {"Type": "AWS::Logs::LogGroup", "Properties": {
                "LogGroupName": half,
                "Tags": [{"Key": "Project", "Value": "Legacy"}]
            }}
        }
    });
    let stack_name = format!("ob-moto-{run}");
    let created = clients
        .cloudformation
        .create_stack()
        .stack_name(&stack_name)
        .template_body(template.to_string())
        .send()
        .await
        .expect("moto creates the stack");
    let stack_id = created.stack_id().unwrap().to_string();

    let cfg = EnforcerConfig {
        stack_id: stack_id.clone(),
        stack_name,
        cost_center: "TRD-4410".into(),
        cluster: format!("no-such-cluster-{run}"),
        namespace: "OrderBroker/Tagging".into(),
    };
    let report = enforce(&clients, &cfg, "TRD-4410").await;
    assert_eq!(report.fixed, 2, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(
        report.errors.iter().any(|e| e.contains("ListTasks")),
        "a missing cluster is reported, not thrown: {report:?}"
    );

    let account = stack_id.split(':').nth(4).unwrap().to_string();
    for name in [&bare, &half] {
        let arn = format!("arn:aws:logs:us-east-2:{account}:log-group:{name}");
        let got = clients
            .tagging
            .get_resources()
            .resource_arn_list(&arn)
            .send()
            .await
            .unwrap();
        let tags: std::collections::BTreeMap<String, String> = got
            .resource_tag_mapping_list()
            .iter()
            .flat_map(|m| m.tags())
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        assert_eq!(
            tags.get("CostCenter").map(String::as_str),
            Some("TRD-4410"),
            "{name}: {tags:?}"
        );
        assert_eq!(
            tags.get("Project").map(String::as_str),
            Some("TradingPlatform"),
            "{name}: {tags:?}"
        );
        assert_eq!(
            tags.get("Service").map(String::as_str),
            Some("OrderBroker"),
            "{name}: {tags:?}"
        );
    }
    // A second run finds them compliant and changes nothing.
    let again = enforce(&clients, &cfg, "TRD-4410").await;
    assert_eq!((again.compliant, again.fixed), (2, 0), "{again:?}");
}
