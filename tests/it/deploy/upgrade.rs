//! `make deploy` on a stack of the last release (c9a0b03), against mocked AWS: preflight reads
//! the deployed stack (its processed template, parameters, physical ids, which target group
//! serves, no deployment in progress) and plans a stack update that leaves the service as
//! deployed (Pinned*), with the task definition's new settings for the rollout; then `carry`
//! deploys them with the image digest the service runs.

use super::world::*;
use super::*;
use crate::support::{template_text, translated};
use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::preflight::{check, Inputs};
use orderbroker::timing::deploy_parameters;
use orderbroker::update::{plan_stack_update, Route, Side};

const RELEASE_TD: &str =
    "arn:aws:ecs:us-east-2:111122223333:task-definition/orderbroker-orderbroker:1";

/// The account's values every deploy passes (samconfig's, with real subnets).
fn account(mut p: Vec<(String, String)>) -> Vec<(String, String)> {
    for (k, v) in [
        ("PrivateSubnet1", "subnet-0a1b2c3d4e5f60001"),
        ("PrivateSubnet2", "subnet-0a1b2c3d4e5f60002"),
        ("PrivateSubnet3", "subnet-0a1b2c3d4e5f60003"),
        ("MaxTasks", "10"),
    ] {
        p.retain(|(n, _)| n != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// What HEAD's make deploy passes (samconfig, the derived values).
fn head_pairs(t: &orderbroker::cfn::template::Template) -> Vec<(String, String)> {
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    account(deploy_parameters(&c, t, &[]).unwrap())
}

/// What the release stack was deployed with: samconfig's list (its make deploy passed that);
/// its other parameters at the release template's defaults.
fn release_pairs() -> Vec<(String, String)> {
    let c = SamConfig::load(root().join("samconfig.toml"), "default").unwrap();
    account(c.deploy_overrides(&[]).unwrap())
}

fn release_world() -> World {
    let release = translated(
        &std::fs::read_to_string(root().join("tests/fixtures/template-c9a0b03.yaml")).unwrap(),
    );
    let physical = release
        .resources()
        .map(|r| {
            let id = match r.id {
                "BlueTargetGroup" => "arn:tg/blue".to_string(),
                "TaskDefinition" => RELEASE_TD.to_string(),
                "ServiceSecurityGroup" => "sg-0a1b2c3d4e5f60010".to_string(),
                other => format!("{other}-0phys"),
            };
            (r.id.to_string(), id)
        })
        .collect();
    World {
        deployed: Some(DeployedStack {
            processed_template: release.doc().to_string(),
            parameters: release_pairs(),
            physical,
        }),
        ..World::default()
    }
}

#[tokio::test]
async fn a_release_stack_is_updated_with_the_service_pinned_then_carried_from_its_digest() {
    let calls = Calls::default();
    let c = clients(release_world(), &calls);
    let mut notes = Vec::new();
    let d = orderbroker::preflight::aws::read_deployed(&c, "orderbroker", &mut |n| notes.push(n))
        .await
        .unwrap()
        .expect("the release stack serves");
    // The plan make deploy runs: HEAD over the release, with the stack's ids and the pins.
    let head = translated(&template_text());
    let head = orderbroker::update::translate::keep_deployed_code(&d.stack.template, head).unwrap();
    let deployed_pairs: Vec<(String, String)> =
        d.stack.stack.parameters.clone().into_iter().collect();
    let mut old = Side::new(&d.stack.template, &deployed_pairs, "us-east-2");
    old.parameters = old.parameters.with_physical(&d.stack.physical);
    let p = plan_stack_update(
        &old,
        &head,
        &head_pairs(&head),
        "us-east-2",
        &d.stack.physical,
    )
    .unwrap();
    // The stack update: accepted, the service's task definition untouched (pinned to the
    // release stack's own revision), nothing else UpdateService refuses.
    assert!(p.unpinned.is_empty(), "{:?}", p.unpinned);
    assert!(p
        .pins
        .contains(&("PinnedTaskDefinitionArn".into(), RELEASE_TD.into())));
    let judge = |accepted: &[String]| {
        check(&Inputs {
            plan: Some(&p),
            live: &d.live,
            in_progress: d.in_progress.clone(),
            accepted,
            now: eleven(),
            calendar: &Calendar::new(),
            settings: &Settings::default(),
            span: chrono::Duration::minutes(30),
            events: &[],
        })
        .unwrap()
    };
    // LiveTestsEnabled is off by default: the release's load generator goes, and its log group
    // with its logs: refused until accepted by name (or LIVE_TESTS=true keeps it).
    let r = judge(&[]);
    let refused: Vec<&str> = r.refusals.iter().map(|x| x.what.as_str()).collect();
    assert_eq!(refused, ["LoadGeneratorLogGroup"], "{r:?}");
    assert!(r.refusals[0].why.contains("--accept LoadGeneratorLogGroup"));
    let r = judge(&["LoadGeneratorLogGroup".to_string()]);
    assert!(r
        .rollout
        .iter()
        .any(|c| c.property.as_deref() == Some("ContainerDefinitions[orderbroker].StopTimeout")));
    assert!(p.plan.changes.iter().all(|c| c.path != Route::Frozen));

    // Then carry: the PRIMARY task set still runs the release's settings (StopTimeout 120); the
    // stack's new revision has the template's: one deployment, from the running digest.
    let mut out = Lines::default();
    // carry deploys the running digest, whatever the request's image.
    let req = request(eleven());
    let carried = carry(&c, &stack(), &req, &mut out).await.unwrap();
    assert!(carried.image.ends_with(DIGEST), "{}", carried.image);
    assert!(carried
        .differences
        .iter()
        .any(|x| x.contains("stop timeout")));
    let reg = calls.registered.lock().unwrap();
    assert_eq!(reg.len(), 1);
    assert_eq!(reg[0].container_definitions()[0].stop_timeout(), Some(30));
    assert_eq!(calls.created.lock().unwrap().len(), 1);
}
