//! The watchdog's reading of a deployment's lifecycle events (the AWS edge):
//! `ListDeploymentTargets` then `BatchGetDeploymentTargets` (at most 25 ids a call), each ECS
//! target's `lifecycleEvents[]`. Both actions have no resource type in the Service
//! Authorization Reference (CodeDeploy), so the role grants them on `*`. An ECS deployment has
//! one target, `<cluster>:<service>`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::aws::{from_smithy, AwsResultExt};
use crate::watchdog::aws::WatchdogError;
use crate::watchdog::{hook_verdict, HookVerdict, LifecycleView};

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
        use aws_sdk_codedeploy::operation::list_deployment_targets::ListDeploymentTargetsError as E;
        let page = match codedeploy
            .list_deployment_targets()
            .deployment_id(deployment)
            .set_next_token(token.take())
            .send()
            .await
        {
            // Documented for a deployment that has not started: no lifecycle event yet.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(E::DeploymentNotStartedException(_))
                ) =>
            {
                return Ok(Vec::new())
            }
            other => other
                .aws("codedeploy:ListDeploymentTargets")
                .map_err(|e| e.on(deployment))?,
        };
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

/// The hooks' lifecycle events as last read in this invocation.
#[derive(Debug, Default)]
pub struct HookWatch {
    read: bool,
    /// When a hook in progress would go silent.
    due: Option<DateTime<Utc>>,
}

impl HookWatch {
    /// The deadline as an instant of this invocation's clock.
    pub fn due_instant(&self) -> Option<Instant> {
        let wait = (self.due? - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Some(Instant::now() + wait)
    }
}

/// Reads the lifecycle events once per invocation, and again once a hook's deadline has come;
/// why the deployment must be stopped when a hook went silent.
pub async fn silent_hook(
    codedeploy: &aws_sdk_codedeploy::Client,
    hook_timeout: chrono::Duration,
    deployment: &str,
    w: &mut HookWatch,
) -> Result<Option<String>, WatchdogError> {
    let now = Utc::now();
    if w.read && w.due.is_none_or(|d| now < d) {
        return Ok(None);
    }
    let events = lifecycle_events(codedeploy, deployment).await?;
    w.read = true;
    let hooks: Vec<&str> = crate::deploy::appspec::hook_placement()
        .iter()
        .map(|h| h.0)
        .collect();
    match hook_verdict(&events, &hooks, Utc::now(), hook_timeout) {
        HookVerdict::Waiting(due) => {
            w.due = due;
            Ok(None)
        }
        HookVerdict::Silent(why) => Ok(Some(why)),
    }
}
