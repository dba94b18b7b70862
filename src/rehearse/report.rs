//! The rehearsal's bounds (issue 23, "Bounds": worst case, template defaults) and what
//! `orderbroker rehearse` prints (pure).

use super::runs::RunResult;
use super::world::Setup;
use super::{Kind, Rehearsal};

/// A bad version stopped by a gate or the watchdog: onset -> rollback complete (worst case);
/// an alarm-only failure: the same, nominal.
pub const ROLLBACK_BOUND_SECONDS: f64 = 300.0;
/// Production back on blue after the stop.
pub const BACK_ON_BLUE_BOUND_SECONDS: f64 = 60.0;
/// A silent hook: onset -> stopped within HookTimeoutSeconds + this.
pub const SILENT_HOOK_MARGIN_SECONDS: f64 = 90.0;

fn took(r: &RunResult) -> Option<f64> {
    Some(r.rollback_complete_after_s? - r.onset_s?)
}

fn back_after_stop(r: &RunResult) -> Option<f64> {
    Some(r.back_on_blue_after_s? - r.stopped_after_s?)
}

fn rolled_back_in_time(r: &RunResult, what: &str, bound: f64, out: &mut Vec<String>) {
    if !r.rolled_back {
        out.push(format!("{what}: not rolled back"));
        return;
    }
    match took(r) {
        Some(t) if t <= bound => {}
        Some(t) => out.push(format!(
            "{what}: onset -> rollback complete {t:.0} s > {bound:.0} s"
        )),
        None => out.push(format!("{what}: no onset or no rollback complete")),
    }
}

/// Every bound the rehearsal misses (empty: all held).
pub fn misses(r: &Rehearsal, setup: &Setup) -> Vec<String> {
    let mut out = Vec::new();
    let Some(worst) = &r.worst_case else {
        return vec!["no runs".into()];
    };
    match r.kind {
        Kind::Good => {
            if worst.rolled_back {
                out.push("a good version was rolled back in some run".into());
            }
            if !worst.alarms_fired.is_empty() {
                out.push(format!(
                    "deployment-group alarms fired: {}",
                    worst.alarms_fired.join(", ")
                ));
            }
            if r.max_failed_production_requests > 0 {
                out.push(format!(
                    "{} failed production requests",
                    r.max_failed_production_requests
                ));
            }
            return out;
        }
        Kind::NeverServes => {
            rolled_back_in_time(worst, "worst case", ROLLBACK_BOUND_SECONDS, &mut out)
        }
        Kind::FailsUnderTraffic => {
            rolled_back_in_time(&r.nominal, "nominal", ROLLBACK_BOUND_SECONDS, &mut out);
            if !worst.rolled_back {
                out.push("worst case: not rolled back".into());
            }
        }
        Kind::SilentHook => {
            let bound = f64::from(setup.timing.hook_timeout_seconds) + SILENT_HOOK_MARGIN_SECONDS;
            match r.max_onset_to_stopped_s {
                Some(s) if s <= bound => {}
                Some(s) => out.push(format!(
                    "worst case: onset -> stopped {s:.0} s > {bound:.0} s"
                )),
                None => out.push("some run was never stopped".into()),
            }
        }
    }
    for (what, run) in [("nominal", &r.nominal), ("worst case", worst)] {
        if let Some(b) = back_after_stop(run).filter(|b| *b > BACK_ON_BLUE_BOUND_SECONDS) {
            out.push(format!(
                "{what}: production back on blue {b:.0} s after the stop"
            ));
        }
    }
    out
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// One row of the `--all` table.
pub fn row(r: &Rehearsal, misses: &[String]) -> String {
    let w = r.worst_case.as_ref();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        r.nominal.scenario,
        r.nominal.stopped_by.as_deref().unwrap_or("-"),
        secs(r.nominal.onset_s),
        secs(r.nominal.stopped_after_s),
        secs(r.nominal.rollback_complete_after_s),
        secs(w.and_then(took)),
        w.map_or("-".into(), |w| w.alarms_fired.join(" ")),
        r.runs,
        if misses.is_empty() {
            "held".to_string()
        } else {
            misses.join("; ")
        }
    )
}

/// The table's header.
pub const HEADER: &str = "| scenario | stopped by (nominal) | onset s | stopped s | rollback complete s | worst onset -> complete s | alarms (worst) | runs | bounds |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |";

/// The nominal run's timeline, one event a line.
pub fn timeline(r: &Rehearsal) -> String {
    r.timeline
        .iter()
        .map(|(t, what)| format!("{t:>8.1} s  {what}\n"))
        .collect()
}

fn runs_by(r: &Rehearsal) -> String {
    r.stopped_by_runs
        .iter()
        .map(|(by, n)| format!("{by} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table docs/deployments.md keeps (a test checks it is this one): each scenario, what
/// stopped its runs, the nominal run's milestones and the worst case.
pub fn markdown(rows: &[(Rehearsal, Vec<String>)]) -> String {
    let mut out = String::from(
        "| scenario | stopped by (runs) | nominal: onset / stopped / back on blue / rollback complete (s) | worst: onset -> rollback complete (s) | bound |\n| --- | --- | --- | --- | --- |\n",
    );
    for (r, misses) in rows {
        let n = &r.nominal;
        let w = r.worst_case.as_ref();
        out.push_str(&format!(
            "| {} | {} | {} / {} / {} / {} | {} | {} |\n",
            n.scenario,
            runs_by(r),
            secs(n.onset_s),
            secs(n.stopped_after_s),
            secs(n.back_on_blue_after_s),
            secs(n.rollback_complete_after_s),
            secs(w.and_then(took)),
            if misses.is_empty() {
                "held".to_string()
            } else {
                misses.join("; ")
            }
        ));
    }
    out
}
