//! Following a deployment by id (and its rollback deployment by id when one starts).

use std::time::{Duration, Instant};

use super::Progress;
use crate::aws::{from_smithy, AwsResultExt};
use crate::deploy::{
    failure_reason, phase, progress_lines, status_line, DeployError, EventTime, Outcome, Phase,
    Snapshot, TaskSetView,
};

/// One look at a deployment and its ECS target.
pub async fn snapshot(
    cd: &aws_sdk_codedeploy::Client,
    id: &str,
    target_id: &str,
) -> Result<Snapshot, DeployError> {
    let info = cd
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .aws("codedeploy:GetDeployment")?
        .deployment_info
        .ok_or_else(|| DeployError::Response(format!("deployment {id} not found")))?;
    let mut s = Snapshot {
        deployment_id: id.to_string(),
        status: info
            .status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        error: info.error_information().and_then(|e| {
            e.message()
                .map(|m| format!("{}: {m}", e.code().map(|c| c.as_str()).unwrap_or("error")))
        }),
        error_code: info
            .error_information()
            .and_then(|e| e.code())
            .map(|c| c.as_str().to_string()),
        rollback_id: info
            .rollback_info()
            .and_then(|r| r.rollback_deployment_id())
            .map(str::to_string),
        rollback_message: info
            .rollback_info()
            .and_then(|r| r.rollback_message())
            .map(str::to_string),
        auto_rollback: info
            .auto_rollback_configuration()
            .is_some_and(|a| a.enabled()),
        created_at: info.create_time().and_then(from_smithy),
        completed_at: info.complete_time().and_then(from_smithy),
        ..Snapshot::default()
    };
    // The target appears once the deployment starts; before that there is nothing to show.
    if let Ok(t) = cd
        .get_deployment_target()
        .deployment_id(id)
        .target_id(target_id)
        .send()
        .await
    {
        if let Some(ecs) = t.deployment_target().and_then(|t| t.ecs_target()) {
            s.events = ecs
                .lifecycle_events()
                .iter()
                .map(|e| {
                    (
                        e.lifecycle_event_name().unwrap_or_default().to_string(),
                        e.status()
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            s.event_times = ecs
                .lifecycle_events()
                .iter()
                .map(|e| EventTime {
                    name: e.lifecycle_event_name().unwrap_or_default().to_string(),
                    start: e.start_time().and_then(from_smithy),
                    end: e.end_time().and_then(from_smithy),
                })
                .collect();
            s.task_sets = ecs
                .task_sets_info()
                .iter()
                .map(|t| TaskSetView {
                    id: t.identifer().unwrap_or_default().to_string(),
                    label: t
                        .task_set_label()
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default(),
                    traffic: t.traffic_weight(),
                    running: t.running_count(),
                    desired: t.desired_count(),
                    target_group: t
                        .target_group()
                        .and_then(|g| g.name())
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect();
        }
    }
    Ok(s)
}

/// Polls one deployment until it ends or `until` passes.
async fn watch(
    cd: &aws_sdk_codedeploy::Client,
    id: &str,
    target_id: &str,
    poll: Duration,
    until: Instant,
    started: Instant,
    out: &mut dyn Progress,
) -> Result<(Snapshot, bool), DeployError> {
    let mut prev: Option<Snapshot> = None;
    loop {
        let s = snapshot(cd, id, target_id).await?;
        for l in progress_lines(prev.as_ref(), &s) {
            out.line(&l);
        }
        out.status(&status_line(&s, started.elapsed()));
        if phase(&s.status) != Phase::Running {
            return Ok((s, true));
        }
        if Instant::now() >= until {
            return Ok((s, false));
        }
        prev = Some(s);
        tokio::time::sleep(poll).await;
    }
}

/// Follows a deployment by id, and its rollback deployment by id when one starts.
pub async fn follow(
    cd: &aws_sdk_codedeploy::Client,
    id: &str,
    target_id: &str,
    poll: Duration,
    timeout: Duration,
    out: &mut dyn Progress,
) -> Result<Outcome, DeployError> {
    let started = Instant::now();
    let until = started + timeout;
    let (mut s, ended) = watch(cd, id, target_id, poll, until, started, out).await?;
    if !ended {
        return Ok(Outcome::TimedOut {
            deployment_id: id.to_string(),
            status: s.status,
        });
    }
    if phase(&s.status) == Phase::Succeeded {
        return Ok(Outcome::Succeeded {
            deployment_id: id.to_string(),
        });
    }
    // CodeDeploy names the rollback deployment shortly after the failure.
    let mut tries = 0;
    while s.rollback_id.is_none() && s.auto_rollback && tries < 12 && Instant::now() < until {
        tokio::time::sleep(poll).await;
        s = snapshot(cd, id, target_id).await?;
        tries += 1;
    }
    let reason = failure_reason(&s);
    let Some(rollback_id) = s.rollback_id.clone() else {
        return Ok(Outcome::Failed {
            deployment_id: id.to_string(),
            status: s.status,
            reason,
        });
    };
    out.line(&format!(
        "{id}: {} ({reason}); following rollback deployment {rollback_id}",
        s.status
    ));
    let (r, ended) = watch(cd, &rollback_id, target_id, poll, until, started, out).await?;
    Ok(Outcome::RolledBack {
        deployment_id: id.to_string(),
        reason,
        rollback_id,
        rollback_status: if ended {
            r.status
        } else {
            format!("{} (still running when the wait ended)", r.status)
        },
    })
}
