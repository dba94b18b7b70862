//! The derived task-definition revision a deployment registers.

use crate::deploy::{oci_arch, DeployError};

/// The new revision: `base` (the stack's task definition: the template's settings) with
/// `container`'s image and the CPU architecture replaced, nothing else changed.
pub fn derive_task_definition(
    base: &aws_sdk_ecs::types::TaskDefinition,
    container: &str,
    image: &str,
    arch: &str,
) -> Result<aws_sdk_ecs::types::TaskDefinition, DeployError> {
    use aws_sdk_ecs::types::{CpuArchitecture, OsFamily, RuntimePlatform};
    let arn = base.task_definition_arn().unwrap_or("?").to_string();
    let mut next = base.clone();
    let defs = next.container_definitions.get_or_insert_with(Vec::new);
    let names: Vec<String> = defs
        .iter()
        .filter_map(|d| d.name().map(str::to_string))
        .collect();
    let def = defs
        .iter_mut()
        .find(|d| d.name() == Some(container))
        .ok_or_else(|| DeployError::TaskDefinition {
            arn: arn.clone(),
            why: format!(
                "no container named {container:?} (it has {}); the stack's ContainerName output names the one behind the load balancer",
                names.join(", ")
            ),
        })?;
    def.image = Some(image.to_string());
    oci_arch(arch)?;
    let os = base
        .runtime_platform()
        .and_then(|p| p.operating_system_family().cloned())
        .unwrap_or(OsFamily::Linux);
    next.runtime_platform = Some(
        RuntimePlatform::builder()
            .cpu_architecture(CpuArchitecture::from(arch.to_ascii_uppercase().as_str()))
            .operating_system_family(os)
            .build(),
    );
    Ok(next)
}
