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

/// A date argument: exactly `YYYY-MM-DD` with a four-digit year, and a real day
/// (`2026-02-29` is not one; `26-02-01` is refused rather than read as the year 26).
pub fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Err(format!(
            "{s:?} is not a date: write YYYY-MM-DD with a four-digit year"
        ));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s} is not a date: no such day in the calendar"))
}

/// The command ran out of its `--command-deadline`.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {0} s (--command-deadline): AWS did not answer every call in time")]
pub struct DeadlineError(pub u64);

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
    /// The stack name, checked against CloudFormation's rule before any call.
    pub fn name(&self) -> Result<String> {
        let name = match &self.stack {
            Some(s) => s.clone(),
            None => SamConfig::load(&self.samconfig, &self.config_env)
                .context("no --stack given and samconfig.toml cannot be read")?
                .get_str("stack_name")
                .context("no --stack and samconfig.toml has no stack_name")?
                .to_string(),
        };
        orderbroker::aws::stack::check_stack_name(&name).with_context(|| match &self.stack {
            Some(_) => "--stack".to_string(),
            None => format!("{} stack_name", self.samconfig.display()),
        })?;
        Ok(name)
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
        // samconfig's region and profile apply to samconfig's own stack, named or not.
        let loaded = SamConfig::load(&self.samconfig, &self.config_env).ok();
        let own = loaded
            .as_ref()
            .and_then(|c| c.get_str("stack_name"))
            .is_some_and(|s| s == name);
        let samconfig = if own { loaded.as_ref() } else { None };
        if !own && self.target.region.is_none() {
            if let Some(r) = loaded.as_ref().and_then(|c| c.get_str("region")) {
                eprintln!(
                    "orderbroker: --stack {name} is not {}'s stack: its region {r} is not used (pass --region to choose one)",
                    self.samconfig.display()
                );
            }
        }
        Ok((
            name,
            resolve(&self.target, samconfig, &self.samconfig).await?,
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
            .map_err(|e| orderbroker::aws::AwsError::sdk("sts:GetCallerIdentity", e));
        let account = match identity {
            Ok(o) => o.account().unwrap_or("?").to_string(),
            Err(e) if e.is_missing_credentials() => {
                if let Some(p) = &place.profile {
                    // A profile that does not exist (or has no credentials) is named as such.
                    return Err(anyhow::Error::new(
                        orderbroker::aws::stack::StackError::NoCredentials(e),
                    )
                    .context(format!(
                        "profile {p} gives no credentials (is it in ~/.aws/config or ~/.aws/credentials, with credentials or a role?)"
                    )));
                }
                return Err(orderbroker::aws::stack::StackError::NoCredentials(e).into());
            }
            // An answer came back but it is not AWS's (a proxy's error page, a wrong
            // endpoint): named by its status, never "cannot be reached".
            Err(e) if e.code().is_none() && e.http_status().is_some() => {
                let status = e.http_status().unwrap_or_default();
                return Err(anyhow::Error::new(e).context(format!(
                    "HTTP {status} from {}: an answer that is not AWS's (a proxy, or a wrong endpoint)",
                    sts_endpoint(&place.region)
                )));
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
            "orderbroker: account {account}, region {} ({}){}, {}",
            place.region,
            place.source,
            name.as_deref()
                .map(|n| format!(", stack {n}"))
                .unwrap_or_default(),
            credentials_source(&place)
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
        // A named profile wins over credentials in the environment, as the AWS CLI's
        // `--profile` does ("Configuration settings and precedence": command line options
        // first); the default chain alone would take AWS_ACCESS_KEY_ID first.
        loader = loader.profile_name(p).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(p)
                .build(),
        );
    }
    loader.load().await
}

/// The endpoint STS was asked at (AWS_ENDPOINT_URL when set).
fn sts_endpoint(region: &str) -> String {
    std::env::var("AWS_ENDPOINT_URL_STS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| format!("https://sts.{region}.amazonaws.com"))
}

/// Where the credentials come from, for the banner.
fn credentials_source(place: &Place) -> String {
    match &place.profile {
        Some(p) => format!("credentials of profile {p}"),
        None if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() => {
            "credentials from the environment (AWS_ACCESS_KEY_ID)".into()
        }
        None => {
            "credentials from the default chain (default profile, SSO, container or instance role)"
                .into()
        }
    }
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

/// What `deploy` and `carry` start from: the stack, and a request with its calendar, settings,
/// declared market events and `now` (the rest of the request are `DeployRequest::new`'s
/// defaults for `image`).
pub async fn deploy_request(
    session: &Session,
    c: &orderbroker::deploy::aws::Clients,
    image: String,
) -> Result<(
    orderbroker::aws::stack::Stack,
    orderbroker::deploy::aws::DeployRequest,
)> {
    let stack =
        orderbroker::aws::stack::require_stack(&c.cloudformation, session.stack(), &session.region)
            .await?;
    let (calendar, settings) = orderbroker::deploy::schedule_from_parameters(&stack.parameters)?;
    let now = chrono::Utc::now();
    let events = declared_events(session, &calendar, now).await;
    let req = orderbroker::deploy::aws::DeployRequest {
        events,
        ..orderbroker::deploy::aws::DeployRequest::new(image, now, calendar, settings)
    };
    Ok((stack, req))
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
