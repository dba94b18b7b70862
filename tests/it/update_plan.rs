//! The update plan from the last release (template.yaml at commit c9a0b03, vendored as
//! tests/fixtures/template-c9a0b03.yaml) to HEAD: every changed (type, property) with its path
//! and source, no frozen change without a procedure, and the upgrade as `make deploy` runs it
//! (the deployed stack's physical ids and the Pinned* values): the stack update leaves the
//! service's rollout properties alone and the task definition's new settings take the rollout.

use std::collections::BTreeMap;

use crate::support::{root, template_text, translated};
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::timing::deploy_parameters;
use orderbroker::update::{plan, plan_stack_update, rules, Change, Plan, Route, Side};

const GOLDEN: &str = "tests/golden/update-plan-c9a0b03.txt";

fn release() -> Template {
    translated(
        &std::fs::read_to_string(root().join("tests/fixtures/template-c9a0b03.yaml")).unwrap(),
    )
}

fn head() -> Template {
    translated(&template_text())
}

/// samconfig's list plus the derived values, as `update-plan` gives both sides by default.
fn samconfig_pairs(t: &Template) -> Vec<(String, String)> {
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    deploy_parameters(&c, t, &[]).unwrap()
}

fn release_to_head() -> Plan {
    let (old_t, new_t) = (release(), head());
    let pairs = samconfig_pairs(&new_t);
    plan(
        &Side::new(&old_t, &pairs, "us-east-2"),
        &Side::new(&new_t, &pairs, "us-east-2"),
    )
    .unwrap()
}

/// Where a change's route comes from: an AWS page, the vendored schema, or an assumption.
fn source_kind(c: &Change) -> &'static str {
    let r = &c.reason;
    if r.contains("assumption") {
        "assumption"
    } else if r.contains("resource schema") {
        "schema"
    } else if r.contains("ECS API Reference")
        || r.contains("CodeDeploy User Guide")
        || r.contains("CloudFormation Template Reference")
        || r.contains("CloudFormation User Guide")
    {
        "aws-page"
    } else if r.starts_with("added:") || r.starts_with("removed:") {
        "cloudformation"
    } else {
        "none"
    }
}

fn line(c: &Change) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}{}",
        c.path.as_str(),
        c.type_name,
        c.logical_id,
        c.property.as_deref().unwrap_or("(the resource)"),
        c.cause,
        source_kind(c),
        if c.flagged.is_some() { "\tFLAGGED" } else { "" }
    )
}

#[test]
fn every_change_from_the_last_release_has_a_path_and_a_source() {
    let p = release_to_head();
    let lines: Vec<String> = p.changes.iter().map(line).collect();
    for (c, l) in p.changes.iter().zip(&lines) {
        assert_ne!(source_kind(c), "none", "no source: {l}: {}", c.reason);
        assert!(!c.cause.is_empty(), "{l}");
        if c.path == Route::Frozen {
            assert!(
                c.reason.contains("procedure:"),
                "frozen without a procedure: {l}"
            );
        }
    }
    // The enumeration itself: every (path, type, resource, property, cause, source) of the
    // upgrade, reviewed in the golden file (UPDATE_GOLDEN=1 rewrites it).
    let text = lines.join("\n") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(root().join(GOLDEN), &text).unwrap();
    }
    let golden = std::fs::read_to_string(root().join(GOLDEN)).unwrap();
    assert_eq!(
        text, golden,
        "the c9a0b03 -> HEAD plan changed: review it and rewrite {GOLDEN} with UPDATE_GOLDEN=1"
    );
}

#[test]
fn the_task_definition_settings_since_the_release_take_the_rollout() {
    let p = release_to_head();
    let rollout: Vec<String> = p
        .on(Route::Rollout)
        .map(|c| format!("{}.{}", c.logical_id, c.property.as_deref().unwrap_or("")))
        .collect();
    for expected in [
        "TaskDefinition.ContainerDefinitions[orderbroker].StopTimeout",
        "TaskDefinition.ContainerDefinitions[orderbroker].Environment[HTTP_IDLE_TIMEOUT_SECONDS]",
        // Without the pins (what the stack would do without make deploy's parameters): the
        // service's revision, which ECS would refuse.
        "Service.TaskDefinition",
    ] {
        assert!(
            rollout.contains(&expected.to_string()),
            "{expected} not in {rollout:?}"
        );
    }
    let stop = p
        .changes
        .iter()
        .find(|c| c.property.as_deref() == Some("ContainerDefinitions[orderbroker].StopTimeout"))
        .unwrap();
    assert_eq!(stop.cause, "template edit");
    assert!(stop.reason.contains("UpdateService"), "{}", stop.reason);
    // The health check grace period is a stack update UpdateService accepts.
    let grace = p
        .changes
        .iter()
        .find(|c| {
            c.logical_id == "Service"
                && c.property.as_deref() == Some("HealthCheckGracePeriodSeconds")
        })
        .unwrap();
    assert_eq!(grace.path, Route::StackUpdate);
}

