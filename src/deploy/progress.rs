//! What a deployment's progress means: snapshots, lifecycle-event lines, the outcome, and which
//! alarms a hotfix may ignore.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One look at a deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub deployment_id: String,
    pub status: String,
    /// Lifecycle events in order, with their status.
    pub events: Vec<(String, String)>,
    /// Task sets: label (Blue/Green), traffic %, running/desired.
    pub task_sets: Vec<TaskSetView>,
    pub error: Option<String>,
    /// `ErrorInformation.code` (e.g. HOOK_EXECUTION_FAILURE, ALARM_ACTIVE, MANUAL_STOP).
    pub error_code: Option<String>,
    pub rollback_id: Option<String>,
    pub rollback_message: Option<String>,
    pub auto_rollback: bool,
    /// When CodeDeploy created and completed it.
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Start and end of each lifecycle event (for phase timings).
    pub event_times: Vec<EventTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventTime {
    pub name: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl EventTime {
    pub fn seconds(&self) -> Option<f64> {
        Some((self.end? - self.start?).num_milliseconds() as f64 / 1000.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskSetView {
    /// ECS task-set id.
    pub id: String,
    pub label: String,
    pub traffic: f64,
    pub running: i64,
    pub desired: i64,
    pub target_group: String,
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Phase {
    Running,
    Succeeded,
    /// Failed or stopped; a rollback may follow.
    Ended,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "Succeeded" => Phase::Succeeded,
        "Failed" | "Stopped" => Phase::Ended,
        _ => Phase::Running,
    }
}

/// Statuses of a deployment that still holds the deployment group.
pub const ACTIVE_STATUSES: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

/// What changed between two looks, as lines for the operator.
pub fn progress_lines(prev: Option<&Snapshot>, next: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let id = &next.deployment_id;
    if prev.is_none_or(|p| p.status != next.status) {
        out.push(format!("{id}: deployment {}", next.status));
    }
    for (name, status) in &next.events {
        let before = prev.and_then(|p| p.events.iter().find(|(n, _)| n == name).map(|(_, s)| s));
        if before != Some(status) && status != "Pending" {
            out.push(format!("{id}: {name} {status}"));
        }
    }
    let traffic = |s: &Snapshot| {
        s.task_sets
            .iter()
            .map(|t| {
                format!(
                    "{} {}% ({}/{} running, {})",
                    t.label, t.traffic, t.running, t.desired, t.target_group
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let now = traffic(next);
    if !now.is_empty() && prev.is_none_or(|p| traffic(p) != now) {
        out.push(format!("{id}: traffic {now}"));
    }
    if let Some(e) = &next.error {
        if prev.is_none_or(|p| p.error.as_ref() != Some(e)) {
            out.push(format!("{id}: error: {e}"));
        }
    }
    out
}

/// The one-line summary a terminal shows while waiting.
pub fn status_line(s: &Snapshot, elapsed: std::time::Duration) -> String {
    let current = s
        .events
        .iter()
        .find(|(_, st)| st == "InProgress")
        .map(|(n, _)| n.as_str())
        .unwrap_or("-");
    let green = s
        .task_sets
        .iter()
        .find(|t| t.label == "Green")
        .map(|t| format!("green {}%", t.traffic))
        .unwrap_or_default();
    format!(
        "[{:>4}s] {} {} {} {}",
        elapsed.as_secs(),
        s.deployment_id,
        s.status,
        current,
        green
    )
}

/// The reason a failed deployment gives.
pub fn failure_reason(s: &Snapshot) -> String {
    let failed_event = s
        .events
        .iter()
        .find(|(_, st)| st == "Failed")
        .map(|(n, _)| format!("lifecycle event {n} failed"));
    let parts: Vec<String> = [failed_event, s.error.clone(), s.rollback_message.clone()]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        return format!("deployment {}", s.status);
    }
    parts.join("; ").chars().take(2000).collect()
}

/// How a followed deployment ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Outcome {
    Succeeded {
        deployment_id: String,
    },
    /// Failed or stopped with no rollback deployment.
    Failed {
        deployment_id: String,
        status: String,
        reason: String,
    },
    /// Failed or stopped, and CodeDeploy rolled back through `rollback_id`.
    RolledBack {
        deployment_id: String,
        reason: String,
        rollback_id: String,
        rollback_status: String,
    },
    /// The wait ran out; the deployment goes on.
    TimedOut {
        deployment_id: String,
        status: String,
    },
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Succeeded { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Succeeded { deployment_id } => {
                format!("deployment {deployment_id} succeeded: the new version holds all traffic")
            }
            Outcome::Failed {
                deployment_id,
                status,
                reason,
            } => format!("deployment {deployment_id} {status}: {reason}"),
            Outcome::RolledBack {
                deployment_id,
                reason,
                rollback_id,
                rollback_status,
            } => format!(
                "deployment {deployment_id} rolled back ({reason}); rollback deployment {rollback_id} {rollback_status}{}",
                if rollback_status == "Succeeded" {
                    ": the previous version holds all traffic"
                } else {
                    ": CHECK THE SERVICE, the rollback did not complete"
                }
            ),
            Outcome::TimedOut {
                deployment_id,
                status,
            } => format!(
                "stopped waiting; deployment {deployment_id} is still {status} (follow it with `orderbroker status`)"
            ),
        }
    }
}

/// For `--override-alarms`: the deployment group's alarms that are not firing now stay armed;
/// the firing ones are ignored for this deployment. Returns (kept, ignored).
pub fn split_alarms(group_alarms: &[String], firing: &[String]) -> (Vec<String>, Vec<String>) {
    group_alarms
        .iter()
        .cloned()
        .partition(|a| !firing.contains(a))
}
