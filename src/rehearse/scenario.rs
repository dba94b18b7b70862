//! What a rehearsal rehearses: the built-in scenarios and the YAML scenario file (pure).
//!
//! Every key is optional except `green`; an unknown key is an error naming it (serde's
//! `deny_unknown_fields`). Defaults come from the template's values where the issue says so
//! (`healthy_after_s` defaults to `TaskRunningToHealthySeconds`), and are applied when the
//! scenario meets the template ([`super::world::Setup`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The ALB's scheme as a scenario names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AlbScheme {
    #[default]
    Internal,
    InternetFacing,
}

/// A value per traffic phase: requests through the test listener, and through the production
/// listener during the canary and after the full shift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPhase {
    #[serde(default)]
    pub test: f64,
    #[serde(default)]
    pub canary: f64,
    #[serde(default)]
    pub full: f64,
}

impl PerPhase {
    pub const fn all(v: f64) -> Self {
        PerPhase {
            test: v,
            canary: v,
            full: v,
        }
    }
}

/// Each new task's slow first answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdSpec {
    pub first_requests: u64,
    pub p99_ms: f64,
}

/// The old version.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueSpec {
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_p99")]
    pub p99_ms: f64,
}

impl Default for BlueSpec {
    fn default() -> Self {
        BlueSpec {
            error_rate: 0.0,
            p99_ms: DEFAULT_P99_MS,
        }
    }
}

/// The new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenSpec {
    #[serde(default = "yes")]
    pub listens: bool,
    /// Absent: `TaskRunningToHealthySeconds`; `null`: the health check never passes.
    #[serde(default, deserialize_with = "present")]
    pub healthy_after_s: Option<Option<u32>>,
    #[serde(default)]
    pub crash_after_s: Option<u32>,
    #[serde(default)]
    pub cold: Option<ColdSpec>,
    #[serde(default)]
    pub error_rate: Option<PerPhase>,
    #[serde(default)]
    pub p99_ms: Option<PerPhase>,
    #[serde(default = "yes")]
    pub hooks_report: bool,
    /// An extension: the image (or its platform) does not exist, so every task fails to start
    /// (`TaskFailedToStart`, `CannotPullContainerError`).
    #[serde(default)]
    pub image_missing: bool,
}

/// Extra tasks started while green starts (a scale-out of the service: both task sets grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOut {
    /// Waves, the first `first_s` after the deployment's creation, then every `every_s`.
    pub waves: u32,
    pub first_s: u32,
    pub every_s: u32,
    /// Tasks each wave adds to each task set.
    pub tasks: u32,
}

/// A scenario as a file gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default, skip_serializing)]
    pub name: String,
    #[serde(default)]
    pub alb_scheme: AlbScheme,
    #[serde(default = "default_rps")]
    pub production_rps: f64,
    #[serde(default)]
    pub parameters: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub blue: BlueSpec,
    pub green: GreenSpec,
    #[serde(default)]
    pub scale_out: Option<ScaleOut>,
}

/// A parameter value as YAML writes it (a number or a string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

pub const DEFAULT_RPS: f64 = 200.0;
pub const DEFAULT_P99_MS: f64 = 40.0;

fn default_rps() -> f64 {
    DEFAULT_RPS
}
fn default_p99() -> f64 {
    DEFAULT_P99_MS
}
fn yes() -> bool {
    true
}

/// `Some(None)` for an explicit `null`, `None` (via `default`) when the key is absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario {name}: {source}")]
    Yaml {
        name: String,
        #[source]
        source: serde_norway::Error,
    },
    #[error("scenario {name}: {what}")]
    Invalid { name: String, what: String },
    #[error("no built-in scenario {0:?}; the built-in ones: {1}")]
    Unknown(String, String),
}

/// The names of the built-in scenarios, in the order `--all` runs them.
pub const BUILT_IN: [&str; 9] = [
    "good-slow-jvm",
    "good-under-load",
    "good-scale-out-during-deploy",
    "never-listens",
    "never-healthy",
    "crash-loop",
    "fails-under-traffic",
    "latency-regression",
    "hook-never-reports",
];

