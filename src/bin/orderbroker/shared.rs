//! Arguments several commands share, and the SDK set-up of the AWS commands.

use std::path::PathBuf;
use std::time::Duration;

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

/// Where an AWS command acts: region and profile.
#[derive(Args, Clone, Default)]
pub struct RegionArgs {
    /// Region (default: samconfig.toml's when acting on its stack, else AWS_REGION or the
    /// profile's region)
    #[arg(long)]
    pub region: Option<String>,
    /// AWS profile (default: samconfig.toml's when acting on its stack, else AWS_PROFILE)
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Args)]
pub struct StackArgs {
    /// Stack name (default: stack_name in samconfig.toml)
    #[arg(long, env = "ORDERBROKER_STACK")]
    pub stack: Option<String>,
    #[command(flatten)]
    pub target: RegionArgs,
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

    /// The stack, region and profile this command acts on, with the SDK configuration for
    /// them; prints the account and region on stderr (the banner).
    pub async fn connect(&self) -> Result<Session> {
        let (name, place) = self.place().await?;
        Session::open(place, Some(name)).await
    }

    /// samconfig's full `sam deploy` override list plus `--set` (what `make deploy` passes), as
    /// a map: the parameters `preflight` and `readiness` check.
    pub fn deploy_overrides(
        &self,
        set: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let extra = parse_set(set)?;
        Ok(SamConfig::load(&self.samconfig, &self.config_env)?
            .deploy_overrides(&extra)?
            .into_iter()
            .collect())
    }

    /// The stack name and where it is, without calling AWS.
    pub async fn place(&self) -> Result<(String, Place)> {
        let name = self.name()?;
        let samconfig = if self.stack.is_none() {
            SamConfig::load(&self.samconfig, &self.config_env).ok()
        } else {
            None
        };
        Ok((
            name,
            resolve(&self.target, samconfig.as_ref(), &self.samconfig).await?,
        ))
    }
}

/// A resolved region and profile, and where the region came from.
#[derive(Debug, Clone)]
pub struct Place {
    pub region: String,
    pub profile: Option<String>,
    pub source: String,
}

/// Region precedence (README, "Where a command acts"): `--region` > samconfig's region (when
/// acting on samconfig's stack) > `AWS_REGION` / `AWS_DEFAULT_REGION` > the profile's region.
/// Profile: `--profile` > samconfig's > `AWS_PROFILE`. `AWS_REGION` disagreeing with samconfig
/// is said on stderr.
pub async fn resolve(
    args: &RegionArgs,
    samconfig: Option<&SamConfig>,
    samconfig_path: &std::path::Path,
) -> Result<Place> {
    let profile = args.profile.clone().or_else(|| {
        samconfig
            .and_then(|c| c.get_str("profile"))
            .map(str::to_string)
    });
    if let Some(r) = &args.region {
        return Ok(Place {
            region: r.clone(),
            profile,
            source: "--region".into(),
        });
    }
    if let Some(r) = samconfig.and_then(|c| c.get_str("region")) {
        if let Ok(env) = std::env::var("AWS_REGION") {
            if env != r {
                eprintln!(
                    "orderbroker: AWS_REGION={env} ignored: {} deploys this stack to {r} (pass --region to act elsewhere)",
                    samconfig_path.display()
                );
            }
        }
        return Ok(Place {
            region: r.to_string(),
            profile,
            source: samconfig_path.display().to_string(),
        });
    }
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(p) = &profile {
        chain = chain.profile_name(p);
    }
    match chain.build().region().await {
        Some(r) => Ok(Place {
            region: r.to_string(),
            profile,
            source: "AWS_REGION or the profile".into(),
        }),
        None => {
            anyhow::bail!("no region: pass --region, set AWS_REGION, or give the profile a region")
        }
    }
}

/// An SDK configuration for one place, its account known.
pub struct Session {
    pub name: Option<String>,
    pub region: String,
    /// The account STS named for these credentials.
    pub account: String,
    pub sdk: aws_config::SdkConfig,
}