/// The release as deployed: its physical ids (the ones the plan reads; made up for the rest).
fn deployed_release() -> (Template, BTreeMap<String, String>, Vec<(String, String)>) {
    let t = release();
    let physical = t
        .resources()
        .map(|r| {
            let id = match r.id {
                "TaskDefinition" => {
                    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:1"
                        .to_string()
                }
                "ServiceSecurityGroup" => "sg-0svc".to_string(),
                other => format!("{other}-0phys"),
            };
            (r.id.to_string(), id)
        })
        .collect();
    // What the release's make deploy passed: samconfig's list (no derived values then).
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    let mut pairs = c.deploy_overrides(&[]).unwrap();
    for (k, v) in [
        ("PrivateSubnet1", "subnet-0a"),
        ("PrivateSubnet2", "subnet-0b"),
        ("PrivateSubnet3", "subnet-0c"),
    ] {
        pairs.retain(|(n, _)| n != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    (t, physical, pairs)
}

#[test]
fn make_deploy_upgrades_a_release_stack_without_touching_the_running_service() {
    let (old_t, physical, old_pairs) = deployed_release();
    let mut old = Side::new(&old_t, &old_pairs, "us-east-2");
    old.parameters = old.parameters.with_physical(&physical);
    let new_t = head();
    let mut new_pairs = samconfig_pairs(&new_t);
    new_pairs.retain(|(k, _)| !k.starts_with("PrivateSubnet"));
    new_pairs.extend(
        old_pairs
            .iter()
            .filter(|(k, _)| k.starts_with("PrivateSubnet"))
            .cloned(),
    );
    let p = plan_stack_update(&old, &new_t, &new_pairs, "us-east-2", &physical).unwrap();
    // The stack update sends the service none of its rollout properties: pinned to what the
    // release stack gives it (its own revision 1, its subnets and security group).
    assert!(p.unpinned.is_empty(), "{:?}", p.unpinned);
    let pin = |k: &str| p.pins.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        pin("PinnedTaskDefinitionArn").as_deref(),
        Some("arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:1")
    );
    assert_eq!(
        pin("PinnedSubnetIds").as_deref(),
        Some("subnet-0a,subnet-0b,subnet-0c")
    );
    assert_eq!(pin("PinnedSecurityGroupIds").as_deref(), Some("sg-0svc"));
    // ... while the template's new settings are listed for the rollout that follows.
    assert!(p
        .plan
        .on(Route::Rollout)
        .any(|c| c.property.as_deref() == Some("ContainerDefinitions[orderbroker].StopTimeout")));
    // The TaskDefinition is replaced (a new revision with the new settings for carry).
    assert!(p.plan.replaced.contains("TaskDefinition"));
}

#[test]
fn the_declared_start_time_is_tunable_on_a_live_stack() {
    // HEAD deployed (and pinned by an earlier make deploy); the operator raises the declared
    // RUNNING -> healthy time: the health check's start period takes the rollout, the derived
    // grace period a stack update, and nothing reaches the service through the stack.
    let t = head();
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    let old_pairs = deploy_parameters(&c, &t, &[]).unwrap();
    let new_pairs = deploy_parameters(
        &c,
        &t,
        &[("TaskRunningToHealthySeconds".to_string(), "90".to_string())],
    )
    .unwrap();
    let physical: BTreeMap<String, String> = t
        .resources()
        .map(|r| (r.id.to_string(), format!("{}-0phys", r.id)))
        .collect();
    let mut old = Side::new(&t, &old_pairs, "us-east-2");
    old.parameters = old.parameters.with_physical(&physical);
    let p = plan_stack_update(&old, &t, &new_pairs, "us-east-2", &physical).unwrap();
    assert!(p.unpinned.is_empty(), "{:?}", p.unpinned);
    let start = p
        .plan
        .changes
        .iter()
        .find(|c| {
            c.property.as_deref()
                == Some("ContainerDefinitions[orderbroker].HealthCheck.StartPeriod")
        })
        .expect("the start period changes");
    assert_eq!(start.path, Route::Rollout);
    assert_eq!(start.cause, "parameter TaskRunningToHealthySeconds");
    let grace = p
        .plan
        .changes
        .iter()
        .find(|c| c.property.as_deref() == Some("HealthCheckGracePeriodSeconds"))
        .expect("the derived grace period changes");
    assert_eq!(grace.path, Route::StackUpdate);
    assert!(
        p.plan.blocking().next().is_none(),
        "{:?}",
        p.plan.blocking().collect::<Vec<_>>()
    );
}

#[test]
fn the_vendored_schemas_cover_every_type_of_both_templates_with_their_date() {
    let s = rules::schemas();
    assert!(s.schema_date.starts_with("20"), "{}", s.schema_date);
    assert!(s.source.contains("cfn-lint"), "{}", s.source);
    for t in [release(), head()] {
        for r in t.resources() {
            assert!(
                s.types.contains_key(r.type_name()),
                "{} is not vendored: run scripts/vendor-schemas.py",
                r.type_name()
            );
        }
    }
    // What the rules rely on, read from the schemas (no hand list).
    let co = |t: &str| rules::create_only(t).unwrap();
    assert!(co("AWS::ECS::TaskDefinition")
        .iter()
        .any(|(s, _)| s == "ContainerDefinitions"));
    assert!(co("AWS::ElasticLoadBalancingV2::TargetGroup")
        .iter()
        .any(|(s, _)| s == "Port"));
    assert!(!co("AWS::ECS::Service")
        .iter()
        .any(|(s, _)| s == "TaskDefinition"));
}

#[test]
fn update_plan_prints_the_json_shape_and_exits_1_on_a_flagged_change() {
    let out = crate::support::orderbroker()
        .args([
            "update-plan",
            "--deployed",
            "tests/fixtures/template-c9a0b03.yaml",
            "--json",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let changes = v["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for c in changes {
        for k in ["logical_id", "type", "property", "path", "reason", "cause"] {
            assert!(c.get(k).is_some(), "{k} missing in {c}");
        }
    }
    // Removing the load generator's log group (LiveTestsEnabled off by default) loses its logs.
    assert!(changes
        .iter()
        .any(|c| c["logical_id"] == "LoadGeneratorLogGroup" && c["flagged"].is_string()));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SAM translation"));
}
