//! The one integration-test binary: every test of the library, the CLI and the template that
//! runs without AWS (one link of the AWS SDK instead of one per file). The live scenarios
//! against a deployed stack are `tests/live.rs`, ignored unless `make live-test`.

mod alarms;
mod alb_reservation;
mod appspec;
mod calendar;
mod cli_contract;
mod cli_input;
mod custom_resource;
mod deploy;
mod gate_targets;
mod hook_handler;
mod load;
mod market_events;
mod network;
mod plan_picture;
mod preflight;
mod readiness;
mod rehearse;
mod support;
mod tag_enforcer;
mod tag_enforcer_moto;
mod template_policy;
mod timing;
mod tls;
mod update_plan;
mod validation;
mod warm_pool;
mod warm_pool_handler;
mod warmup_handler;
mod warmup_plan;
mod watchdog;
