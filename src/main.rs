//! `orderbroker`: the OrderBroker platform command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use orderbroker::calendar::{Calendar, Closed};
use orderbroker::samconfig::{render_pairs, SamConfig};
use orderbroker::tagging::check_template;
use orderbroker::template::Template;
use orderbroker::warmup::{self, Bounds, Forecast, Overrides, Settings};

#[derive(Parser)]
#[command(
    name = "orderbroker",
    version,
    about = "OrderBroker platform tools: trading calendar, warm-up plan, deploy parameters, tagging policy",
    long_about = "OrderBroker platform tools.\n\nRun from the repository root (paths default to ./template.yaml and ./samconfig.toml)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the NYSE sessions in a date range, one `YYYY-MM-DD,HH:MM,HH:MM` line each
    /// (date, open, close; New York local time), oldest first
    Calendar {
        /// First date (inclusive)
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: chrono::NaiveDate,
        /// Last date (inclusive)
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: chrono::NaiveDate,
        #[command(flatten)]
        closures: ClosureArgs,
    },
    /// Print the market warm-up plan for one day, offline: windows, floors and their sources
    Plan(PlanArgs),
    /// Print the ECS AppSpec (YAML) for a CodeDeploy deployment of a task-definition revision:
    /// service, container and port, the capacity-provider strategy (always) and the deployment
    /// gates, from the stack outputs
    Appspec(AppspecArgs),
    /// Roll out a new image through CodeDeploy blue/green: pre-flight (image platform, no
    /// deployment in progress, spike windows, Fargate vCPU quota), register the derived
    /// task-definition revision, create the deployment, and with --wait follow it (and its
    /// rollback) to the end. Exit 0 = succeeded (or created, without --wait); 1 = failed or
    /// rolled back; 2 = refused or an error before anything changed
    Deploy(DeployArgs),
    /// Stop the named (or the in-progress) deployment with automatic rollback and wait until the
    /// previous version serves all production traffic
    Rollback(RollbackArgs),
    /// The deployment in progress, the task sets, running/desired/min/max and the warm-up plan
    Status(StatusArgs),
    /// Refuse a stack update (`sam deploy`) that would revert what CodeDeploy changed (listener
    /// default actions, the service's task definition, target groups) or lands in a spike window
    Preflight(PreflightArgs),
    /// Synthetic trades at a steady rate (the validator's harmless orders, unique idempotency
    /// keys); prints sent / succeeded / failed / dropped, latency and every failure. Exit 1 if
    /// any order failed or was dropped
    Load(LoadArgs),
    /// The warm pool (standby tasks)
    #[command(subcommand)]
    WarmPool(WarmPoolCommand),
    /// Read samconfig.toml: the full `sam deploy` parameter list, the stack tags, the stack name
    #[command(subcommand)]
    Samconfig(SamconfigCommand),
    /// The tagging policy (CostCenter, Project=TradingPlatform, Service=OrderBroker)
    #[command(subcommand)]
    Tags(TagsCommand),
}

#[derive(Args)]
struct ClosureArgs {
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
    fn calendar(&self) -> Result<Calendar> {
        Ok(Calendar::new().with_closures(&self.closures)?)
    }
}

#[derive(Args)]
struct PlanArgs {
    /// The trading day to plan
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: chrono::NaiveDate,
    /// Capacity forecast as `aws application-autoscaling get-predictive-scaling-forecast` prints
    /// it (JSON with CapacityForecast.Timestamps and .Values); without it the configured floor
    #[arg(long, value_name = "FILE")]
    forecast: Option<PathBuf>,
    /// Normal MinCapacity (the template's MinTasks)
    #[arg(long, default_value_t = 3)]
    baseline: u32,
    /// MaxCapacity
    #[arg(long, default_value_t = 30)]
    max: u32,
    /// Operator manual floor
    #[arg(long)]
    manual_floor: Option<u32>,
    /// Operator pause switch
    #[arg(long)]
    paused: bool,
    /// Headroom factor over the forecast or history peak
    #[arg(long, default_value_t = Settings::default().safety_factor)]
    safety_factor: f64,
    /// Floor with neither forecast nor history
    #[arg(long, default_value_t = Settings::default().fallback_floor)]
    fallback_floor: u32,
    /// Print the plan as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    closures: ClosureArgs,
}