const GOOD_COLD: ColdSpec = ColdSpec {
    first_requests: 50,
    p99_ms: 900.0,
};

fn green() -> GreenSpec {
    GreenSpec {
        listens: true,
        healthy_after_s: None,
        crash_after_s: None,
        cold: None,
        error_rate: None,
        p99_ms: None,
        hooks_report: true,
        image_missing: false,
    }
}

/// A built-in scenario by name.
pub fn built_in(name: &str) -> Result<Scenario, ScenarioError> {
    let mut s = Scenario {
        name: name.to_string(),
        alb_scheme: AlbScheme::Internal,
        production_rps: DEFAULT_RPS,
        parameters: BTreeMap::new(),
        blue: BlueSpec::default(),
        green: green(),
        scale_out: None,
    };
    let g = &mut s.green;
    match name {
        "good-slow-jvm" => g.cold = Some(GOOD_COLD),
        "good-under-load" => {
            s.production_rps = 1000.0;
            g.cold = Some(GOOD_COLD);
        }
        "good-scale-out-during-deploy" => {
            g.cold = Some(GOOD_COLD);
            s.scale_out = Some(ScaleOut {
                waves: 3,
                first_s: 30,
                every_s: 60,
                tasks: 3,
            });
        }
        "never-listens" => g.listens = false,
        "never-healthy" => g.healthy_after_s = Some(None),
        "crash-loop" => g.crash_after_s = Some(20),
        "fails-under-traffic" => {
            g.error_rate = Some(PerPhase {
                test: 0.0,
                canary: 0.05,
                full: 0.05,
            })
        }
        "latency-regression" => {
            g.p99_ms = Some(PerPhase {
                test: 250.0,
                canary: 4000.0,
                full: 4000.0,
            })
        }
        "hook-never-reports" => g.hooks_report = false,
        other => {
            return Err(ScenarioError::Unknown(
                other.to_string(),
                BUILT_IN.join(", "),
            ))
        }
    }
    Ok(s)
}

/// Whether a `--scenario` argument names a file: it contains `/` or ends in `.yaml`.
pub fn is_file(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml")
}

/// Parses a scenario file's text; `name` is what errors and the report call it.
pub fn parse(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let mut s: Scenario = serde_norway::from_str(text).map_err(|source| ScenarioError::Yaml {
        name: name.to_string(),
        source,
    })?;
    s.name = name.to_string();
    s.validate()?;
    Ok(s)
}

impl Scenario {
    /// Values a deployment cannot have.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |what: String| {
            Err(ScenarioError::Invalid {
                name: self.name.clone(),
                what,
            })
        };
        if !(self.production_rps.is_finite() && (0.0..=100_000.0).contains(&self.production_rps)) {
            return bad(format!(
                "production_rps {} is not in 0-100000",
                self.production_rps
            ));
        }
        let rates = self.green.error_rate.unwrap_or(PerPhase::all(0.0));
        for (k, v) in [
            ("green.error_rate.test", rates.test),
            ("green.error_rate.canary", rates.canary),
            ("green.error_rate.full", rates.full),
            ("blue.error_rate", self.blue.error_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{k} {v} is not a fraction in 0-1"));
            }
        }
        let p99 = self.green.p99_ms.unwrap_or(PerPhase::all(DEFAULT_P99_MS));
        for (k, v) in [
            ("green.p99_ms.test", p99.test),
            ("green.p99_ms.canary", p99.canary),
            ("green.p99_ms.full", p99.full),
            ("blue.p99_ms", self.blue.p99_ms),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 600_000.0) {
                return bad(format!("{k} {v} is not in (0, 600000] ms"));
            }
        }
        if let Some(w) = self.scale_out {
            if w.waves > 10 || w.tasks > 50 || w.every_s == 0 {
                return bad("scale_out: at most 10 waves of 50 tasks, every_s >= 1".into());
            }
        }
        Ok(())
    }
}
