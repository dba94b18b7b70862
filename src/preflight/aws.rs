//! The AWS edge of `preflight`: the deployed template, its parameters and the live state
//! (what CodeDeploy changed) the check compares with the new template.

use crate::aws::stack::{self, Stack};
use crate::deploy::aws::{primary_task_set, service_state, Clients, Names};
use crate::deploy::DeployError;
use crate::preflight::{nothing_to_protect, LiveState};

/// The live state preflight compares with the template.
pub async fn live_state(c: &Clients, stack: &Stack) -> Result<LiveState, DeployError> {
    let names = Names::from_stack(stack)?;
    let resources = stack::list_stack_resources(&c.cloudformation, &stack.name).await?;
    let svc = service_state(&c.ecs, &names).await?;
    let primary = primary_task_set(&svc);
    Ok(LiveState {
        production_target_group: primary.as_ref().and_then(|(_, tg)| tg.clone()),
        service_task_definition: primary.map(|(td, _)| td),
        physical: resources
            .into_iter()
            .map(|r| (r.logical_id, r.physical_id))
            .collect(),
    })
}

/// What preflight compares the new template with: the deployed template body, its parameter
/// values and the live state; `None` for a stack that does not exist or has nothing to
/// protect ([`crate::preflight::nothing_to_protect`], said through `note`).
pub async fn read_deployed(
    c: &Clients,
    name: &str,
    note: &mut dyn FnMut(String),
) -> Result<Option<Deployed>, DeployError> {
    let Some(stack) = stack::read_stack(&c.cloudformation, name).await? else {
        note(format!(
            "stack {name} does not exist yet: sam deploy creates it"
        ));
        return Ok(None);
    };
    if let Some(why) = nothing_to_protect(&stack.status, stack.outputs.contains_key("ServiceName"))
    {
        note(format!("stack {name} {why}"));
        return Ok(None);
    }
    let body = stack::deployed_template(&c.cloudformation, name).await?;
    let live = live_state(c, &stack).await?;
    Ok(Some(Deployed {
        template_body: body,
        parameters: stack.parameters,
        live,
    }))
}

/// The deployed side of a preflight check.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub template_body: String,
    pub parameters: std::collections::BTreeMap<String, String>,
    pub live: LiveState,
}
