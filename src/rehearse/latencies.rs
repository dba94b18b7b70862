//! Every latency of the rehearsal that AWS does not document as a number: one `[min, max]`
//! range each, with its source or the word ASSUMPTION. This file is the only place they live;
//! a range is narrowed only with a cited source (docs/rehearsal.md lists them).
//!
//! The ALB's metric publication delays are not here as one range per run: each metric's delay
//! is one value per run, taken from [`publication_orders`] (the five fixed orders the issue
//! names) or, for the seeded samples, one value per metric and minute
//! ([`crate::alarms::data::Delays::seeded`]).

use serde::Serialize;

use crate::alarms::data::Delays;

/// One undocumented latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    /// Seconds past a whole minute at which the deployment is created: where the CloudWatch
    /// minutes and the watchdog's per-minute schedule fall.
    MinutePhase,
    /// CodeDeploy's Install step done (every replacement task RUNNING) -> the first hook invoked.
    InstallToFirstHook,
    /// A Fargate task's containers exited -> the task STOPPED (network interface released).
    FargateDeprovision,
    /// ECS acting on an unhealthy target once the grace period is over.
    EcsActionAfterGrace,
    /// An ECS Task State Change -> the watchdog invoked.
    EventBridgeDelivery,
    /// A deployment-group alarm in ALARM -> CodeDeploy seeing it.
    AlarmPoll,
    /// A Failed hook status, an ALARM seen or StopDeployment -> CodeDeploy starting to reroute.
    CodeDeployReaction,
    /// CodeDeploy modifying a listener -> the ALB routing by it.
    ListenerReroute,
    /// The replacement task set's tasks all stopped -> the task set deleted (rollback complete).
    TaskSetDeletion,
    /// The CLI's own pre-flight and polling, added to what an operator sees.
    CliOverhead,
}

/// A latency's range and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub latency: Latency,
    pub min: u32,
    pub max: u32,
    /// The AWS source, or `ASSUMPTION: ...`.
    pub source: &'static str,
}

impl Range {
    pub fn nominal(&self) -> u32 {
        (self.min + self.max) / 2
    }
}

/// Every range. None is narrower than the floor; the sources say where a bound comes from.
pub const RANGES: [Range; 10] = [
    Range {
        latency: Latency::MinutePhase,
        min: 0,
        max: 59,
        source: "the deployment may be created at any second of a minute",
    },
    Range {
        latency: Latency::InstallToFirstHook,
        min: 5,
        max: 20,
        source: "ASSUMPTION: CodeDeploy documents no time between Install and AllowTestTraffic + the first hook's invocation",
    },
    Range {
        latency: Latency::FargateDeprovision,
        min: 0,
        max: 30,
        source: "ASSUMPTION: ECS docs list DEPROVISIONING (network interface detached) before STOPPED with no duration",
    },
    Range {
        latency: Latency::EcsActionAfterGrace,
        min: 0,
        max: 30,
        source: "ASSUMPTION: ECS documents that the scheduler ignores failed ELB checks during the grace period, not how soon it acts after",
    },
    Range {
        latency: Latency::EventBridgeDelivery,
        min: 0,
        max: 30,
        source: "ASSUMPTION: EventBridge delivers events 'in near real time'; ECS sends task state changes 'on a best effort basis'",
    },
    Range {
        latency: Latency::AlarmPoll,
        min: 0,
        max: 60,
        source: "ASSUMPTION: CodeDeploy documents that it monitors the group's alarms, not how often",
    },
    Range {
        latency: Latency::CodeDeployReaction,
        min: 0,
        max: 15,
        source: "ASSUMPTION: CodeDeploy documents no time from a failure to starting the rollback",
    },
    Range {
        latency: Latency::ListenerReroute,
        min: 0,
        max: 10,
        source: "ASSUMPTION: ELB documents no propagation time for a ModifyListener",
    },
    Range {
        latency: Latency::TaskSetDeletion,
        min: 0,
        max: 30,
        source: "ASSUMPTION: CodeDeploy documents no time to delete the replacement task set",
    },
    Range {
        latency: Latency::CliOverhead,
        min: 5,
        max: 15,
        source: "ASSUMPTION: the CLI's pre-flight calls and its polling interval (orderbroker deploy --wait)",
    },
];

