//! `rollback`: stop a deployment with automatic rollback and confirm the previous version
//! serves production again.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    active_deployment, follow, primary_task_set, service_state, snapshot, Clients, Names, Progress,
};
use crate::aws::stack::Stack;
use crate::aws::AwsResultExt;
use crate::deploy::{phase, DeployError, Outcome, Phase, Snapshot};

/// What `rollback` found.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    pub outcome: Outcome,
    pub serving_task_definition: Option<String>,
    pub previous_task_definition: Option<String>,
    pub holds_all_traffic: bool,
}

/// Stops a deployment with automatic rollback, follows it, and waits until the previous
/// version's task set is the PRIMARY (production) one again.
pub async fn rollback(
    c: &Clients,
    stack: &Stack,
    deployment: Option<String>,
    poll: Duration,
    timeout: Duration,
    out: &mut dyn Progress,
) -> Result<RolledBack, DeployError> {
    let names = Names::from_stack(stack)?;
    let id = match deployment {
        Some(id) => id,
        None => active_deployment(&c.codedeploy, &names)
            .await?
            .map(|(id, _)| id)
            .ok_or_else(|| {
                DeployError::Input(format!(
                    "no deployment in progress in {}: nothing to roll back (name one with --deployment)",
                    names.group
                ))
            })?,
    };
    // The blue (previous) task set's revision, before anything moves.
    let before = snapshot(&c.codedeploy, &id, &names.target_id()).await?;
    if phase(&before.status) != Phase::Running {
        return Err(DeployError::Input(format!(
            "deployment {id} is {}: only a deployment in progress can be stopped",
            before.status
        )));
    }
    let previous = previous_task_definition(c, &names, &before).await?;
    let stopped = c
        .codedeploy
        .stop_deployment()
        .deployment_id(&id)
        .auto_rollback_enabled(true)
        .send()
        .await
        .aws("codedeploy:StopDeployment")?;
    out.line(&format!(
        "stop requested for {id} with automatic rollback: {} {}",
        stopped.status().map(|s| s.as_str()).unwrap_or(""),
        stopped.status_message().unwrap_or("")
    ));
    let started = Instant::now();
    let outcome = follow(&c.codedeploy, &id, &names.target_id(), poll, timeout, out).await?;
    // The old version holds all traffic when its task set is PRIMARY again.
    let mut serving = None;
    let holds = loop {
        let svc = service_state(&c.ecs, &names).await?;
        serving = primary_task_set(&svc).map(|(td, _)| td).or(serving);
        let holds = match (&serving, &previous) {
            (Some(s), Some(p)) => s == p,
            (Some(_), None) => svc.task_sets().len() == 1,
            _ => false,
        };
        if holds || started.elapsed() >= timeout {
            break holds;
        }
        tokio::time::sleep(poll).await;
    };
    Ok(RolledBack {
        outcome,
        serving_task_definition: serving,
        previous_task_definition: previous,
        holds_all_traffic: holds,
    })
}

/// The revision of the deployment's blue (previous) task set.
async fn previous_task_definition(
    c: &Clients,
    names: &Names,
    deployment: &Snapshot,
) -> Result<Option<String>, DeployError> {
    let Some(blue) = deployment
        .task_sets
        .iter()
        .find(|t| t.label == "Blue" && !t.id.is_empty())
    else {
        return Ok(None);
    };
    let sets = c
        .ecs
        .describe_task_sets()
        .cluster(&names.cluster)
        .service(&names.service)
        .task_sets(&blue.id)
        .send()
        .await
        .aws("ecs:DescribeTaskSets")?;
    Ok(sets
        .task_sets()
        .first()
        .and_then(|s| s.task_definition())
        .map(str::to_string))
}
