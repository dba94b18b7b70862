//! `orderbroker update-plan`: every change between the deployed and the proposed template, each
//! with the path that carries it on a running platform (frozen, rollout, replacement,
//! stack-update), its source and its cause. Exit 1 when anything is frozen or a flagged
//! replacement (docs/stack-updates.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

use orderbroker::cfn::samconfig::SamConfig;
use orderbroker::cfn::template::Template;
use orderbroker::timing::deploy_parameters;
use orderbroker::update::{self, translate, Change, Plan, Route, Side};

use crate::shared::{clients, parse_set, StackArgs};

#[derive(Args)]
pub struct UpdatePlanArgs {
    /// The deployed template (SAM YAML, or already translated: JSON or YAML without Transform).
    /// Without it the deployed side is read from the stack (--stack, or samconfig's
    /// stack_name): its processed template, parameters and physical ids, and the plan uses the
    /// Pinned* values make deploy passes
    #[arg(long)]
    deployed: Option<PathBuf>,
    /// The deployed parameter values: describe-stacks JSON, its Parameters list, or a
    /// {name: value} object (default: the proposed side's, samconfig plus derived values)
    #[arg(long, requires = "deployed")]
    deployed_parameters: Option<PathBuf>,
    /// The proposed template
    #[arg(long, default_value = "template.yaml")]
    proposed: PathBuf,
    /// Extra KEY=VALUE parameters of the proposed side (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print {"changes": [{logical_id, type, property, path, reason, cause, flagged?}]}
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

struct FromStack {
    region: String,
    stack: orderbroker::aws::stack::Stack,
    physical: std::collections::BTreeMap<String, String>,
}

/// The translator's limit: the SAM translator runs in well under it (docs/stack-updates.md).
pub const TRANSLATE_LIMIT: Duration = Duration::from_secs(60);

impl UpdatePlanArgs {
    /// Whether the deployed side comes from AWS.
    pub fn reads_stack(&self) -> bool {
        self.deployed.is_none()
    }
}

pub async fn run(a: UpdatePlanArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let proposed_raw = Template::load(&a.proposed)?;
    let (deployed_raw, deployed_stack) = match &a.deployed {
        Some(p) => {
            if let Some(stack) = &a.stack.stack {
                eprintln!(
                    "update-plan: the deployed side is {}; stack {stack} (--stack or ORDERBROKER_STACK) is not read",
                    p.display()
                );
            }
            (Template::load(p)?, None)
        }
        None => {
            let session = a.stack.connect().await?;
            let name = session.stack().to_string();
            let c = clients(&session);
            let Some(d) = update::aws::read(&c.cloudformation, &name).await? else {
                bail!(
                    "stack {name} does not exist in {}: nothing deployed to plan against",
                    session.region
                );
            };
            (
                d.template.clone(),
                Some(FromStack {
                    region: session.region.clone(),
                    stack: d.stack,
                    physical: d.physical,
                }),
            )
        }
    };
    let t0 = Instant::now();
    let mut both = translate::translate_all(vec![deployed_raw, proposed_raw], TRANSLATE_LIMIT)?;
    let translation = t0.elapsed();
    let proposed = both.pop().context("the translator returned nothing")?;
    let deployed = both.pop().context("the translator returned nothing")?;
    let config = SamConfig::load(&a.stack.samconfig, &a.stack.config_env)?;
    let extra = parse_set(&a.set)?;
    let proposed_pairs = deploy_parameters(&config, &proposed, &extra)
        .with_context(|| a.proposed.display().to_string())?;
    let deployed_pairs = match (&deployed_stack, &a.deployed_parameters) {
        (Some(d), _) => d.stack.parameters.clone().into_iter().collect(),
        (None, Some(p)) => {
            let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
            update::parse_parameters(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        (None, None) => proposed_pairs.clone(),
    };
    let region = match &deployed_stack {
        Some(d) => d.region.clone(),
        None => a
            .stack
            .target
            .region
            .clone()
            .or_else(|| config.get_str("region").map(str::to_string))
            .unwrap_or_else(|| "us-east-2".into()),
    };
    let mut old = Side::new(&deployed, &deployed_pairs, &region);
    let (plan, pinned, unpinned) = match &deployed_stack {
        Some(d) => {
            // As make deploy plans it: the stack's physical ids, the function code left as
            // deployed (sam build decides it), and the Pinned* values.
            old.parameters = old.parameters.with_physical(&d.physical);
            let proposed = translate::keep_deployed_code(&deployed, proposed)?;
            let p =
                update::plan_stack_update(&old, &proposed, &proposed_pairs, &region, &d.physical)?;
            (p.plan, !p.pins.is_empty(), p.unpinned)
        }
        None => {
            let new = Side::new(&proposed, &proposed_pairs, &region);
            (update::plan(&old, &new)?, false, Vec::new())
        }
    };
    let elapsed = started.elapsed();
    let code = if plan.blocking().next().is_some() || !unpinned.is_empty() {
        crate::exit::from(crate::exit::REFUSED)
    } else {
        ExitCode::SUCCESS
    };
    if a.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "changes": plan.changes,
                // Rollout properties the stack update would still send to the CODE_DEPLOY
                // service (with the deployed side read from a stack; they make exit 1 too).
                "not_pinned": unpinned,
            }))?
        )?;
    } else {
        let from = match (&a.deployed, &deployed_stack) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(d)) => format!("stack {}", d.stack.name),
            (None, None) => "?".into(),
        };
        print_plan(&plan, &from, &a.proposed.display().to_string(), pinned)?;
        for c in &unpinned {
            crate::outln!(
                "NOT PINNED {}.{}: the stack update would still send it to the CODE_DEPLOY service, which ECS refuses",
                c.logical_id,
                c.property.as_deref().unwrap_or("")
            )?;
        }
    }
    eprintln!(
        "update-plan: {} changes in {:.2} s (SAM translation {:.2} s)",
        plan.changes.len(),
        elapsed.as_secs_f64(),
        translation.as_secs_f64()
    );
    Ok(code)
}

