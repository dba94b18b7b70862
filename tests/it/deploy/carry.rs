//! `carry` (the rollout `make deploy` runs after a stack update): the stack's settings go out
//! with the image digest the PRIMARY task set runs, through the same deployment as any version;
//! nothing differs, nothing is created; what cannot be judged is refused before any write.

use super::world::*;
use super::*;

async fn run_carry(
    w: World,
) -> (
    Result<orderbroker::deploy::aws::Carried, DeployError>,
    Calls,
    Vec<String>,
) {
    let calls = Calls::default();
    let c = clients(w, &calls);
    let mut out = Lines::default();
    // carry deploys the running digest, whatever the request's image.
    let req = request(eleven());
    let r = carry(&c, &stack(), &req, &mut out).await;
    (r, calls, out.0)
}

/// The running revision with the stack's settings (what an earlier rollout registered).
fn running_with_stack_settings() -> ecs::types::TaskDefinition {
    let mut td = stack_task_definition();
    td.task_definition_arn = Some(CURRENT_TD.into());
    td.revision = 7;
    td.container_definitions.as_mut().unwrap()[0].image = Some(IMAGE.into());
    td
}

#[tokio::test]
async fn the_stack_settings_go_out_with_the_running_digest() {
    // The service runs revision 7 (StopTimeout 120, no idle timeout); the stack update
    // registered the template's settings in the stack's revision.
    let (r, calls, lines) = run_carry(World::default()).await;
    let carried = r.unwrap();
    let text = lines.join("\n");
    assert!(
        carried
            .differences
            .iter()
            .any(|d| d.contains("container orderbroker") && d.contains("stop timeout")),
        "{:?}",
        carried.differences
    );
    let pinned = format!("111122223333.dkr.ecr.us-east-2.amazonaws.com/orderbroker@{DIGEST}");
    assert_eq!(carried.image, pinned, "by digest, never the tag");
    let deployed = carried.deployed.expect("a deployment carries them");
    assert_eq!(deployed.task_definition, NEW_TD);
    assert!(deployed.outcome.unwrap().succeeded());

    // The registered revision: the stack's settings, the running image by digest.
    let reg = calls.registered.lock().unwrap();
    assert_eq!(reg.len(), 1);
    let mut expected = stack_task_definition().container_definitions()[0].clone();
    expected.image = Some(pinned.clone());
    assert_eq!(reg[0].container_definitions()[0], expected);
    // One deployment with the full AppSpec, the same gates as any version.
    let created = calls.created.lock().unwrap();
    assert_eq!(created.len(), 1);
    assert!(created[0].description().unwrap().contains("carry"));
    let appspec = created[0]
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|a| a.content())
        .unwrap();
    assert!(appspec.contains("BeforeAllowTraffic: CodeDeployHook_orderbroker-test"));
    assert!(appspec.contains("sg-0a1b2c3d4e5f60010"));
    assert!(
        text.contains("pre-flight: outside the spike windows"),
        "{text}"
    );
}

#[tokio::test]
async fn nothing_to_carry_creates_no_deployment() {
    let w = World {
        running_td: Some(running_with_stack_settings()),
        // The running tasks' digest is not even needed when nothing differs.
        digests: vec![None],
        ..World::default()
    };
    let (r, calls, lines) = run_carry(w).await;
    let carried = r.unwrap();
    assert!(carried.differences.is_empty(), "{:?}", carried.differences);
    assert!(carried.deployed.is_none());
    assert!(calls.registered.lock().unwrap().is_empty());
    assert!(calls.created.lock().unwrap().is_empty());
    assert!(lines.join("\n").contains("no deployment"));
}

#[tokio::test]
async fn a_strategy_change_alone_is_carried() {
    let w = World {
        running_td: Some(running_with_stack_settings()),
        // The task set runs base 2; the stack's output says 3.
        running_base: 2,
        ..World::default()
    };
    let (r, calls, _) = run_carry(w).await;
    let carried = r.unwrap();
    assert_eq!(carried.differences.len(), 1, "{:?}", carried.differences);
    assert!(carried.differences[0].starts_with("capacity-provider strategy"));
    assert_eq!(calls.created.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn tasks_on_two_digests_are_refused_before_any_write() {
    let w = World {
        digests: vec![
            Some(DIGEST),
            Some("sha256:0000000000000000000000000000000000000000000000000000000000000000"),
        ],
        ..World::default()
    };
    let (r, calls, _) = run_carry(w).await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("different image digests"), "{e}");
    assert!(calls.registered.lock().unwrap().is_empty());
    assert!(calls.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_deployment_in_progress_refuses_a_carry() {
    let w = World {
        active: vec!["d-OTHER".into()],
        ..World::default()
    };
    let (r, calls, _) = run_carry(w).await;
    assert!(matches!(r, Err(DeployError::InProgress { .. })), "{r:?}");
    assert!(calls.created.lock().unwrap().is_empty());
}