#[derive(Args)]
struct AppspecArgs {
    /// Task-definition revision to deploy
    #[arg(long, value_name = "ARN")]
    task_definition: String,
    /// Its CPU architecture (default: the stack's CpuArchitecture output); ARM64 is refused
    /// with a FARGATE_SPOT share
    #[arg(long, value_parser = ["ARM64", "X86_64"])]
    arch: Option<String>,
    /// Stack outputs as JSON (`aws cloudformation describe-stacks` output, or a {key: value}
    /// map); without it, the outputs of the deployed stack
    #[arg(long, value_name = "FILE")]
    outputs: Option<PathBuf>,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Args)]
struct StackArgs {
    /// Stack name (default: stack_name in samconfig.toml)
    #[arg(long, env = "ORDERBROKER_STACK")]
    stack: Option<String>,
    /// Region
    #[arg(long, default_value = "us-east-2", env = "AWS_REGION")]
    region: String,
    /// samconfig file the stack name and parameters come from
    #[arg(long, default_value = "samconfig.toml")]
    samconfig: PathBuf,
    /// samconfig environment
    #[arg(long, default_value = "default")]
    config_env: String,
}

impl StackArgs {
    fn name(&self) -> Result<String> {
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
struct WaitArgs {
    /// Seconds between polls of CodeDeploy
    #[arg(long, default_value_t = 5)]
    poll_seconds: u64,
    /// Stop waiting after this many minutes (the deployment goes on; exit 1)
    #[arg(long, default_value_t = 60)]
    timeout_minutes: u64,
}

#[derive(Args)]
struct DeployArgs {
    /// Image to deploy: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:...
    #[arg(long, value_name = "URI")]
    image: String,
    /// CPU architecture of the new revision (default: the stack's CpuArchitecture output); the
    /// image must have a linux platform for it
    #[arg(long, value_parser = ["ARM64", "X86_64"])]
    arch: Option<String>,
    /// CodeDeploy deployment configuration (default: the deployment group's, canary 10 % / 3 min)
    #[arg(long, value_name = "NAME")]
    config: Option<String>,
    /// Follow the deployment (and its rollback) until it ends
    #[arg(long)]
    wait: bool,
    /// Deploy inside a spike window, or past a failed or unreadable quota check
    #[arg(long)]
    force: bool,
    /// Hotfix while a deployment-group alarm fires: the firing alarms are ignored for this
    /// deployment, the quiet ones stay armed (needs codedeploy:UpdateDeploymentGroup)
    #[arg(long)]
    override_alarms: bool,
    /// Minutes a deployment needs to move traffic: refused when a spike window starts within them
    #[arg(long, default_value_t = 20)]
    window_margin_minutes: i64,
    /// Print the result as JSON on stdout (progress goes to stderr)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    waiting: WaitArgs,
}

#[derive(Args)]
struct RollbackArgs {
    /// Deployment id (default: the one in progress)
    #[arg(long, value_name = "ID")]
    deployment: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    waiting: WaitArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// Print as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Args)]
struct PreflightArgs {
    /// The template about to be deployed
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Extra KEY=VALUE parameter overrides, as given to `orderbroker samconfig overrides`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Minutes a stack update may take: refused when a spike window starts within them
    #[arg(long, default_value_t = 30)]
    window_margin_minutes: i64,
    /// Update anyway (each refusal is still printed)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Args)]
struct LoadArgs {
    /// Listener to load: http(s)://host[:port] (the production listener: stack output ProductionUrl)
    #[arg(long)]
    url: String,
    /// Orders per second
    #[arg(long)]
    rate: f64,
    /// Seconds
    #[arg(long)]
    duration: f64,
    /// Write the full report (every failure and drop) to this JSON file
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Order path (the template's SyntheticOrderPath)
    #[arg(long, default_value = "/orders")]
    path: String,
    /// Per-order timeout: no answer within it = dropped
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Orders waiting for an answer at most (beyond: counted as not sent, the run fails)
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Run inside the VPC through the stack's load-generator function (output
    /// LoadGeneratorFunctionName), in segments; for an internal ALB
    #[arg(long)]
    in_vpc: bool,
    /// Segment length with --in-vpc (the function's timeout is 900 s)
    #[arg(long, default_value_t = 600)]
    segment_seconds: u64,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Subcommand)]
enum WarmPoolCommand {
    /// Run the standby-task model and print N with its reasoning: on a file of inputs
    /// (`--input`, the JSON `--json` prints back as `inputs`), or measured from the account
    Recommend(RecommendArgs),
}

#[derive(Args)]
struct RecommendArgs {
    /// Model inputs as JSON (task_starts, healthy_threshold, health_interval_seconds, load,
    /// per_task_capacity, settings); see events/warm-pool-model-input.json
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cluster", "service"])]
    input: Option<PathBuf>,
    /// ECS cluster (outputs ClusterName), to measure from the account
    #[arg(long, requires = "service")]
    cluster: Option<String>,
    /// ECS service (outputs ServiceName)
    #[arg(long, requires = "cluster")]
    service: Option<String>,
    /// Region
    #[arg(long, default_value = "us-east-2")]
    region: String,
    /// Scaling target CPU % (the template's CpuTargetValue): one task's capacity
    #[arg(long, default_value_t = 60.0)]
    cpu_target: f64,
    /// Target-group healthy threshold and interval (the template uses 2 x 5 s)
    #[arg(long, default_value_t = 2)]
    healthy_threshold: u32,
    #[arg(long, default_value_t = 5)]
    health_interval: u32,
    /// Settings as JSON (min, max, safety_factor, ...), as in the SSM parameter
    #[arg(long, default_value = "{}")]
    settings: String,
    /// Print the recommendation and its inputs as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ConfigArgs {
    /// samconfig file
    #[arg(long, default_value = "samconfig.toml")]
    samconfig: PathBuf,
    /// samconfig environment
    #[arg(long, default_value = "default")]
    config_env: String,
}

#[derive(Subcommand)]
enum SamconfigCommand {
    /// Print the COMPLETE --parameter-overrides value for `sam deploy`: samconfig's overrides,
    /// CostCenter from the stack tags, then each --set (sam replaces, never merges, the list)
    Overrides {
        #[command(flatten)]
        config: ConfigArgs,
        /// Extra KEY=VALUE, added or replacing (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the stack tags as a --tags value
    Tags {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the stack name
    StackName {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum TagsCommand {
    /// Fail (exit 1) when any resource of the template would deploy without the three tags
    Check {
        /// Template to check
        #[arg(default_value = "template.yaml")]
        template: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Ignore samconfig's stack tags: every resource must tag itself
        #[arg(long)]
        without_stack_tags: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orderbroker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Calendar { from, to, closures } => {
            for s in closures.calendar()?.sessions(from, to)? {
                println!(
                    "{},{},{}",
                    s.date,
                    s.open.format("%H:%M"),
                    s.close.format("%H:%M")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => plan(args),
        Command::WarmPool(WarmPoolCommand::Recommend(args)) => recommend(args),
        Command::Appspec(args) => appspec(args),
        Command::Deploy(args) => deploy(args),
        Command::Rollback(args) => rollback(args),
        Command::Status(args) => status(args),
        Command::Preflight(args) => preflight(args),
        Command::Load(args) => load(args),
        Command::Samconfig(cmd) => samconfig(cmd),
        Command::Tags(TagsCommand::Check {
            template,
            config,
            without_stack_tags,
        }) => {
            let t = Template::load(&template)?;
            let stack_tags = if without_stack_tags {
                Vec::new()
            } else {
                SamConfig::load(&config.samconfig, &config.config_env)?.stack_tags()?
            };
            let report = check_template(&t, &stack_tags);
            println!(
                "{}: {} resources tagged, {} not taggable in CloudFormation (left to the tag-enforcer), {} findings",
                template.display(),
                report.compliant.len(),
                report.not_in_template.len(),
                report.findings.len()
            );
            for f in &report.findings {
                println!("  {f}");
            }
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn plan(args: PlanArgs) -> Result<ExitCode> {
    let calendar = args.closures.calendar()?;
    let settings = Settings {
        safety_factor: args.safety_factor,
        fallback_floor: args.fallback_floor,
        ..Settings::default()
    };
    let session = match calendar.closed(args.date)? {
        Some(why) => {
            let why = match why {
                Closed::Weekend => "weekend".to_string(),
                Closed::Holiday(name) => name.to_string(),
                Closed::Closure(reason) => reason,
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"date": args.date, "trading": false, "reason": why, "windows": []})
                );
            } else {
                println!("{}: market closed ({why}): no capacity changes", args.date);
            }
            return Ok(ExitCode::SUCCESS);
        }
        None => calendar
            .session(args.date)?
            .context("a trading day has a session")?,
    };
    let forecast = match &args.forecast {
        Some(path) => Some(read_forecast(path)?),
        None => None,
    };
    let now = orderbroker::calendar::local_instant(args.date, chrono::NaiveTime::MIN)?;
    let overrides = Overrides {
        paused: args.paused,
        manual_floor: args.manual_floor,
    };
    let plan = warmup::plan(&warmup::Inputs {
        now,
        sessions: &[session],
        recent: &[],
        forecast: forecast.as_ref(),
        history: &[],
        bounds: Bounds {
            baseline_min: args.baseline,
            max: args.max,
        },
        overrides: &overrides,
        settings: &settings,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    let tz = orderbroker::calendar::EXCHANGE_TZ;
    let hm = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    println!(
        "{}: open {} close {}{} (New York time)",
        session.date,
        session.open.format("%H:%M"),
        session.close.format("%H:%M"),
        if session.is_early_close() {
            ", early close"
        } else {
            ""
        }
    );
    for w in &plan.windows {
        println!(
            "  {:<5} spike {}-{}: raise MinCapacity to {} at {}, restore {} at {}",
            format!("{:?}", w.window.spike).to_lowercase(),
            hm(w.window.spike_start),
            hm(w.window.spike_end),
            w.floor,
            hm(w.window.raise_at),
            plan.restore_floor,
            hm(w.window.restore_at),
        );
        println!("        because: {}", w.reason);
    }
    for n in &plan.notes {
        println!("  note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A runtime and the SDK configuration (standard credential chain) for one region.
fn aws_for(region: &str) -> Result<(tokio::runtime::Runtime, aws_config::SdkConfig)> {
    let rt = tokio::runtime::Runtime::new()?;
    let sdk = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .load(),
    );
    Ok((rt, sdk))
}

fn appspec(args: AppspecArgs) -> Result<ExitCode> {
    use orderbroker::appspec::{parse_outputs, render};
    let outputs = match &args.outputs {
        Some(path) => parse_outputs(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )?,
        None => {
            let name = args.stack.name()?;
            let (rt, sdk) = aws_for(&args.stack.region)?;
            rt.block_on(orderbroker::deploy_aws::require_stack(
                &aws_sdk_cloudformation::Client::new(&sdk),
                &name,
                &args.stack.region,
            ))?
            .outputs
        }
    };
    let arch = match &args.arch {
        Some(a) => a.clone(),
        None => outputs
            .get("CpuArchitecture")
            .cloned()
            .context("give --arch: the stack has no CpuArchitecture output")?,
    };
    print!("{}", render(&outputs, &args.task_definition, &arch)?);
    Ok(ExitCode::SUCCESS)
}

fn recommend(args: RecommendArgs) -> Result<ExitCode> {
    use orderbroker::warm_pool::{self, ModelInputs};
    use orderbroker::warm_pool_aws::{measure, parse_settings, PoolConfig};
    let inputs: ModelInputs = match (&args.input, &args.cluster, &args.service) {
        (Some(path), _, _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not warm-pool model input", path.display()))?
        }
        (None, Some(cluster), Some(service)) => {
            let settings = parse_settings("--settings", &args.settings)?;
            let cfg = PoolConfig {
                cluster: cluster.clone(),
                service: service.clone(),
                stack: String::new(),
                namespace: String::new(),
                settings_parameter: String::new(),
                safe_default: settings.min,
                per_task_capacity: args.cpu_target,
                healthy_threshold: args.healthy_threshold,
                health_interval_seconds: args.health_interval,
                history_days: 10,
            };
            let (rt, sdk) = aws_for(&args.region)?;
            rt.block_on(async {
                measure(
                    &aws_sdk_ecs::Client::new(&sdk),
                    &aws_sdk_cloudwatch::Client::new(&sdk),
                    &cfg,
                    settings,
                    chrono::Utc::now(),
                )
                .await
            })
            .context("measuring from the account (credentials from the standard chain)")?
        }
        _ => anyhow::bail!(
            "give --input FILE, or --cluster and --service to measure from the account"
        ),
    };
    let r = warm_pool::recommend(&inputs);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"recommendation": r, "inputs": inputs})
            )?
        );
    } else {
        println!("standby tasks N = {}", r.n);
        for line in &r.reasoning {
            println!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_forecast(path: &std::path::Path) -> Result<Forecast> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read forecast {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("forecast {} is not JSON", path.display()))?;
    let cap = &v["CapacityForecast"];
    let stamps = cap["Timestamps"]
        .as_array()
        .with_context(|| format!("{}: no CapacityForecast.Timestamps list", path.display()))?
        .iter()
        .map(|t| {
            let s = t.as_str().context("a timestamp is not a string")?;
            Ok(chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("timestamp {s:?} is not RFC 3339"))?
                .with_timezone(&chrono::Utc))
        })
        .collect::<Result<Vec<_>>>()?;
    let values = cap["Values"]
        .as_array()
        .with_context(|| format!("{}: no CapacityForecast.Values list", path.display()))?
        .iter()
        .map(|v| v.as_f64().context("a forecast value is not a number"))
        .collect::<Result<Vec<_>>>()?;
    Ok(Forecast::from_capacity(&stamps, &values)?)
}

/// `--set KEY=VALUE` arguments.
fn parse_set(set: &[String]) -> Result<Vec<(String, String)>> {
    set.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--set {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn samconfig(cmd: SamconfigCommand) -> Result<ExitCode> {
    match cmd {
        SamconfigCommand::Overrides { config, set } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            let extra = parse_set(&set)?;
            println!("{}", render_pairs(&c.deploy_overrides(&extra)?)?);
        }
        SamconfigCommand::Tags { config } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            println!("{}", render_pairs(&c.stack_tags()?)?);
        }
        SamconfigCommand::StackName { config } => {
            let c = SamConfig::load(&config.samconfig, &config.config_env)?;
            let name = c
                .get_str("stack_name")
                .context("samconfig has no stack_name")?;
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress on the terminal: lines on stdout (stderr with --json); on a terminal, a status line
/// rewritten in place on stderr.
struct Terminal {
    tty: bool,
    to_stderr: bool,
    has_status: bool,
}

impl Terminal {
    fn new(to_stderr: bool) -> Self {
        use std::io::IsTerminal;
        Terminal {
            tty: std::io::stderr().is_terminal(),
            to_stderr,
            has_status: false,
        }
    }
}

impl orderbroker::deploy_aws::Progress for Terminal {
    fn line(&mut self, text: &str) {
        if self.has_status {
            eprint!("\r\x1b[K");
            self.has_status = false;
        }
        let stamp = chrono::Utc::now().format("%H:%M:%SZ");
        if self.to_stderr {
            eprintln!("{stamp} {text}");
        } else {
            println!("{stamp} {text}");
        }
    }
    fn status(&mut self, text: &str) {
        if self.tty {
            use std::io::Write;
            eprint!("\r\x1b[K{text}");
            let _ = std::io::stderr().flush();
            self.has_status = true;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.has_status {
            eprintln!();
        }
    }
}

fn clients_for(
    region: &str,
) -> Result<(tokio::runtime::Runtime, orderbroker::deploy_aws::Clients)> {
    let (rt, sdk) = aws_for(region)?;
    Ok((rt, orderbroker::deploy_aws::Clients::new(&sdk)))
}

fn deploy(args: DeployArgs) -> Result<ExitCode> {
    use orderbroker::deploy::schedule_from_parameters;
    use orderbroker::deploy_aws::{self, DeployRequest};
    let name = args.stack.name()?;
    let (rt, c) = clients_for(&args.stack.region)?;
    let mut out = Terminal::new(args.json);
    let result = rt.block_on(async {
        let stack = deploy_aws::require_stack(&c.cloudformation, &name, &args.stack.region).await?;
        let (calendar, settings) = schedule_from_parameters(&stack.parameters)?;
        let req = DeployRequest {
            arch: args.arch.clone(),
            config: args.config.clone(),
            wait: args.wait,
            force: args.force,
            override_alarms: args.override_alarms,
            margin: chrono::Duration::minutes(args.window_margin_minutes),
            poll: std::time::Duration::from_secs(args.waiting.poll_seconds.max(1)),
            timeout: std::time::Duration::from_secs(args.waiting.timeout_minutes * 60),
            ..DeployRequest::new(args.image.clone(), chrono::Utc::now(), calendar, settings)
        };
        deploy_aws::deploy(&c, &stack, &req, &mut out).await
    })?;
    if let Some(o) = &result.outcome {
        orderbroker::deploy_aws::Progress::line(&mut out, &o.describe());
    }
    drop(out);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(match &result.outcome {
        Some(o) if !o.succeeded() => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn rollback(args: RollbackArgs) -> Result<ExitCode> {
    use orderbroker::deploy_aws::{self, Progress};
    let name = args.stack.name()?;
    let (rt, c) = clients_for(&args.stack.region)?;
    let mut out = Terminal::new(false);
    let r = rt.block_on(async {
        let stack = deploy_aws::require_stack(&c.cloudformation, &name, &args.stack.region).await?;
        deploy_aws::rollback(
            &c,
            &stack,
            args.deployment.clone(),
            std::time::Duration::from_secs(args.waiting.poll_seconds.max(1)),
            std::time::Duration::from_secs(args.waiting.timeout_minutes * 60),
            &mut out,
        )
        .await
    })?;
    out.line(&r.outcome.describe());
    if r.holds_all_traffic {
        out.line(&format!(
            "the previous version serves all production traffic: {}",
            r.serving_task_definition.as_deref().unwrap_or("?")
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        out.line(&format!(
            "NOT CONFIRMED: production task set runs {} (previous: {}); check `orderbroker status`",
            r.serving_task_definition.as_deref().unwrap_or("?"),
            r.previous_task_definition.as_deref().unwrap_or("unknown")
        ));
        Ok(ExitCode::from(1))
    }
}

fn status(args: StatusArgs) -> Result<ExitCode> {
    use orderbroker::deploy_aws;
    let name = args.stack.name()?;
    let (rt, c) = clients_for(&args.stack.region)?;
    let now = chrono::Utc::now();
    let v = rt.block_on(async {
        let stack = deploy_aws::require_stack(&c.cloudformation, &name, &args.stack.region).await?;
        deploy_aws::status(&c, &stack, now, &Settings::default().action_prefix).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", deploy_aws::render_status(&v, now));
    Ok(ExitCode::SUCCESS)
}

fn preflight(args: PreflightArgs) -> Result<ExitCode> {
    use orderbroker::deploy::schedule_from_parameters;
    use orderbroker::deploy_aws;
    use orderbroker::preflight::{check, effective_parameters, Inputs, LiveState};
    let name = args.stack.name()?;
    let new_t = Template::load(&args.template)?;
    let extra = parse_set(&args.set)?;
    let new_overrides: std::collections::BTreeMap<String, String> =
        SamConfig::load(&args.stack.samconfig, &args.stack.config_env)?
            .deploy_overrides(&extra)?
            .into_iter()
            .collect();
    let (calendar, settings) =
        schedule_from_parameters(&effective_parameters(&new_t, &new_overrides))?;
    let (rt, c) = clients_for(&args.stack.region)?;
    let (deployed, live) = rt.block_on(async {
        let Some(stack) = deploy_aws::read_stack(&c.cloudformation, &name).await? else {
            return Ok::<_, orderbroker::deploy::DeployError>((None, LiveState::default()));
        };
        // A stack whose creation failed (or never ran) has no service: CodeDeploy changed
        // nothing yet, so there is nothing to protect.
        if !stack.outputs.contains_key("ServiceName")
            || matches!(
                stack.status.as_str(),
                "ROLLBACK_COMPLETE" | "REVIEW_IN_PROGRESS" | "CREATE_FAILED"
            )
        {
            println!(
                "preflight: note: stack {name} is {} with no service yet: nothing CodeDeploy changed",
                stack.status
            );
            return Ok((None, LiveState::default()));
        }
        let body = deploy_aws::deployed_template(&c.cloudformation, &name).await?;
        let live = deploy_aws::live_state(&c, &stack).await?;
        Ok((Some((body, stack.parameters)), live))
    })?;
    let old = match &deployed {
        Some((body, params)) => Some((
            Template::parse(body).context("the deployed template cannot be read")?,
            params,
        )),
        None => None,
    };
    let report = check(&Inputs {
        new_template: &new_t,
        new_overrides: &new_overrides,
        deployed: old.as_ref().map(|(t, p)| (t, *p)),
        live: &live,
        now: chrono::Utc::now(),
        calendar: &calendar,
        settings: &settings,
        span: chrono::Duration::minutes(args.window_margin_minutes),
    })?;
    for n in &report.notes {
        println!("preflight: note: {n}");
    }
    for r in &report.refusals {
        println!("preflight: REFUSED {}: {}", r.what, r.why);
    }
    if report.passed() {
        println!("preflight: stack {name}: the update is safe to deploy");
        Ok(ExitCode::SUCCESS)
    } else if args.force {
        println!(
            "preflight: --force: deploying despite {} refusal(s)",
            report.refusals.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "preflight: stack {name}: {} refusal(s); fix them or rerun with --force (make deploy PREFLIGHT_FLAGS=--force)",
            report.refusals.len()
        );
        Ok(ExitCode::from(1))
    }
}

fn load(args: LoadArgs) -> Result<ExitCode> {
    use orderbroker::load::{self, LoadRequest};
    let req = LoadRequest {
        url: args.url.clone(),
        rate: args.rate,
        duration_seconds: args.duration,
        path: args.path.clone(),
        timeout_ms: args.timeout_ms,
        max_in_flight: args.max_in_flight,
        run_id: None,
        start_at_ms: None,
    };
    let cfg = req.config()?;
    let run_id = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let report = if args.in_vpc {
        let name = args.stack.name()?;
        let (rt, sdk) = aws_for(&args.stack.region)?;
        rt.block_on(async {
            let cfn = aws_sdk_cloudformation::Client::new(&sdk);
            let stack =
                orderbroker::deploy_aws::require_stack(&cfn, &name, &args.stack.region).await?;
            let function = stack.output("LoadGeneratorFunctionName")?.to_string();
            let lambda = aws_sdk_lambda::Client::new(&sdk);
            let mut say = |l: String| eprintln!("{l}");
            orderbroker::load_aws::run_via_function(
                &lambda,
                &function,
                &LoadRequest {
                    run_id: Some(run_id.clone()),
                    ..req.clone()
                },
                orderbroker::load_aws::Segments {
                    total: cfg.duration,
                    segment: std::time::Duration::from_secs(args.segment_seconds.clamp(10, 840)),
                    lead: orderbroker::load_aws::SEGMENT_LEAD,
                },
                None,
                &mut say,
            )
            .await
            .map_err(anyhow::Error::msg)
        })?
    } else {
        let client = reqwest::Client::builder().build()?;
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(load::run(&client, &cfg, &run_id, None))
    };
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
