//! The deployment gates: synthetic trades through a listener decide whether traffic moves
//! ([`validation`]); the CodeDeploy lifecycle hook runs them and reports exactly one status
//! ([`hook`]).

pub mod hook;
pub mod validation;
