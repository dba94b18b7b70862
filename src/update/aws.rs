//! The deployed side of an update plan read from a stack: the template as CloudFormation
//! processed it (GetTemplate, TemplateStage Processed: after the SAM transform), its parameter
//! values (DescribeStacks; an SSM-typed parameter's resolved value) and its resources' physical
//! ids (ListStackResources), so a `Ref` resolves to what the stack has.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::TemplateStage;

use crate::aws::stack::{self, Stack, StackError};
use crate::cfn::template::{Template, TemplateError};

/// What a stack has deployed.
#[derive(Debug, Clone)]
pub struct DeployedStack {
    pub stack: Stack,
    pub template: Template,
    pub physical: BTreeMap<String, String>,
}

/// Why the deployed side could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    // Not transparent: the StackError / AwsError stays in the source chain (exit codes).
    #[error("{0}")]
    Stack(#[from] StackError),
    #[error("{0}")]
    Aws(#[from] crate::aws::AwsError),
    #[error("the deployed (processed) template of stack {stack}: {source}")]
    Template {
        stack: String,
        #[source]
        source: TemplateError,
    },
}

/// The deployed side; `None` when the stack does not exist.
pub async fn read(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<Option<DeployedStack>, ReadError> {
    let Some(stack) = stack::read_stack(cfn, name).await? else {
        return Ok(None);
    };
    let body = stack::deployed_template(cfn, name, TemplateStage::Processed).await?;
    let template = Template::parse(&body).map_err(|source| ReadError::Template {
        stack: name.to_string(),
        source,
    })?;
    let physical = stack::list_stack_resources(cfn, name)
        .await?
        .into_iter()
        .map(|r| (r.logical_id, r.physical_id))
        .collect();
    Ok(Some(DeployedStack {
        stack,
        template,
        physical,
    }))
}
