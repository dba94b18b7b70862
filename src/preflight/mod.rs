//! The guard in front of a stack update (`make deploy` runs it before `sam deploy`): every
//! change of the update plan ([`crate::update`]) with its path, and a refusal for what the update
//! cannot carry on a running platform, or when it lands in a spike window or during a
//! deployment.
//!
//! Refused: a `frozen` change (its procedure is in the reason), except a listener's default
//! action while production is on the template's target group (CloudFormation's rewrite then
//! keeps production where it is); a flagged replacement or removal (state or an address would
//! be lost) unless accepted by name; a rollout property the stack update would still send to the
//! CODE_DEPLOY service (the `Pinned*` parameters must hold them; ECS refuses them in
//! UpdateService); a deployment in progress; a spike window. Rollout changes pass: `make deploy`
//! carries them after the stack update (`orderbroker carry`).

// Reads the live deployment through `deploy::aws`: CLI builds only (feature `cli`).
#[cfg(feature = "cli")]
pub mod aws;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::calendar::{Calendar, CalendarError};
use crate::deploy::{spike_window, window_refusal};
use crate::update::{Change, Route, StackUpdatePlan};
use crate::warmup::Settings;

/// What runs now, read from ECS and the stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// The target group the PRIMARY (production) task set is registered with.
    pub production_target_group: Option<String>,
    /// The task definition of the PRIMARY task set.
    pub service_task_definition: Option<String>,
}

/// Effective parameter values: the template's defaults, then the overrides (names the template
/// does not declare kept, as readiness reads samconfig's own).
pub fn effective_parameters(
    t: &crate::cfn::template::Template,
    overrides: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut out: std::collections::BTreeMap<String, String> =
        crate::cfn::resolve::Parameters::new(t, &[])
            .values()
            .clone();
    for (k, v) in overrides {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Why a deployed stack has nothing CodeDeploy could have changed: its creation failed or
/// never ran, so it has no service yet. `None` when there is something to protect.
pub fn nothing_to_protect(status: &str, has_service_output: bool) -> Option<String> {
    let unprotected = !has_service_output
        || matches!(
            status,
            "ROLLBACK_COMPLETE" | "REVIEW_IN_PROGRESS" | "CREATE_FAILED"
        );
    unprotected.then(|| format!("is {status} with no service yet: nothing CodeDeploy changed"))
}

/// Everything the check reads.
pub struct Inputs<'a> {
    /// The update's plan; `None` when nothing deployed serves traffic (a create).
    pub plan: Option<&'a StackUpdatePlan>,
    pub live: &'a LiveState,
    /// The deployment in progress in the deployment group (id, status).
    pub in_progress: Option<(String, String)>,
    /// Logical ids whose flagged replacement or removal the operator accepts (`--accept`).
    pub accepted: &'a [String],
    pub now: DateTime<Utc>,
    pub calendar: &'a Calendar,
    pub settings: &'a Settings,
    /// How long a stack update may take: the window check covers [now, now + span].
    pub span: Duration,
    /// Declared market events: their windows are spike windows too.
    pub events: &'a [crate::warmup::events::Event],
}

/// One reason to refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `Logical.Property`, a logical id, `schedule` or `deployment`.
    pub what: String,
    pub why: String,
}

/// The verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub refusals: Vec<Refusal>,
    pub notes: Vec<String>,
    /// The changes a rollout carries after the stack update.
    pub rollout: Vec<Change>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.refusals.is_empty()
    }
}

fn what(c: &Change) -> String {
    match &c.property {
        Some(p) => format!("{}.{p}", c.logical_id),
        None => c.logical_id.clone(),
    }
}

/// The check.
pub fn check(i: &Inputs<'_>) -> Result<Report, CalendarError> {
    let mut report = Report::default();
    // Nothing deployed to protect (no stack yet, or one with no service): no live traffic is
    // touched, so neither a spike window nor anything else refuses it. The caller says which.
    let Some(p) = i.plan else {
        report.notes.push(
            "nothing deployed that serves traffic: this stack operation touches no live traffic"
                .into(),
        );
        return Ok(report);
    };
    if let Some(w) = spike_window(i.calendar, i.now, i.span, i.settings, i.events)? {
        report.refusals.push(Refusal {
            what: "schedule".into(),
            why: window_refusal(i.now, i.span, &w).to_string(),
        });
    }
    if let Some((id, status)) = &i.in_progress {
        report.refusals.push(Refusal {
            what: "deployment".into(),
            why: format!("deployment {id} is {status}: a stack update during it would change what it is rolling out or rolling back; wait for it (`orderbroker status`) and run make deploy again"),
        });
    }
    let swapped = match (
        &i.live.production_target_group,
        &p.template_production_target_group,
    ) {
        (Some(live), Some(template)) => Some(live != template),
        _ => None,
    };
    for c in &p.plan.changes {
        if c.path == Route::Frozen {
            // A serving listener's property: CloudFormation's update rewrites its default action
            // to the template's target group (rules.rs), harmless only while production is there.
            let listener_action =
                c.type_name == "AWS::ElasticLoadBalancingV2::Listener" && c.property.is_some();
            match (listener_action, swapped) {
                (true, Some(false)) => report.notes.push(format!(
                    "{} changes ({}); production is on the template's target group, so CloudFormation's rewrite keeps it there",
                    what(c),
                    c.cause
                )),
                (true, Some(true)) => report.refusals.push(Refusal {
                    what: what(c),
                    why: format!(
                        "{}: CloudFormation would rewrite it to the template's target group {}, but CodeDeploy moved production to {}: an outage. Deploy once more with `orderbroker deploy` (production returns to the template's target group), then update the stack",
                        c.cause,
                        p.template_production_target_group.as_deref().unwrap_or("?"),
                        i.live.production_target_group.as_deref().unwrap_or("?")
                    ),
                }),
                (true, None) => report.refusals.push(Refusal {
                    what: what(c),
                    why: format!(
                        "{}: cannot tell which target group serves production now (no PRIMARY task set found), so a rewrite of its default action may send production to the idle one",
                        c.cause
                    ),
                }),
                (false, _) => report.refusals.push(Refusal {
                    what: what(c),
                    why: format!("frozen ({}): {}", c.cause, c.reason),
                }),
            }
            continue;
        }
        if let Some(flag) = &c.flagged {
            if i.accepted.contains(&c.logical_id) {
                report.notes.push(format!(
                    "{} ({}): accepted with --accept {}: {flag}",
                    what(c),
                    c.path.as_str(),
                    c.logical_id
                ));
            } else {
                report.refusals.push(Refusal {
                    what: what(c),
                    why: format!(
                        "{} ({}): {flag}; {}. Accept it by name with --accept {} (make deploy PREFLIGHT_FLAGS='--accept {}') when that is intended",
                        c.path.as_str(),
                        c.cause,
                        c.reason,
                        c.logical_id,
                        c.logical_id
                    ),
                });
            }
        }
        if c.path == Route::Rollout {
            report.rollout.push(c.clone());
        }
    }
    for c in &p.unpinned {
        report.refusals.push(Refusal {
            what: what(c),
            why: format!(
                "the stack update would still send it to the CODE_DEPLOY service ({}), which ECS refuses: the template's Pinned* parameters do not hold it (src/update/pins.rs)",
                c.cause
            ),
        });
    }
    if !report.rollout.is_empty() {
        report.notes.push(format!(
            "{} change(s) take the rollout path: after the stack update, make deploy rolls them out with `orderbroker carry` (a CodeDeploy blue/green deployment of the running image with the new settings)",
            report.rollout.len()
        ));
    }
    Ok(report)
}
