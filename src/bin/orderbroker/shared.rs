//! Arguments several commands share, and the SDK set-up of the AWS commands.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use orderbroker::calendar::Calendar;
use orderbroker::cfn::samconfig::SamConfig;

#[derive(Args)]
pub struct ClosureArgs {
    /// Extra market closures (comma-separated YYYY-MM-DD), as the MarketClosures parameter
    #[arg(
        long,
        value_name = "DATES",
        default_value = "",
        env = "MARKET_CLOSURES"
    )]
    closures: String,
}

impl ClosureArgs {
    pub fn calendar(&self) -> Result<Calendar> {
        Ok(Calendar::new().with_closures(&self.closures)?)
    }
}

#[derive(Args)]
pub struct StackArgs {
    /// Stack name (default: stack_name in samconfig.toml)
    #[arg(long, env = "ORDERBROKER_STACK")]
    pub stack: Option<String>,
    /// Region
    #[arg(long, default_value = "us-east-2", env = "AWS_REGION")]
    pub region: String,
    /// samconfig file the stack name and parameters come from
    #[arg(long, default_value = "samconfig.toml")]
    pub samconfig: PathBuf,
    /// samconfig environment
    #[arg(long, default_value = "default")]
    pub config_env: String,
}

impl StackArgs {
    pub fn name(&self) -> Result<String> {
        match &self.stack {
            Some(s) => Ok(s.clone()),
            None => Ok(SamConfig::load(&self.samconfig, &self.config_env)
                .context("no --stack given and samconfig.toml cannot be read")?
                .get_str("stack_name")
                .context("no --stack and samconfig.toml has no stack_name")?
                .to_string()),
        }
    }
}

#[derive(Args)]
pub struct WaitArgs {
    /// Seconds between polls of CodeDeploy
    #[arg(long, default_value_t = 5)]
    pub poll_seconds: u64,
    /// Stop waiting after this many minutes (the deployment goes on; exit 1)
    #[arg(long, default_value_t = 60)]
    pub timeout_minutes: u64,
}

#[derive(Args)]
pub struct ConfigArgs {
    /// samconfig file
    #[arg(long, default_value = "samconfig.toml")]
    pub samconfig: PathBuf,
    /// samconfig environment
    #[arg(long, default_value = "default")]
    pub config_env: String,
}

impl WaitArgs {
    pub fn poll(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.poll_seconds.max(1))
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_minutes * 60)
    }
}

/// `--set KEY=VALUE` arguments.
pub fn parse_set(set: &[String]) -> Result<Vec<(String, String)>> {
    set.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--set {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// The SDK configuration (standard credential chain) for one region.
pub async fn sdk(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .load()
        .await
}

/// The deploy commands' clients for one region.
pub async fn clients(region: &str) -> orderbroker::deploy::aws::Clients {
    orderbroker::deploy::aws::Clients::new(&sdk(region).await)
}
