//! Whether the Fargate vCPU quota holds a deployment at its peak, placed as ECS places it.
//!
//! During a blue/green deployment both task sets run, and a scale-out then over-asks about 2x
//! (Application Auto Scaling scales from the RUNNING count, which counts both sets: ECS
//! developer guide, "Service auto scaling considerations"), each set capped at MaxTasks. The
//! peak is therefore both task sets at MaxTasks: `2 x MaxTasks x task vCPU`, of which the tasks
//! running now are already in the usage.

use serde::Serialize;

use crate::deploy::appspec::StrategyItem;
use crate::deploy::DeployError;

/// Tasks of one task set per capacity provider, as ECS places them: `base` first, the rest by
/// weight (rounded up on each side: the check is conservative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub on_demand: u32,
    pub spot: u32,
}

pub fn place(tasks: u32, strategy: &[StrategyItem]) -> Placement {
    let base_od: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE")
        .map(|s| s.base)
        .sum();
    let base_spot: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE_SPOT")
        .map(|s| s.base)
        .sum();
    let w_od: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE")
        .map(|s| s.weight)
        .sum();
    let w_spot: u32 = strategy
        .iter()
        .filter(|s| s.capacity_provider == "FARGATE_SPOT")
        .map(|s| s.weight)
        .sum();
    let od_base = base_od.min(tasks);
    let spot_base = base_spot.min(tasks - od_base);
    let rest = tasks - od_base - spot_base;
    let total_w = w_od + w_spot;
    if total_w == 0 {
        return Placement {
            on_demand: od_base + if w_spot == 0 { rest } else { 0 },
            spot: spot_base,
        };
    }
    let share = |w: u32| (u64::from(rest) * u64::from(w)).div_ceil(u64::from(total_w)) as u32;
    Placement {
        on_demand: od_base + share(w_od).min(rest),
        spot: spot_base + share(w_spot).min(rest),
    }
}

/// Quota and usage of one Fargate class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassUsage {
    pub quota: f64,
    pub usage: Option<f64>,
}

/// What the quota check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaReport {
    /// The most tasks one task set may reach (the scalable target's MaxTasks).
    pub peak_per_set: u32,
    /// The service's tasks now (already counted in the usage).
    pub current: u32,
    pub task_vcpu: f64,
    pub placement: Placement,
    pub lines: Vec<String>,
}

pub const ON_DEMAND_QUOTA: &str = "L-3032A538";
pub const SPOT_QUOTA: &str = "L-36FBB829";

/// The extra tasks per class the peak needs beyond what runs now: both task sets at
/// `peak_per_set`, minus the service's `current` tasks (placed by the same strategy).
pub fn peak_placement(peak_per_set: u32, current: u32, strategy: &[StrategyItem]) -> Placement {
    let one = place(peak_per_set.max(current), strategy);
    let now = place(current, strategy);
    Placement {
        on_demand: (2 * one.on_demand).saturating_sub(now.on_demand),
        spot: (2 * one.spot).saturating_sub(now.spot),
    }
}

/// Does the account's Fargate quota hold the deployment's peak (both task sets at
/// `peak_per_set`, MaxTasks) on top of what runs now (`current` of them this service's)?
pub fn check_quota(
    peak_per_set: u32,
    current: u32,
    task_vcpu: f64,
    strategy: &[StrategyItem],
    on_demand: ClassUsage,
    spot: Option<ClassUsage>,
) -> Result<QuotaReport, DeployError> {
    let placement = peak_placement(peak_per_set, current, strategy);
    let mut lines = Vec::new();
    let classes = [
        (
            "On-Demand",
            ON_DEMAND_QUOTA,
            placement.on_demand,
            Some(on_demand),
        ),
        ("Spot", SPOT_QUOTA, placement.spot, spot),
    ];
    for (class, code, tasks, usage) in classes {
        if tasks == 0 {
            continue;
        }
        let Some(ClassUsage { quota, usage }) = usage else {
            return Err(DeployError::UsageUnknown { class });
        };
        let usage = usage.ok_or(DeployError::UsageUnknown { class })?;
        let needed = f64::from(tasks) * task_vcpu;
        let headroom = quota - usage;
        if needed > headroom {
            return Err(DeployError::Quota {
                class,
                code,
                needed,
                tasks,
                task_vcpu,
                quota,
                usage,
                headroom,
            });
        }
        lines.push(format!(
            "Fargate {class} vCPU: the peak needs {needed} more ({tasks} x {task_vcpu}: both task sets at MaxTasks {peak_per_set}, {current} running now), quota {quota} - in use {usage} = {headroom} free"
        ));
    }
    Ok(QuotaReport {
        peak_per_set,
        current,
        task_vcpu,
        placement,
        lines,
    })
}

/// vCPU of a task-definition `cpu` value (CPU units, or "2 vCPU").
pub fn task_vcpu(cpu: &str) -> Option<f64> {
    let t = cpu.trim();
    if let Some(v) = t.strip_suffix("vCPU").or_else(|| t.strip_suffix("vcpu")) {
        return v.trim().parse().ok();
    }
    t.parse::<f64>().ok().map(|units| units / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(od_base: u32, od_w: u32, spot_w: u32) -> Vec<StrategyItem> {
        let mut s = vec![StrategyItem {
            capacity_provider: "FARGATE".into(),
            base: od_base,
            weight: od_w,
        }];
        if spot_w > 0 {
            s.push(StrategyItem {
                capacity_provider: "FARGATE_SPOT".into(),
                base: 0,
                weight: spot_w,
            });
        }
        s
    }

    #[test]
    fn the_peak_is_both_task_sets_at_max_tasks_minus_what_runs() {
        // MaxTasks 10, 6 running, On-Demand only: 2 x 10 - 6 = 14 more tasks.
        assert_eq!(
            peak_placement(10, 6, &strategy(3, 1, 0)),
            Placement {
                on_demand: 14,
                spot: 0
            }
        );
        // With Spot 1:1 above a base of 3: each set at 10 is 7 On-Demand (3 + ceil 3.5) and 4
        // Spot (ceil 3.5); 6 now are 5 + 2 (rounded up on both sides: conservative).
        assert_eq!(
            peak_placement(10, 6, &strategy(3, 1, 1)),
            Placement {
                on_demand: 14 - 5,
                spot: 8 - 2
            }
        );
        let e = check_quota(
            10,
            6,
            2.0,
            &strategy(3, 1, 0),
            ClassUsage {
                quota: 130.0,
                usage: Some(120.0),
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs 28 more vCPU"), "{e}");
    }

    #[test]
    fn placement_follows_base_then_weight() {
        assert_eq!(
            place(6, &strategy(3, 1, 0)),
            Placement {
                on_demand: 6,
                spot: 0
            }
        );
        assert_eq!(
            place(7, &strategy(3, 1, 1)),
            Placement {
                on_demand: 5,
                spot: 2
            }
        );
        assert_eq!(
            place(2, &strategy(3, 1, 3)),
            Placement {
                on_demand: 2,
                spot: 0
            }
        );
    }

    #[test]
    fn vcpu_of_cpu_values() {
        assert_eq!(task_vcpu("2048"), Some(2.0));
        assert_eq!(task_vcpu("1 vCPU"), Some(1.0));
        assert_eq!(task_vcpu("lots"), None);
    }
}
