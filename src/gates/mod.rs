//! The deployment gates: first the health of the target group behind the listener
//! ([`targets`], read through [`aws`]), nothing sent before a target is healthy; then synthetic
//! trades through the listener decide whether traffic moves ([`validation`]); the CodeDeploy
//! lifecycle hook runs them and reports exactly one status ([`hook`]).

pub mod aws;
pub mod hook;
pub mod targets;
pub mod validation;
