//! The derived task-definition revision a deployment registers.

use crate::deploy::{oci_arch, DeployError};

/// The new revision: the current one with `container`'s image and the CPU architecture replaced,
/// nothing else changed.
pub fn derive_task_definition(
    current: &aws_sdk_ecs::types::TaskDefinition,
    container: &str,
    image: &str,
    arch: &str,
) -> Result<aws_sdk_ecs::types::TaskDefinition, DeployError> {
    use aws_sdk_ecs::types::{CpuArchitecture, OsFamily, RuntimePlatform};
    let arn = current.task_definition_arn().unwrap_or("?").to_string();
    let mut next = current.clone();
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
    apply_application_requirements(def);
    oci_arch(arch)?;
    let os = current
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

/// The service container's settings every revision carries, whatever the revision it is derived
/// from (a stack deployed before them only gets them through a deployment: its task definition
/// is frozen to stack updates). template.yaml has the same values; a template test keeps them
/// in step.
/// - `HTTP_IDLE_TIMEOUT_SECONDS`: the app keeps idle keep-alive connections open longer than the
///   ALB's 60 s idle timeout, or the ALB answers 502 intermittently (ALB docs, "Connection idle
///   timeout").
/// - `StopTimeout`: after SIGTERM the JVM finishes accepted work within it; a rollback waits it
///   out for a bad image that ignores SIGTERM (src/timing/rollback.rs).
pub const APP_IDLE_TIMEOUT_SECONDS: u32 = 75;
pub const STOP_TIMEOUT_SECONDS: i32 = 30;

fn apply_application_requirements(def: &mut aws_sdk_ecs::types::ContainerDefinition) {
    use aws_sdk_ecs::types::KeyValuePair;
    let env = def.environment.get_or_insert_with(Vec::new);
    env.retain(|kv| kv.name() != Some("HTTP_IDLE_TIMEOUT_SECONDS"));
    env.push(
        KeyValuePair::builder()
            .name("HTTP_IDLE_TIMEOUT_SECONDS")
            .value(APP_IDLE_TIMEOUT_SECONDS.to_string())
            .build(),
    );
    def.stop_timeout = Some(STOP_TIMEOUT_SECONDS);
}
