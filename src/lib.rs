//! OrderBroker platform library: every decision the CLI and the Lambda functions make lives here
//! as plain functions over plain data; AWS calls stay at the edges.
//!
//! One folder per domain. Inside each, the module named `aws` (or a file under `aws/`) is the
//! AWS edge; every other module is pure (plain inputs, plain outputs, no I/O).
//!
//! - [`calendar`]: the NYSE trading calendar (holidays, early closes, closures, DST).
//! - [`warmup`]: the market warm-up plan (floors before each open and close) and its
//!   reconciliation; [`warmup::aws`] reads the target, forecast and history and writes actions.
//! - [`warm_pool`]: the standby task count N (model, hysteresis, the tracked metric);
//!   [`warm_pool::aws`] measures starts and load and publishes N.
//! - [`deploy`]: CodeDeploy rollouts as decisions (image reference and platform, spike windows,
//!   Fargate quota, the derived revision, progress and outcome), [`deploy::appspec`] and
//!   [`deploy::carry`] (what a rollout after a stack update must carry); [`deploy::aws`] runs
//!   `deploy` and `carry`, follows deployments by id, `rollback` and `status`.
//! - [`update`]: the update plan: every change between a deployed and a proposed translated
//!   template, each with the one path that carries it (frozen, rollout, replacement,
//!   stack-update) from the vendored CloudFormation schemas and the ECS/CodeDeploy rules; the
//!   `Pinned*` values that keep the service's rollout properties out of a stack update.
//! - [`preflight`]: the guard in front of a stack update (the plan's frozen changes and flagged
//!   replacements, a deployment in progress, spike windows); [`preflight::aws`] reads the
//!   deployed stack and the live state.
//! - [`gates`]: the deployment gates: [`gates::validation`] (synthetic trades against a
//!   listener and the verdict) and [`gates::hook`] (CodeDeploy lifecycle hooks, exactly one
//!   status on every path).
//! - [`load`]: synthetic-trade load at a steady rate, every order counted; [`load::in_vpc`] runs
//!   it from inside the VPC through the load-generator function, in segments.
//! - [`network`]: which paths the template's security groups open for given parameters (the
//!   gates and the load generator to the listeners, the ALB to the tasks) and every source
//!   admitted to the listeners and the tasks, by the VPC's documented matching rules.
//! - [`tagging`]: the tag policy and its build-time check; [`tagging::enforcer`] the run-time
//!   inventory and ARNs; [`tagging::aws`] the run-time edge.
//! - [`cfn`]: CloudFormation and SAM: [`cfn::template`] (the template as CloudFormation reads
//!   it), [`cfn::samconfig`] (the one source of stack tags and deploy parameters),
//!   [`cfn::custom_resource`] (the custom-resource protocol; answers on every path).
//! - [`watchdog`]: stops a deployment whose green tasks keep failing where no hook runs
//!   (ECS task-state events, a per-minute health check); [`watchdog::aws`] is its edge.
//! - [`timing`]: the declared task start times and every value derived from them; the
//!   good-version walk and the alarms' detection over the template's values.
//! - [`rehearse`]: the deployment rehearsal, a discrete-event model of one blue/green
//!   deployment with the gates', the watchdog's and the alarms' own decisions inside; the
//!   rollback budget is its output.
//! - [`readiness`]: the account readiness check before a first deploy (service-linked role,
//!   Lambda concurrency, VPC DNS, subnets and egress, endpoint conflicts, quota, image, stack
//!   name); [`readiness::aws`] reads the facts (CLI builds only: feature `cli`).
//! - [`alarms`]: CloudWatch alarms as documented, executable: metric streams published late
//!   and absent when zero, metric math, the evaluation on every tick; the deployment-group
//!   alarms read from the template as CloudFormation receives it.
//! - [`aws`]: shared AWS plumbing: the one error type, SDK set-up with timeouts, the stack
//!   reader, CloudWatch helpers, the Lambda runtime helpers.

pub mod alarms;
pub mod aws;
pub mod calendar;
pub mod cfn;
pub mod deploy;
pub mod gates;
pub mod load;
pub mod network;
pub mod preflight;
pub mod readiness;
pub mod rehearse;
pub mod tagging;
pub mod timing;
pub mod update;
pub mod warm_pool;
pub mod warmup;
pub mod watchdog;
