//! CloudFormation and SAM: the template as CloudFormation reads it, samconfig.toml, and the
//! custom-resource protocol.

pub mod custom_resource;
pub mod resolve;
pub mod samconfig;
pub mod template;