/// The plan for people: one line per change, grouped by path, each distinct source once.
pub fn print_plan(plan: &Plan, from: &str, to: &str, pinned: bool) -> Result<()> {
    let count = |r: Route| plan.on(r).count();
    crate::outln!(
        "update-plan: {from} -> {to}: {} change(s): {} frozen, {} rollout, {} replacement, {} stack-update; {} blocking{}",
        plan.changes.len(),
        count(Route::Frozen),
        count(Route::Rollout),
        count(Route::Replacement),
        count(Route::StackUpdate),
        plan.blocking().count(),
        if pinned { " (the service's rollout properties pinned as make deploy passes them)" } else { "" }
    )?;
    let mut sources: Vec<&str> = Vec::new();
    for route in [
        Route::Frozen,
        Route::Rollout,
        Route::Replacement,
        Route::StackUpdate,
    ] {
        let items: Vec<&Change> = plan.on(route).collect();
        if items.is_empty() {
            continue;
        }
        crate::outln!("{}:", route.as_str())?;
        for c in items {
            let n = match sources.iter().position(|s| *s == c.reason) {
                Some(i) => i + 1,
                None => {
                    sources.push(&c.reason);
                    sources.len()
                }
            };
            let values = c
                .values
                .as_ref()
                .map(|(o, n)| format!(": {} -> {}", short(o), short(n)))
                .unwrap_or_default();
            crate::outln!(
                "  {}{} {}{values} ({}; {}) [{n}]{}",
                if c.flagged.is_some() { "FLAGGED " } else { "" },
                c.logical_id,
                c.property.as_deref().unwrap_or("(the resource)"),
                c.type_name,
                c.cause,
                c.flagged
                    .as_deref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            )?;
        }
    }
    if !sources.is_empty() {
        crate::outln!("sources:")?;
        for (i, s) in sources.iter().enumerate() {
            crate::outln!("  [{}] {s}", i + 1)?;
        }
    }
    Ok(())
}

/// A value in at most 60 characters.
fn short(v: &serde_json::Value) -> String {
    if v.is_null() {
        return "(none)".into();
    }
    let s = update::show(v)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}
