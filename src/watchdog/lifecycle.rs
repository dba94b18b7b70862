//! The watchdog's reading of a deployment's lifecycle events (the AWS edge):
//! `ListDeploymentTargets` then `BatchGetDeploymentTargets` (at most 25 ids a call), each ECS
//! target's `lifecycleEvents[]`. Both actions have no resource type in the Service
//! Authorization Reference (CodeDeploy), so the role grants them on `*`. An ECS deployment has
//! one target, `<cluster>:<service>`.

use crate::aws::{from_smithy, AwsResultExt};
use crate::watchdog::aws::WatchdogError;
use crate::watchdog::LifecycleView;

/// Pages of target ids read at most (an ECS deployment has one target; the bound keeps a
/// misbehaving token from looping: the SDK has no paginator for this operation).
const MAX_PAGES: usize = 20;
/// `BatchGetDeploymentTargets` takes at most 25 target ids.
const BATCH: usize = 25;

/// Every lifecycle event of every ECS target of the deployment.
pub async fn lifecycle_events(
    codedeploy: &aws_sdk_codedeploy::Client,
    deployment: &str,
) -> Result<Vec<LifecycleView>, WatchdogError> {
    let mut ids: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = codedeploy
            .list_deployment_targets()
            .deployment_id(deployment)
            .set_next_token(token.take())
            .send()
            .await
            .aws("codedeploy:ListDeploymentTargets")
            .map_err(|e| e.on(deployment))?;
        ids.extend(page.target_ids().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::new();
    for chunk in ids.chunks(BATCH) {
        let got = codedeploy
            .batch_get_deployment_targets()
            .deployment_id(deployment)
            .set_target_ids(Some(chunk.to_vec()))
            .send()
            .await
            .aws("codedeploy:BatchGetDeploymentTargets")
            .map_err(|e| e.on(deployment))?;
        for target in got.deployment_targets() {
            let Some(ecs) = target.ecs_target() else {
                continue;
            };
            out.extend(ecs.lifecycle_events().iter().map(|e| LifecycleView {
                name: e.lifecycle_event_name().unwrap_or_default().to_string(),
                status: e.status().map_or("", |s| s.as_str()).to_string(),
                start: e.start_time().and_then(from_smithy),
            }));
        }
    }
    Ok(out)
}
