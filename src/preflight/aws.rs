//! The AWS edge of `preflight`: the deployed stack (its processed template, parameters and
//! physical ids, [`crate::update::aws`]), what CodeDeploy changed (which target group and
//! revision the PRIMARY task set has) and the deployment in progress.

use crate::deploy::aws::{active_deployment, primary_task_set, service_state, Clients, Names};
use crate::deploy::DeployError;
use crate::preflight::{nothing_to_protect, LiveState};
use crate::update::aws::DeployedStack;

/// What preflight compares the new template with.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub stack: DeployedStack,
    pub live: LiveState,
    /// The deployment in progress (id, status).
    pub in_progress: Option<(String, String)>,
}

/// The deployed side; `None` for a stack that does not exist or has nothing to protect
/// ([`nothing_to_protect`], said through `note`).
pub async fn read_deployed(
    c: &Clients,
    name: &str,
    note: &mut dyn FnMut(String),
) -> Result<Option<Deployed>, DeployError> {
    let Some(stack) = crate::update::aws::read(&c.cloudformation, name).await? else {
        note(format!(
            "stack {name} does not exist yet: sam deploy creates it"
        ));
        return Ok(None);
    };
    if let Some(why) = nothing_to_protect(
        &stack.stack.status,
        stack.stack.outputs.contains_key("ServiceName"),
    ) {
        note(format!("stack {name} {why}"));
        return Ok(None);
    }
    let names = Names::from_stack(&stack.stack)?;
    let svc = service_state(&c.ecs, &names).await?;
    let primary = primary_task_set(&svc);
    let in_progress = active_deployment(&c.codedeploy, &names).await?;
    Ok(Some(Deployed {
        live: LiveState {
            production_target_group: primary.as_ref().and_then(|(_, tg)| tg.clone()),
            service_task_definition: primary.map(|(td, _)| td),
        },
        stack,
        in_progress,
    }))
}
