//! A live deployment next to its rehearsal (pure): which mechanism stopped the real deployment,
//! read from what CodeDeploy reports, and each measured phase beside the rehearsal's range
//! (`tests/live.rs` prints both).
//!
//! CodeDeploy's `ErrorInformation.code` values used (API reference, `ErrorCode`):
//! `HOOK_EXECUTION_FAILURE` (a hook reported Failed, or its event timed out), `ALARM_ACTIVE`
//! (an alarm of the group), `MANUAL_STOP`, `TIMEOUT`. ASSUMPTION (the enum is documented, not
//! which code each cause leaves): a StopDeployment (in this stack the watchdog, or an operator's
//! `orderbroker rollback`) leaves `MANUAL_STOP`; a live run prints the code it read either way.

use super::Rehearsal;

/// The rehearsal's `stopped_by` vocabulary for a real deployment. `failed_event` is the first
/// lifecycle event CodeDeploy lists as Failed.
pub fn mechanism(code: Option<&str>, failed_event: Option<&str>, message: Option<&str>) -> String {
    let message = message.unwrap_or_default();
    match code {
        None => "none".into(),
        Some("HOOK_EXECUTION_FAILURE") => match failed_event {
            Some(e) if message.contains("timed out") || message.contains("time out") => {
                format!("codedeploy:hook-timeout ({e})")
            }
            Some(e) => format!("gate:{e}"),
            None => format!("gate (no Failed event listed: {message})"),
        },
        Some("ALARM_ACTIVE") => format!("alarm ({message})"),
        Some("MANUAL_STOP") => {
            "watchdog (StopDeployment; its log group names the check) or an operator".into()
        }
        Some(other) => format!("codedeploy:{other} ({message})"),
    }
}

/// One line per measured phase (seconds), with the rehearsal's shortest and longest run and
/// whether the measurement lies inside; the rehearsal's phases nobody measured are listed too.
pub fn compare(measured: &[(String, f64)], r: &Rehearsal) -> Vec<String> {
    let mut out: Vec<String> = measured
        .iter()
        .map(|(name, secs)| match r.ranges.get(name) {
            Some([lo, hi]) => {
                let verdict = if (*lo..=*hi).contains(secs) {
                    "inside"
                } else {
                    "OUTSIDE"
                };
                format!("{name:<22} {secs:>6.0} s | rehearsal {lo:.0}-{hi:.0} s ({verdict})")
            }
            None => format!("{name:<22} {secs:>6.0} s | rehearsal: never reached"),
        })
        .collect();
    for (name, [lo, hi]) in &r.ranges {
        if !measured.iter().any(|(m, _)| m == name) {
            out.push(format!(
                "{name:<22}      - | rehearsal {lo:.0}-{hi:.0} s (not measured)"
            ));
        }
    }
    out
}
