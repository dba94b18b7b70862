//! The gates' AWS edge: which target group the tested listener forwards to
//! (`DescribeListeners`) and its targets' health (`DescribeTargetHealth`), polled until
//! [`targets::judge`] says ready or fail. Both actions have no resource-level permissions
//! (Service Authorization Reference, Elastic Load Balancing V2): the hook roles grant them on `*`.

use std::time::Instant;

use crate::aws::{AwsError, AwsResultExt};
use crate::gates::targets::{
    self, FirstSeen, Readiness, TargetObservation, TargetWait, WaitBudget,
};
use crate::gates::validation::{not_ready, validate, Report, ValidationConfig};

/// A whole gate run: target health first, and the synthetic trades only once a target of the
/// listener's target group is healthy (nothing is sent before). The report carries the wait.
pub async fn gate(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    http: &reqwest::Client,
    cfg: &ValidationConfig,
    listener_arn: &str,
    budget: WaitBudget,
    run_id: &str,
    until: Instant,
) -> Report {
    let wait = wait_for_healthy_target(elb, listener_arn, budget, until).await;
    if !wait.ready {
        return not_ready(cfg, wait);
    }
    // Every healthy target gets its cold start in unjudged orders before any is judged.
    let cfg = cfg.for_targets(wait.healthy);
    let mut report = validate(http, &cfg, run_id, until).await;
    report.targets = Some(wait);
    report
}

/// The target groups the listener's default action forwards to with a weight above 0
/// (CodeDeploy may leave a weighted forward of 100/0 after a shift).
pub async fn listener_target_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener_arn: &str,
) -> Result<Vec<String>, AwsError> {
    let out = elb
        .describe_listeners()
        .listener_arns(listener_arn)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeListeners")
        .map_err(|e| e.on(listener_arn))?;
    let mut groups = Vec::new();
    for action in out.listeners().iter().flat_map(|l| l.default_actions()) {
        let weighted: Vec<String> = action
            .forward_config()
            .map(|f| {
                f.target_groups()
                    .iter()
                    .filter(|t| t.weight().unwrap_or(1) > 0)
                    .filter_map(|t| t.target_group_arn().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if weighted.is_empty() {
            groups.extend(action.target_group_arn().map(str::to_string));
        } else {
            groups.extend(weighted);
        }
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// The targets of one target group.
pub async fn read_targets(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
) -> Result<Vec<TargetObservation>, AwsError> {
    let out = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeTargetHealth")
        .map_err(|e| e.on(target_group_arn))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let target = d.target();
            let health = d.target_health();
            TargetObservation {
                id: format!(
                    "{}:{}",
                    target.and_then(|t| t.id()).unwrap_or("?"),
                    target.and_then(|t| t.port()).unwrap_or_default()
                ),
                state: health
                    .and_then(|h| h.state())
                    .map_or("unknown", |s| s.as_str())
                    .to_string(),
                reason: health
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_string()),
                description: health.and_then(|h| h.description()).map(str::to_string),
            }
        })
        .collect())
}

fn line(t: &TargetObservation) -> String {
    match &t.reason {
        Some(r) => format!("{} {} ({r})", t.id, t.state),
        None => format!("{} {}", t.id, t.state),
    }
}

/// Polls until the listener's target group has a healthy target and none is `initial`, a
/// non-transient state outlives `never_healthy`, `readiness` passes or `until` comes. A failed
/// read is retried at the next poll (the last error is the reason if time runs out): a gate that
/// cannot see target health never passes.
pub async fn wait_for_healthy_target(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener_arn: &str,
    budget: WaitBudget,
    until: Instant,
) -> TargetWait {
    let started = Instant::now();
    let mut seen = FirstSeen::default();
    let mut wait = TargetWait {
        ready: false,
        reason: String::new(),
        target_groups: Vec::new(),
        polls: 0,
        waited_ms: 0,
        last: Vec::new(),
        healthy: 0,
    };
    loop {
        wait.polls += 1;
        let reading = async {
            let groups = listener_target_groups(elb, listener_arn).await?;
            let mut all = Vec::new();
            for g in &groups {
                all.extend(read_targets(elb, g).await?);
            }
            Ok::<_, AwsError>((groups, all))
        }
        .await;
        let elapsed = started.elapsed();
        match reading {
            Ok((groups, all)) => {
                seen.record(&all, elapsed);
                wait.target_groups = groups;
                wait.last = all.iter().map(line).collect();
                wait.healthy = all.iter().filter(|t| t.state == "healthy").count();
                match targets::judge(&all, &seen, elapsed, budget.never_healthy, budget.readiness) {
                    Readiness::Ready => {
                        wait.ready = true;
                        wait.reason = format!("healthy: {}", wait.last.join(", "));
                        break;
                    }
                    Readiness::Fail(why) => {
                        wait.reason = why;
                        break;
                    }
                    Readiness::Wait(why) => wait.reason = why,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "target health not readable; retrying");
                wait.reason = format!("target health not readable: {e}");
                if elapsed >= budget.readiness {
                    break;
                }
            }
        }
        let next = Instant::now() + budget.poll;
        if next >= until {
            if !wait.reason.starts_with("target health not readable") {
                wait.reason = format!(
                    "the time budget ran out waiting for a healthy target: {}",
                    wait.reason
                );
            }
            break;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    wait.waited_ms = started.elapsed().as_millis() as u64;
    wait
}
