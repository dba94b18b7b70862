//! OrderBroker platform library: every decision the CLI and the Lambda functions make lives here
//! as plain functions over plain data; AWS calls stay at the edges.
//!
//! - [`appspec`]: the ECS AppSpec of a CodeDeploy deployment (strategy and gates always in it).
//! - [`deploy`], [`deploy_aws`]: CodeDeploy rollouts (image, window and quota pre-flight, the
//!   derived revision, following a deployment and its rollback by id) and `status`.
//! - [`preflight`]: the guard in front of a stack update (frozen resources, spike windows).
//! - [`calendar`]: the NYSE trading calendar (holidays, early closes, closures, DST).
//! - [`warmup`]: the market warm-up plan (floors before each open and close) and its reconciliation.
//! - [`warmup_aws`]: the warm-up's AWS edge (read target, forecast, history; write actions).
//! - [`validation`]: synthetic trades against a listener and the pass/fail verdict.
//! - [`load`]: synthetic-trade load at a steady rate, every order counted (succeeded, failed,
//!   dropped); [`load_aws`]: the same from inside the VPC, in segments of the load-generator
//!   function.
//! - [`hook`]: CodeDeploy lifecycle hooks: run the validation, report exactly one status.
//! - [`warm_pool`]: the standby task count N (model, hysteresis, the tracked metric).
//! - [`warm_pool_aws`]: the warm pool's AWS edge (measure starts and load, publish N).
//! - [`custom_resource`]: the CloudFormation custom-resource protocol (answers on every path).
//! - [`tag_enforcer`], [`tag_enforcer_aws`]: the run-time tag policy (inventory, ARNs, tagging).
//! - [`template`]: the SAM template as CloudFormation reads it (short-form intrinsics normalised).
//! - [`samconfig`]: samconfig.toml, the one source of stack tags and deploy parameters.
//! - [`tagging`]: the tagging policy and its build-time check.

pub mod appspec;
pub mod calendar;
pub mod custom_resource;
pub mod deploy;
pub mod deploy_aws;
pub mod edge;
pub mod hook;
pub mod load;
pub mod load_aws;
pub mod preflight;
pub mod samconfig;
pub mod tag_enforcer;
pub mod tag_enforcer_aws;
pub mod tagging;
pub mod template;
pub mod validation;
pub mod warm_pool;
pub mod warm_pool_aws;
pub mod warmup;
pub mod warmup_aws;