/// The range of one latency.
pub fn range(l: Latency) -> &'static Range {
    RANGES.iter().find(|r| r.latency == l).unwrap_or(&RANGES[0])
}

/// Each ALB metric's publication delay, one value per metric and run. ASSUMPTION: the ALB
/// "measures and sends its metrics in 60-second intervals" (ELB docs, "CloudWatch metrics for
/// your Application Load Balancer") and documents no delay; 30-150 s.
pub const PUBLICATION_RANGE: (u32, u32) = (30, 150);

/// The five publication orders of every combination: all 30 s; all 150 s; RequestCount and
/// HealthyHostCount early, the rest late; the 5xx and latency metrics late, the rest early; the
/// reverse of that.
pub fn publication_orders() -> Vec<(&'static str, Delays)> {
    let (early, late) = PUBLICATION_RANGE;
    let errs_latency = [
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
        "TargetConnectionErrorCount",
        "TargetResponseTime",
    ];
    let with = |v: u32| errs_latency.map(|k| (k, v));
    vec![
        ("all 30 s", Delays::uniform(early)),
        ("all 150 s", Delays::uniform(late)),
        (
            "RequestCount and HealthyHostCount early, the rest late",
            Delays::by_metric(
                late,
                &[("RequestCount", early), ("HealthyHostCount", early)],
            ),
        ),
        (
            "5xx and latency late, the rest early",
            Delays::by_metric(early, &with(late)),
        ),
        (
            "5xx and latency early, the rest late",
            Delays::by_metric(late, &with(early)),
        ),
    ]
}

/// The nominal run's publication: every metric at the middle of its range.
pub fn nominal_publication() -> Delays {
    Delays::uniform((PUBLICATION_RANGE.0 + PUBLICATION_RANGE.1) / 2)
}

/// One run's values for the ranges it consulted, and how to pick the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// Fixed values (a prefix of the exploration, or every latency for a sample).
    pub fixed: Vec<(Latency, u32)>,
    /// What an unfixed latency takes.
    pub default: Pick,
    /// The latencies the run read, in order, with the value it got.
    pub consulted: Vec<(Latency, u32)>,
}

/// How an unfixed latency is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Pick {
    Min,
    Nominal,
    Max,
}

impl Choice {
    pub fn new(default: Pick) -> Self {
        Choice {
            fixed: Vec::new(),
            default,
            consulted: Vec::new(),
        }
    }

    pub fn with(fixed: Vec<(Latency, u32)>, default: Pick) -> Self {
        Choice {
            fixed,
            default,
            consulted: Vec::new(),
        }
    }

    /// The value of `l` for this run (the same every time it is read).
    pub fn get(&mut self, l: Latency) -> u32 {
        if let Some((_, v)) = self.consulted.iter().find(|(k, _)| *k == l) {
            return *v;
        }
        let r = range(l);
        let v = match self.fixed.iter().find(|(k, _)| *k == l) {
            Some((_, v)) => *v,
            None => match self.default {
                Pick::Min => r.min,
                Pick::Nominal => r.nominal(),
                Pick::Max => r.max,
            },
        };
        self.consulted.push((l, v));
        v
    }
}

/// A seeded sample: every latency uniform over its range (deterministic in `seed`).
pub fn sample(seed: u64) -> Vec<(Latency, u32)> {
    RANGES
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let x = crate::alarms::data::mix(seed.wrapping_mul(31).wrapping_add(i as u64 + 1));
            (r.latency, r.min + (x % u64::from(r.max - r.min + 1)) as u32)
        })
        .collect()
}
