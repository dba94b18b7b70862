//! Tags and names.

use super::*;

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

#[test]
fn every_schedule_omits_its_name_so_a_second_stack_does_not_collide() {
    // SAM names a ScheduleV2 schedule <FunctionLogicalId><EventName> unless OmitName is true
    // (samtranslator eventsources/scheduler.py): two stacks in one account and region collide.
    // Checked on template.yaml, before the transform.
    let t = template();
    let schedules = schedule_events(&t);
    for (f, name, e) in &schedules {
        assert_eq!(e["Properties"]["OmitName"], json!(true), "{}.{name}", f.id);
        assert!(e["Properties"].get("Name").is_none(), "{}.{name}", f.id);
    }
    let schedules = schedules.len();
    assert!(schedules >= 5, "{schedules} schedules");
}
