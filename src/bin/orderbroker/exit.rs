//! One exit-code table for every command (docs/cli.md, "Exit codes"):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done: passed, deployed, reported |
//! | 1 | refused or failed: a check failed, a refusal, a deployment failed or rolled back, an order failed or was dropped, `status --check` found the service degraded, a rollback not confirmed |
//! | 2 | bad input: arguments, files, parameters, a stack that does not exist (clap's usage errors are 2 as well) |
//! | 3 | AWS could not answer: no credentials, unreachable, timed out, access denied, a service error |
//! | 4 | gave up waiting (`--timeout-minutes`): the deployment goes on; or `--command-deadline` ran out |
//! | 130 | interrupted (Ctrl-C); `load` writes its report first |
//!
//! An error's code comes from what is in its source chain; its text is printed on one line
//! (each cause once), the SDK's full context only with `--debug`.

use std::process::ExitCode;

use orderbroker::aws::stack::StackError;
use orderbroker::aws::AwsError;
use orderbroker::deploy::DeployError;

pub const REFUSED: u8 = 1;
pub const INPUT: u8 = 2;
pub const AWS: u8 = 3;
pub const WAITED: u8 = 4;
/// Ctrl-C (128 + SIGINT): `load` writes its report first.
pub const INTERRUPTED: u8 = 130;

/// The exit code of an error.
pub fn code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(d) = cause.downcast_ref::<DeployError>() {
            match d {
                DeployError::Aws(_) | DeployError::Response(_) => return AWS,
                DeployError::Stack(s) => return stack_code(s),
                // Its cause (a StackError, an AwsError or a template) decides.
                DeployError::Read(_) => continue,
                DeployError::NotEcrImage(_) | DeployError::Input(_) => return INPUT,
                _ => return REFUSED,
            }
        }
        if let Some(s) = cause.downcast_ref::<StackError>() {
            return stack_code(s);
        }
        if cause.downcast_ref::<AwsError>().is_some() {
            return AWS;
        }
        if cause
            .downcast_ref::<crate::shared::DeadlineError>()
            .is_some()
        {
            return WAITED;
        }
    }
    INPUT
}

fn stack_code(s: &StackError) -> u8 {
    match s {
        StackError::NoCredentials(_) | StackError::Aws(_) => AWS,
        _ => INPUT,
    }
}

/// One line: the error, then each cause its text does not already contain; an AWS error's SDK
/// detail is left for `--debug`.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        if cause.downcast_ref::<AwsError>().is_some() {
            break;
        }
    }
    line
}

/// Everything: each cause, and the SDK's context of any AWS error.
pub fn debug(e: &anyhow::Error) -> String {
    let mut out = format!("{e:?}");
    for cause in e.chain() {
        if let Some(a) = cause.downcast_ref::<AwsError>() {
            out.push_str(&format!(
                "\nSDK detail of {}: {}",
                a.operation(),
                a.detail()
            ));
        }
    }
    out
}

pub fn from(code: u8) -> ExitCode {
    ExitCode::from(code)
}
