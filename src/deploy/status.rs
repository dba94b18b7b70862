//! What `status` shows, as plain data, and its rendering for a person.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::deploy::Snapshot;

/// `status`: the deployment in progress, the task sets, the scaling bounds and the warm-up plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusView {
    pub stack: String,
    pub deployment: Option<Snapshot>,
    pub running: i32,
    pub desired: i32,
    pub pending: i32,
    pub task_sets: Vec<TaskSetState>,
    pub min: Option<i32>,
    pub max: Option<i32>,
    pub actions: Vec<PlannedAction>,
    /// The warm-up's actions whose schedule is not an `at(...)` this view can read: listed,
    /// never silently left out (name, schedule).
    pub unreadable_actions: Vec<(String, String)>,
    pub next_action: Option<PlannedAction>,
    /// Why the service is degraded ([`degradations`]); empty when it is not.
    pub degraded: Vec<String>,
}

/// Why the service is degraded: fewer tasks running than desired, fewer than the scaling
/// floor, no task at all. `status --check` exits 1 on any (docs/cli.md).
pub fn degradations(v: &StatusView) -> Vec<String> {
    let mut out = Vec::new();
    if v.running < v.desired {
        out.push(format!(
            "{} of {} desired tasks running ({} pending)",
            v.running, v.desired, v.pending
        ));
    }
    if let Some(min) = v.min {
        if v.running < min {
            out.push(format!(
                "{} tasks running, below MinCapacity {min}",
                v.running
            ));
        }
    }
    if v.running == 0 && v.desired == 0 {
        out.push("no task is running or desired".into());
    }
    out
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskSetState {
    /// `blue` or `green`: which of the stack's target groups it serves from (the template's
    /// names; CodeDeploy swaps which one production uses on every deployment).
    pub colour: String,
    pub status: String,
    pub task_definition: String,
    pub running: i32,
    pub desired: i32,
    pub target_group: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    pub name: String,
    pub at: DateTime<Utc>,
    pub min_capacity: Option<i32>,
    pub max_capacity: Option<i32>,
}

/// Reads an `at(YYYY-MM-DDTHH:MM:SS)` schedule in its time zone (UTC when none).
pub fn parse_at(schedule: &str, timezone: Option<&str>) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let inner = schedule.strip_prefix("at(")?.strip_suffix(')')?;
    let local = chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S").ok()?;
    let tz: chrono_tz::Tz = timezone.unwrap_or("UTC").parse().ok()?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// `status` for a person: one block per topic, times in New York and UTC.
pub fn render_status(v: &StatusView, now: DateTime<Utc>) -> String {
    use std::fmt::Write;
    let tz = crate::calendar::EXCHANGE_TZ;
    let when = |t: DateTime<Utc>| {
        format!(
            "{} New York ({})",
            t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M"),
            t.format("%H:%MZ")
        )
    };
    let mut s = String::new();
    let _ = writeln!(s, "stack {}", v.stack);
    match &v.deployment {
        None => {
            let _ = writeln!(s, "deployment: none in progress");
        }
        Some(d) => {
            let _ = writeln!(s, "deployment: {} {}", d.deployment_id, d.status);
            for (name, st) in &d.events {
                let _ = writeln!(s, "  {name:<22} {st}");
            }
            for t in &d.task_sets {
                let _ = writeln!(
                    s,
                    "  {:<5} traffic {:>5.1}%  running {}/{}  {}",
                    t.label, t.traffic, t.running, t.desired, t.target_group
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "service: running {} / desired {} (pending {}); min {} max {}",
        v.running,
        v.desired,
        v.pending,
        v.min.map_or("?".into(), |m| m.to_string()),
        v.max.map_or("?".into(), |m| m.to_string())
    );
    for t in &v.task_sets {
        let _ = writeln!(
            s,
            "  {:<5} task set {:<7} {} running {}/{} -> {}",
            t.colour, t.status, t.task_definition, t.running, t.desired, t.target_group
        );
    }
    for (name, schedule) in &v.unreadable_actions {
        let _ = writeln!(
            s,
            "warm-up: action {name} has a schedule this view cannot read ({schedule}): check it with aws application-autoscaling describe-scheduled-actions"
        );
    }
    if v.actions.is_empty() {
        let _ = writeln!(
            s,
            "warm-up: NO scheduled actions (run the market-warmup function; see docs/scaling.md)"
        );
    } else {
        let _ = writeln!(s, "warm-up: {} scheduled actions", v.actions.len());
        for a in &v.actions {
            let mark = if v.next_action.as_ref() == Some(a) {
                "next ->"
            } else if a.at <= now {
                "  done "
            } else {
                "       "
            };
            let _ = writeln!(
                s,
                "  {mark} {}  min {}  {}",
                when(a.at),
                a.min_capacity.map_or("-".into(), |m| m.to_string()),
                a.name
            );
        }
    }
    match &v.next_action {
        Some(a) => {
            let _ = writeln!(
                s,
                "next: {} at {} (in {} min)",
                a.name,
                when(a.at),
                (a.at - now).num_minutes()
            );
        }
        None => {
            let _ = writeln!(s, "next: nothing planned");
        }
    }
    s
}
