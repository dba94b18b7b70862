//! `status`: reads the deployment in progress, the task sets, the scaling bounds and the
//! warm-up's scheduled actions into a [`StatusView`].

use chrono::{DateTime, Utc};

use super::{active_deployment, service_state, snapshot, Clients, Names};
use crate::aws::stack::Stack;
use crate::aws::AwsResultExt;
use crate::deploy::status::{parse_at, PlannedAction, StatusView, TaskSetState};
use crate::deploy::DeployError;

pub async fn status(
    c: &Clients,
    stack: &Stack,
    now: DateTime<Utc>,
    action_prefix: &str,
) -> Result<StatusView, DeployError> {
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let names = Names::from_stack(stack)?;
    let mut v = StatusView {
        stack: stack.name.clone(),
        ..StatusView::default()
    };
    if let Some((id, _)) = active_deployment(&c.codedeploy, &names).await? {
        v.deployment = Some(snapshot(&c.codedeploy, &id, &names.target_id()).await?);
    }
    let svc = service_state(&c.ecs, &names).await?;
    v.running = svc.running_count();
    v.desired = svc.desired_count();
    v.pending = svc.pending_count();
    let colour = |tg: &str| {
        if stack.outputs.get("BlueTargetGroupArn").map(String::as_str) == Some(tg) {
            "blue"
        } else if stack.outputs.get("GreenTargetGroupArn").map(String::as_str) == Some(tg) {
            "green"
        } else {
            "?"
        }
    };
    v.task_sets = svc
        .task_sets()
        .iter()
        .map(|t| {
            let tg = t
                .load_balancers()
                .first()
                .and_then(|l| l.target_group_arn())
                .unwrap_or_default()
                .to_string();
            TaskSetState {
                colour: colour(&tg).to_string(),
                status: t.status().unwrap_or_default().to_string(),
                task_definition: t.task_definition().unwrap_or_default().to_string(),
                running: t.running_count(),
                desired: t.computed_desired_count(),
                target_group: tg,
            }
        })
        .collect();
    let resource = stack.output("ScalableTargetResourceId")?.to_string();
    let targets = c
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource)
        .send()
        .await
        .aws("application-autoscaling:DescribeScalableTargets")?;
    if let Some(t) = targets.scalable_targets().first() {
        v.min = Some(t.min_capacity());
        v.max = Some(t.max_capacity());
    }
    let mut pages = c
        .autoscaling
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws("application-autoscaling:DescribeScheduledActions")?;
        for a in page.scheduled_actions() {
            if !a.scheduled_action_name().starts_with(action_prefix) {
                continue;
            }
            match parse_at(a.schedule(), a.timezone()) {
                Some(at) => v.actions.push(PlannedAction {
                    name: a.scheduled_action_name().to_string(),
                    at,
                    min_capacity: a.scalable_target_action().and_then(|x| x.min_capacity()),
                    max_capacity: a.scalable_target_action().and_then(|x| x.max_capacity()),
                }),
                None => v.unreadable_actions.push((
                    a.scheduled_action_name().to_string(),
                    format!(
                        "{}{}",
                        a.schedule(),
                        a.timezone().map(|z| format!(" in {z}")).unwrap_or_default()
                    ),
                )),
            }
        }
    }
    v.actions.sort_by_key(|a| a.at);
    v.next_action = v.actions.iter().find(|a| a.at > now).cloned();
    v.degraded = crate::deploy::status::degradations(&v);
    Ok(v)
}