impl Session {
    /// Builds the SDK configuration (with the CLI's timeouts), asks STS who we are and prints
    /// `orderbroker: account A, region R (source)[, stack S]` on stderr.
    pub async fn open(place: Place, name: Option<String>) -> Result<Self> {
        let sdk = sdk_for(&place).await;
        let identity = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| orderbroker::aws::AwsError::new("sts:GetCallerIdentity", e));
        let account = match identity {
            Ok(o) => o.account().unwrap_or("?").to_string(),
            Err(e) if e.is_missing_credentials() => {
                return Err(orderbroker::aws::stack::StackError::NoCredentials(e).into())
            }
            Err(e) if e.code().is_none() => {
                let region = place.region.clone();
                return Err(anyhow::Error::new(e).context(format!(
                    "AWS cannot be reached in {region} (network, proxy or endpoint; each call is bounded by --aws-timeout)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        eprintln!(
            "orderbroker: account {account}, region {} ({}){}",
            place.region,
            place.source,
            name.as_deref()
                .map(|n| format!(", stack {n}"))
                .unwrap_or_default()
        );
        Ok(Session {
            name,
            region: place.region,
            account,
            sdk,
        })
    }

    /// The stack name (commands that act on a stack always have one).
    pub fn stack(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// The CLI's bounds on every AWS call (`--aws-timeout` sets the operation bound; the others
/// follow from it): connect 3 s, each attempt 10 s, the whole operation with its retries 30 s.
pub struct Timeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
}

static OPERATION_TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// Default bound of one AWS operation, retries included.
pub const OPERATION_TIMEOUT_SECONDS: u64 = 30;
/// Default bound of one attempt.
pub const ATTEMPT_TIMEOUT_SECONDS: u64 = 10;
/// Default bound of a TCP+TLS connect.
pub const CONNECT_TIMEOUT_SECONDS: u64 = 3;

/// Sets the operation bound for this process (`--aws-timeout`); call once, before any SDK use.
pub fn set_operation_timeout(seconds: u64) {
    let _ = OPERATION_TIMEOUT.set(Duration::from_secs(seconds));
}

pub fn timeouts() -> Timeouts {
    let operation = *OPERATION_TIMEOUT
        .get()
        .unwrap_or(&Duration::from_secs(OPERATION_TIMEOUT_SECONDS));
    Timeouts {
        connect: Duration::from_secs(CONNECT_TIMEOUT_SECONDS).min(operation),
        attempt: Duration::from_secs(ATTEMPT_TIMEOUT_SECONDS).min(operation),
        operation,
    }
}

async fn sdk_for(place: &Place) -> aws_config::SdkConfig {
    let t = timeouts();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(place.region.clone()))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(t.connect)
                .read_timeout(t.attempt)
                .operation_attempt_timeout(t.attempt)
                .operation_timeout(t.operation)
                .build(),
        );
    if let Some(p) = &place.profile {
        loader = loader.profile_name(p);
    }
    loader.load().await
}

#[derive(Args)]
pub struct WaitArgs {
    /// Seconds between polls of CodeDeploy (1-300)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub poll_seconds: u64,
    /// Stop waiting after this many minutes, 1-1440 (the deployment goes on; exit 4)
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1440))]
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
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .with_context(|| format!("--set {kv:?}: expected KEY=VALUE with a non-empty KEY"))
        })
        .collect()
}

/// The deploy commands' clients for one session.
pub fn clients(session: &Session) -> orderbroker::deploy::aws::Clients {
    orderbroker::deploy::aws::Clients::new(&session.sdk)
}

/// The stack's declared market events (its warm-up overrides parameter), for the spike-window
/// checks of `deploy` and `preflight`. Unreadable = none, said on stderr: the open and close
/// windows are still checked.
pub async fn declared_events(
    session: &Session,
    calendar: &Calendar,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<orderbroker::warmup::events::Event> {
    let ssm = aws_sdk_ssm::Client::new(&session.sdk);
    match orderbroker::warmup::aws::declared_events(&ssm, session.stack(), calendar, now).await {
        Ok((events, skipped)) => {
            for why in skipped {
                eprintln!("orderbroker: warning: declared event left out: {why}");
            }
            events
        }
        Err(e) => {
            eprintln!(
                "orderbroker: warning: declared market events not read ({e}): only the open and close windows are checked"
            );
            Vec::new()
        }
    }
}
