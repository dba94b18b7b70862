//! The market warm-up's AWS edge: read the target, forecast, history and overrides; write the
//! plan as one-shot scheduled actions; apply the current window's floor; publish coverage.
//!
//! The decisions are all in [`crate::warmup`]; this module only moves data in and out.

use aws_sdk_applicationautoscaling::types::{
    ScalableDimension, ScalableTargetAction, ServiceNamespace,
};
use aws_sdk_cloudwatch::types::StandardUnit;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::{from_smithy, to_smithy, AwsError, AwsResultExt};
use crate::calendar::{Calendar, CalendarError, EXCHANGE_TZ};
use crate::warmup::{
    self, next_spike_covered, reconcile, Bounds, ExistingAction, Forecast, Overrides, PlanError,
    Sample, Settings, Window,
};

/// Metric namespace and names the warm-up publishes.
pub const COVERAGE_METRIC: &str = "NextSpikeCovered";
/// Declared events skipped in a run (a non-trading day, a bad time or floor): each also a
/// warning in the report; the other events and the rest of the plan still apply.
pub const EVENTS_SKIPPED_METRIC: &str = "EventsSkipped";

/// What can go wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum WarmupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("operator overrides in {parameter} are not valid JSON of the form {{\"paused\": bool, \"manual_floor\": n, \"events\": [...]}}: {message}")]
    Overrides { parameter: String, message: String },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    // Not transparent: the AwsError itself stays in the source chain (exit code 3).
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("run finished with {} failed change(s): {}", .0.len(), .0.join("; "))]
    Partial(Vec<String>),
}

/// Settings from the function's environment (all set by the template).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupConfig {
    /// `service/<cluster>/<service>`
    pub resource_id: String,
    pub predictive_policy: String,
    pub cluster: String,
    pub service: String,
    pub stack: String,
    pub metrics_namespace: String,
    pub overrides_parameter: String,
    pub baseline_min: u32,
    pub closures: String,
    pub settings: Settings,
    /// The ALB capacity reservation, when enabled (`ALB_RESERVATION_ENABLED=true`).
    pub reservation: Option<ReservationConfig>,
}

impl WarmupConfig {
    /// Reads the configuration through `get` (the process environment in the function).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, WarmupError> {
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| WarmupError::Config(format!("{k} is not set")))
        };
        fn num<T: std::str::FromStr>(
            k: &str,
            v: Option<String>,
            default: T,
        ) -> Result<T, WarmupError> {
            match v.filter(|s| !s.trim().is_empty()) {
                None => Ok(default),
                Some(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| WarmupError::Config(format!("{k}={s:?} is not a number"))),
            }
        }
        let d = Settings::default();
        let settings = Settings {
            lead_minutes: num("LEAD_MINUTES", get("LEAD_MINUTES"), d.lead_minutes)?,
            task_start_seconds: num(
                "TASK_START_SECONDS",
                get("TASK_START_SECONDS"),
                d.task_start_seconds,
            )?,
            safety_factor: num("SAFETY_FACTOR", get("SAFETY_FACTOR"), d.safety_factor)?,
            fallback_floor: num("FALLBACK_FLOOR", get("FALLBACK_FLOOR"), d.fallback_floor)?,
            horizon_sessions: num(
                "HORIZON_SESSIONS",
                get("HORIZON_SESSIONS"),
                d.horizon_sessions,
            )?,
            ..d
        };
        let resource_id = req("SCALABLE_RESOURCE_ID")?;
        let parts: Vec<&str> = resource_id.split('/').collect();
        if parts.len() != 3 || parts[0] != "service" || parts[1].is_empty() || parts[2].is_empty() {
            return Err(WarmupError::Config(format!(
                "SCALABLE_RESOURCE_ID={resource_id:?} is not service/<cluster>/<service>"
            )));
        }
        let reservation = ReservationConfig::from_env(&get, settings.safety_factor)?;
        Ok(WarmupConfig {
            reservation,
            cluster: parts[1].to_string(),
            service: parts[2].to_string(),
            resource_id,
            predictive_policy: req("PREDICTIVE_POLICY_NAME")?,
            stack: req("STACK_NAME")?,
            metrics_namespace: get("METRICS_NAMESPACE")
                .unwrap_or_else(|| "OrderBroker/WarmUp".into()),
            overrides_parameter: req("OVERRIDES_PARAMETER")?,
            baseline_min: num("BASELINE_MIN_TASKS", Some(req("BASELINE_MIN_TASKS")?), 0)?,
            closures: get("MARKET_CLOSURES").unwrap_or_default(),
            settings,
        })
    }
}

/// The payload the schedules (and `make deploy`) send. Anything else in it is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupRequest {
    /// Who asked: `hourly`, `in-session`, `deploy`, `operator`.
    #[serde(default)]
    pub trigger: Option<String>,
    /// Plan and report, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The SDK clients a run uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// The ALB capacity reservation (used only when enabled).
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

/// What a run did (the function's result and its log line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub trigger: Option<String>,
    pub dry_run: bool,
    pub paused: bool,
    pub min_capacity_before: u32,
    pub floor_now: u32,
    pub max_capacity: u32,
    pub forecast: String,
    pub history_samples: usize,
    pub put: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: usize,
    pub next_spike_covered: bool,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
    /// Declared events skipped, each with why.
    pub events_skipped: Vec<String>,
    /// The ALB capacity reservation step, when enabled.
    pub reservation: Option<ReservationReport>,
}

/// One warm-up run at `now`.
pub async fn run(
    clients: &Clients,
    cfg: &WarmupConfig,
    request: &WarmupRequest,
    now: DateTime<Utc>,
) -> Result<RunReport, WarmupError> {
    let aas = &clients.autoscaling;
    let calendar = Calendar::new().with_closures(&cfg.closures)?;
    let mut report = RunReport {
        trigger: request.trigger.clone(),
        dry_run: request.dry_run,
        ..RunReport::default()
    };

    let overrides = read_overrides(&clients.ssm, &cfg.overrides_parameter).await?;
    let ahead = calendar.upcoming(now, cfg.settings.horizon_sessions)?;
    let (events, skipped) = warmup::events::plan_events(
        &calendar,
        &ahead,
        &overrides.events,
        crate::calendar::local_date(now),
    )?;
    for why in &skipped {
        tracing::warn!(event = %why, "declared market event skipped");
        report.notes.push(format!("WARNING: event skipped: {why}"));
    }
    report.events_skipped = skipped;
    // The per-minute reservation check and the deadline check run only the reservation step.
    let trigger = request.trigger.as_deref();
    if matches!(trigger, Some("reservation") | Some("reservation-deadline")) {
        let Some(rc) = &cfg.reservation else {
            report
                .notes
                .push("the ALB reservation is not enabled: nothing to check".into());
            return Ok(report);
        };
        let mode = StepMode {
            dry_run: request.dry_run,
            deadline_check: trigger == Some("reservation-deadline"),
        };
        let r = reserve(clients, cfg, rc, &calendar, &events, now, mode).await;
        report.errors.extend(r.errors.iter().cloned());
        report.reservation = Some(r);
        return if report.errors.is_empty() {
            Ok(report)
        } else {
            Err(WarmupError::Partial(report.errors.clone()))
        };
    }

    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_ids(&cfg.resource_id)
        .send()
        .await
        .aws("DescribeScalableTargets")?;
    let target = targets.scalable_targets().first().ok_or_else(|| {
        WarmupError::Config(format!(
            "no scalable target {} is registered",
            cfg.resource_id
        ))
    })?;
    let current_min = u32::try_from(target.min_capacity()).unwrap_or(0);
    let max = u32::try_from(target.max_capacity()).unwrap_or(0);
    report.min_capacity_before = current_min;
    report.max_capacity = max;

    let forecast = match aas
        .get_predictive_scaling_forecast()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&cfg.resource_id)
        .policy_name(&cfg.predictive_policy)
        .start_time(to_smithy(now))
        .end_time(to_smithy(now + Duration::hours(48)))
        .send()
        .await
    {
        Ok(out) => match out.capacity_forecast() {
            Some(cap) if !cap.timestamps().is_empty() => {
                let stamps: Vec<_> = cap.timestamps().iter().filter_map(from_smithy).collect();
                match Forecast::from_capacity(&stamps, cap.values()) {
                    Ok(f) => {
                        report.forecast = format!("{} hourly points", f.points.len());
                        Some(f)
                    }
                    Err(e) => {
                        report.forecast = format!("unusable forecast: {e}");
                        None
                    }
                }
            }
            _ => {
                report.forecast = "no forecast yet (predictive scaling needs 24 h of data)".into();
                None
            }
        },
        Err(e) => {
            report.forecast = format!(
                "forecast unavailable: {}",
                AwsError::new("GetPredictiveScalingForecast", e)
            );
            None
        }
    };

    let recent = calendar.recent(now, 10)?;
    let history = match recent.last() {
        Some(oldest) => {
            match read_history(
                &clients.cloudwatch,
                cfg,
                oldest.open_at() - Duration::hours(1),
                now,
            )
            .await
            {
                Ok(h) => h,
                Err(e) => {
                    report.notes.push(format!("history unavailable: {e}"));
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    report.history_samples = history.len();

    let plan = warmup::plan(&warmup::Inputs {
        now,
        sessions: &ahead,
        recent: &recent,
        forecast: forecast.as_ref(),
        history: &history,
        bounds: Bounds {
            baseline_min: cfg.baseline_min.min(max),
            max,
        },
        overrides: &overrides,
        settings: &cfg.settings,
        events: &events,
    })?;
    report.paused = plan.paused;
    report.floor_now = plan.floor_now;
    report.notes.extend(plan.notes.iter().cloned());
    report.notes.extend(plan.windows.iter().take(2).map(|w| {
        format!(
            "{} {:?}: floor {} ({})",
            w.window.session, w.window.spike, w.floor, w.reason
        )
    }));

    let existing = list_actions(aas, cfg).await?;
    let changes = reconcile(&cfg.settings.action_prefix, &existing, &plan.actions);
    report.unchanged = changes.unchanged;
    let mut in_place: Vec<String> = existing.iter().map(|e| e.name.clone()).collect();

    if request.dry_run {
        report.put = changes.put.iter().map(|a| a.name.clone()).collect();
        report.deleted = changes.delete.clone();
        report.next_spike_covered = next_spike_covered(&plan, &in_place);
        return Ok(report);
    }

    for name in &changes.delete {
        match aas
            .delete_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&cfg.resource_id)
            .scheduled_action_name(name)
            .send()
            .await
        {
            Ok(_) => {
                in_place.retain(|n| n != name);
                report.deleted.push(name.clone());
            }
            Err(e) => report
                .errors
                .push(AwsError::new("DeleteScheduledAction", e).to_string()),
        }
    }
    for action in &changes.put {
        match aas
            .put_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&cfg.resource_id)
            .scheduled_action_name(&action.name)
            .schedule(action.schedule())
            .timezone(EXCHANGE_TZ.name())
            .scalable_target_action(
                ScalableTargetAction::builder()
                    .min_capacity(i32::try_from(action.min_capacity).unwrap_or(i32::MAX))
                    .build(),
            )
            .send()
            .await
        {
            Ok(_) => {
                if !in_place.contains(&action.name) {
                    in_place.push(action.name.clone());
                }
                report.put.push(action.name.clone());
            }
            Err(e) => report.errors.push(format!(
                "{}: {}",
                action.name,
                AwsError::new("PutScheduledAction", e)
            )),
        }
    }

    // A run inside a window applies its floor now; outside, it re-asserts the normal floor
    // (a stack update mid-session resets MinCapacity to the template's value).
    if plan.floor_now != current_min {
        if let Err(e) = aas
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&cfg.resource_id)
            .min_capacity(i32::try_from(plan.floor_now).unwrap_or(i32::MAX))
            .send()
            .await
        {
            report
                .errors
                .push(AwsError::new("RegisterScalableTarget", e).to_string());
        }
    }

    report.next_spike_covered = next_spike_covered(&plan, &in_place);
    if let Some(rc) = &cfg.reservation {
        let r = reserve(
            clients,
            cfg,
            rc,
            &calendar,
            &events,
            now,
            StepMode::default(),
        )
        .await;
        // With the reservation enabled, the next spike is covered only when it is ready too.
        report.next_spike_covered &= r.ready;
        report.errors.extend(r.errors.iter().cloned());
        report.reservation = Some(r);
    }
    if let Err(e) = publish_coverage(
        &clients.cloudwatch,
        cfg,
        report.next_spike_covered,
        report.events_skipped.len(),
    )
    .await
    {
        report.errors.push(e.to_string());
    }
    if report.errors.is_empty() {
        Ok(report)
    } else {
        Err(WarmupError::Partial(report.errors.clone()))
    }
}

async fn read_overrides(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Overrides, WarmupError> {
    let out = ssm
        .get_parameter()
        .name(parameter)
        .send()
        .await
        .aws("GetParameter")?;
    let text = out
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or("{}")
        .trim();
    parse_overrides(parameter, text)
}

/// The declared market events of a stack's overrides parameter (`/<stack>/warmup/overrides`)
/// for `deploy` and `preflight`: the valid ones of today and tomorrow, and why each other one
/// was left out.
pub async fn declared_events(
    ssm: &aws_sdk_ssm::Client,
    stack: &str,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Result<(Vec<warmup::events::Event>, Vec<String>), WarmupError> {
    let parameter = format!("/{stack}/warmup/overrides");
    let overrides = read_overrides(ssm, &parameter).await?;
    let today = crate::calendar::local_date(now);
    let sessions = calendar.sessions(today, today + chrono::Duration::days(1))?;
    let (events, skipped) =
        warmup::events::plan_events(calendar, &sessions, &overrides.events, today)?;
    // Only the declared ones: the recurring ones lie inside the close window already.
    let declared = events
        .into_iter()
        .filter(|e| e.kind == warmup::events::EventKind::Declared)
        .collect();
    Ok((declared, skipped))
}

/// The overrides document: `{}`, `{"paused": true}`, `{"manual_floor": 12}`.
pub fn parse_overrides(parameter: &str, text: &str) -> Result<Overrides, WarmupError> {
    serde_json::from_str(if text.is_empty() { "{}" } else { text }).map_err(|e| {
        WarmupError::Overrides {
            parameter: parameter.to_string(),
            message: e.to_string(),
        }
    })
}

async fn list_actions(
    aas: &aws_sdk_applicationautoscaling::Client,
    cfg: &WarmupConfig,
) -> Result<Vec<ExistingAction>, WarmupError> {
    let mut pages = aas
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&cfg.resource_id)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for a in page.aws("DescribeScheduledActions")?.scheduled_actions() {
            out.push(ExistingAction {
                name: a.scheduled_action_name().to_string(),
                schedule: a.schedule().to_string(),
                timezone: a.timezone().map(str::to_string),
                min_capacity: a
                    .scalable_target_action()
                    .and_then(|t| t.min_capacity())
                    .and_then(|m| u32::try_from(m).ok()),
            });
        }
    }
    Ok(out)
}

async fn read_history(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &WarmupConfig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Sample>, WarmupError> {
    let query =
        crate::aws::cloudwatch::running_tasks_query(&cfg.cluster, &cfg.service, 300, "Maximum");
    let points = crate::aws::cloudwatch::metric_series(cw, vec![query], start, end).await?;
    Ok(points
        .into_iter()
        .map(|(at, running)| Sample { at, running })
        .collect())
}

async fn publish_coverage(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &WarmupConfig,
    covered: bool,
    skipped: usize,
) -> Result<(), WarmupError> {
    let value = if covered { 1.0 } else { 0.0 };
    crate::aws::cloudwatch::put_stack_metrics(
        cw,
        &cfg.metrics_namespace,
        &cfg.stack,
        &[
            (COVERAGE_METRIC, value, StandardUnit::Count),
            (EVENTS_SKIPPED_METRIC, skipped as f64, StandardUnit::Count),
        ],
    )
    .await
    .map_err(WarmupError::from)
}

/// The ALB capacity reservation's configuration (`ALB_RESERVATION_*`, set by the template).
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationConfig {
    pub load_balancer_arn: String,
    /// The warm-up's record of what it requested (`{"units": n, "at": "..."}` or `{}`).
    pub record_parameter: String,
    pub settings: warmup::reservation::ReservationSettings,
    /// Recent sessions whose windows size it.
    pub history_sessions: usize,
}

impl ReservationConfig {
    /// `None` unless `ALB_RESERVATION_ENABLED=true`.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        safety_factor: f64,
    ) -> Result<Option<Self>, WarmupError> {
        if get("ALB_RESERVATION_ENABLED").as_deref().map(str::trim) != Some("true") {
            return Ok(None);
        }
        let req = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| WarmupError::Config(format!("{k} is not set")))
        };
        let num = |k: &str, default: i64| -> Result<i64, WarmupError> {
            match get(k).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| WarmupError::Config(format!("{k}={v:?} is not a number"))),
            }
        };
        let d = warmup::reservation::ReservationSettings::default();
        let lead = num("ALB_RESERVATION_LEAD_MINUTES", d.lead_minutes)?;
        let floor = num("ALB_RESERVATION_FLOOR_UNITS", i64::from(d.floor_units))?;
        if !(0..=720).contains(&lead) || !(0..=100_000).contains(&floor) {
            return Err(WarmupError::Config(format!(
                "ALB_RESERVATION_LEAD_MINUTES={lead} (0-720) or ALB_RESERVATION_FLOOR_UNITS={floor} (0-100000) out of range"
            )));
        }
        Ok(Some(ReservationConfig {
            load_balancer_arn: req("LOAD_BALANCER_ARN")?,
            record_parameter: req("ALB_RESERVATION_RECORD_PARAMETER")?,
            settings: warmup::reservation::ReservationSettings {
                enabled: true,
                lead_minutes: lead,
                floor_units: floor as u32,
                safety_factor,
                keep_decreases: d.keep_decreases,
            },
            history_sessions: 10,
        }))
    }
}

/// What the reservation step saw and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReservationReport {
    pub observed: warmup::reservation::Observed,
    pub target: Option<u32>,
    pub sized_by: String,
    pub decision: Option<warmup::reservation::Decision>,
    pub ready: bool,
    /// Set by the deadline check: the reservation was not ready at the deadline.
    pub deadline_missed: Option<bool>,
    pub errors: Vec<String>,
}

/// `ReservationReady`: 1 ready for the next spike (or outside the needed span), 0 not.
pub const RESERVATION_READY_METRIC: &str = "ReservationReady";
/// Published by the deadline check only: 1 when not ready at the deadline (the paging alarm).
pub const RESERVATION_DEADLINE_METRIC: &str = "ReservationDeadlineMissed";

fn zone_state(
    s: Option<&aws_sdk_elasticloadbalancingv2::types::CapacityReservationStatus>,
) -> (warmup::reservation::ZoneState, Option<String>) {
    use aws_sdk_elasticloadbalancingv2::types::CapacityReservationStateEnum as E;
    use warmup::reservation::ZoneState;
    let reason = s.and_then(|s| s.reason()).map(str::to_string);
    let state = match s.and_then(|s| s.code()) {
        Some(E::Pending) => ZoneState::Pending,
        Some(E::Provisioned) => ZoneState::Provisioned,
        Some(E::Failed) => ZoneState::Failed,
        Some(E::Rebalancing) => ZoneState::Rebalancing,
        Some(other) => ZoneState::Other(other.as_str().to_string()),
        None => ZoneState::Other("unknown".into()),
    };
    (state, reason)
}

/// The reservation as AWS reports it.
pub async fn describe_reservation(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
) -> Result<warmup::reservation::Observed, AwsError> {
    let out = elb
        .describe_capacity_reservation()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| {
            AwsError::new("elasticloadbalancing:DescribeCapacityReservation", e).on(arn)
        })?;
    Ok(warmup::reservation::Observed {
        units: out
            .minimum_load_balancer_capacity()
            .and_then(|m| m.capacity_units())
            .and_then(|u| u32::try_from(u).ok())
            .filter(|u| *u > 0),
        zones: out
            .capacity_reservation_state()
            .iter()
            .map(|z| {
                let (state, reason) = zone_state(z.state());
                (
                    z.availability_zone().unwrap_or("?").to_string(),
                    state,
                    reason,
                )
            })
            .collect(),
        last_modified: out.last_modified_time().and_then(from_smithy),
        decreases_remaining: out.decrease_requests_remaining(),
    })
}

/// A refused ModifyCapacityReservation, named by the SDK's error variant (never its text).
fn modify_refusal(
    e: &aws_sdk_elasticloadbalancingv2::operation::modify_capacity_reservation::ModifyCapacityReservationError,
) -> &'static str {
    use aws_sdk_elasticloadbalancingv2::operation::modify_capacity_reservation::ModifyCapacityReservationError as M;
    match e {
        M::CapacityDecreaseRequestsLimitExceededException(_) => {
            "the daily decrease limit is reached (CapacityDecreaseRequestLimitExceeded)"
        }
        M::CapacityReservationPendingException(_) => "a reservation is still pending",
        M::CapacityUnitsLimitExceededException(_) => "above the capacity-units limit",
        M::InsufficientCapacityException(_) => "AWS has insufficient capacity to reserve",
        M::InvalidConfigurationRequestException(_) => "the configuration is not valid",
        M::LoadBalancerNotFoundException(_) => "the load balancer does not exist",
        M::OperationNotPermittedException(_) => "the operation is not permitted",
        M::PriorRequestNotCompleteException(_) => "a prior request has not completed",
        _ => "an unexpected error",
    }
}

async fn read_record(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Option<warmup::reservation::Record>, String> {
    let text = crate::aws::parameter_text(ssm, parameter).await?;
    let text = text.trim();
    if text.is_empty() || text == "{}" {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| format!("{parameter}: {e}"))
}

async fn write_record(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    record: &warmup::reservation::Record,
) -> Result<(), String> {
    let value = serde_json::to_string(record).map_err(|e| e.to_string())?;
    ssm.put_parameter()
        .name(parameter)
        .value(value)
        .overwrite(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            AwsError::new("ssm:PutParameter", e)
                .on(parameter)
                .to_string()
        })
}

/// Per-session peaks of the ALB's `PeakLCUs` (per-minute Sum) inside `windows`.
async fn lcu_peaks(
    cw: &aws_sdk_cloudwatch::Client,
    arn: &str,
    windows: &[Window],
) -> Result<Vec<f64>, AwsError> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let (Some(start), Some(end)) = (
        windows.iter().map(|w| w.spike_start).min(),
        windows.iter().map(|w| w.spike_end).max(),
    ) else {
        return Ok(Vec::new());
    };
    // The metric's LoadBalancer dimension is the ARN after "loadbalancer/" (app/<name>/<id>).
    let dimension = arn.split_once("loadbalancer/").map_or(arn, |(_, d)| d);
    let q = MetricDataQuery::builder()
        .id("lcu")
        .return_data(true)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/ApplicationELB")
                        .metric_name("PeakLCUs")
                        .dimensions(
                            Dimension::builder()
                                .name("LoadBalancer")
                                .value(dimension)
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .build();
    let points = crate::aws::cloudwatch::metric_series(cw, vec![q], start, end).await?;
    let mut by_session: std::collections::BTreeMap<chrono::NaiveDate, f64> = Default::default();
    for (t, v) in points {
        if let Some(w) = windows
            .iter()
            .find(|w| w.spike_start <= t && t <= w.spike_end)
        {
            let e = by_session.entry(w.session).or_insert(0.0);
            *e = e.max(v);
        }
    }
    Ok(by_session.into_values().collect())
}

/// How a reservation step runs: plan only (`dry_run`), and whether it is the deadline check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepMode {
    pub dry_run: bool,
    pub deadline_check: bool,
}

/// The reservation step of a run: read, decide, act (unless `dry_run`), publish readiness.
pub async fn reserve(
    clients: &Clients,
    cfg: &WarmupConfig,
    rc: &ReservationConfig,
    calendar: &Calendar,
    events: &[warmup::events::Event],
    now: DateTime<Utc>,
    mode: StepMode,
) -> ReservationReport {
    let (elb, ssm, cw) = (&clients.elb, &clients.ssm, &clients.cloudwatch);
    let (dry_run, deadline_check) = (mode.dry_run, mode.deadline_check);
    use warmup::reservation::{decide, needed_between, ready, size, Decision, Record};
    let mut r = ReservationReport::default();
    let today = crate::calendar::local_date(now);
    let day_windows: Vec<Window> = match calendar.session(today) {
        Ok(Some(s)) => {
            let mut w = warmup::windows(&s, &cfg.settings).to_vec();
            w.extend(
                events
                    .iter()
                    .filter_map(|e| warmup::event_window(&s, &cfg.settings, e)),
            );
            w
        }
        _ => Vec::new(),
    };
    let span = needed_between(&day_windows, &rc.settings);
    let in_span = span.is_some_and(|(from, to)| from <= now && now < to);
    let day_over = span.is_none_or(|(_, to)| now >= to);
    let observed = match describe_reservation(elb, &rc.load_balancer_arn).await {
        Ok(o) => o,
        Err(e) => {
            r.errors.push(e.to_string());
            r.ready = !in_span;
            publish_reservation(cw, cfg, r.ready, deadline_check, &mut r).await;
            return r;
        }
    };
    let record = match read_record(ssm, &rc.record_parameter).await {
        Ok(rec) => rec,
        Err(e) => {
            r.errors
                .push(format!("record unreadable ({e}): treated as none"));
            None
        }
    };
    let target = if in_span {
        let recent = calendar
            .recent(now, rc.history_sessions)
            .unwrap_or_default();
        let past: Vec<Window> = recent
            .iter()
            .flat_map(|s| warmup::windows(s, &cfg.settings))
            .collect();
        let peaks = match lcu_peaks(cw, &rc.load_balancer_arn, &past).await {
            Ok(p) => p,
            Err(e) => {
                r.errors.push(format!("PeakLCUs history unavailable: {e}"));
                Vec::new()
            }
        };
        let (units, why) = size(&peaks, &rc.settings);
        r.sized_by = why;
        Some(units)
    } else {
        None
    };
    r.target = target;
    let decision = decide(&observed, record.as_ref(), target, day_over, &rc.settings);
    if let Decision::Unclassified { why } = &decision {
        r.errors.push(format!("ALB reservation: {why}"));
    }
    // Ours with a stamp AWS's fulfilment moved (pending -> provisioned, rebalancing): the record
    // follows AWS, so the next change is judged against the latest stamp.
    if let (Some(rec), false) = (record, dry_run) {
        let ours = warmup::reservation::ownership(&observed, Some(&rec))
            == warmup::reservation::Ownership::Ours;
        let restamped = rec.stamped(&observed);
        if ours && restamped != rec && observed.last_modified.is_some() {
            if let Err(e) = write_record(ssm, &rc.record_parameter, &restamped).await {
                r.errors.push(format!("the record was not restamped: {e}"));
            }
        }
    }
    r.ready = ready(&observed, target);
    r.observed = observed;
    if !dry_run {
        let (request, units) = match &decision {
            Decision::Request { units, .. } => (Some(false), *units),
            Decision::Reset { .. } => (Some(true), 0),
            _ => (None, 0),
        };
        if let Some(reset) = request {
            let mut call = elb
                .modify_capacity_reservation()
                .load_balancer_arn(&rc.load_balancer_arn);
            call = if reset {
                call.reset_capacity_reservation(true)
            } else {
                call.minimum_load_balancer_capacity(
                    aws_sdk_elasticloadbalancingv2::types::MinimumLoadBalancerCapacity::builder()
                        .capacity_units(i32::try_from(units).unwrap_or(i32::MAX))
                        .build(),
                )
            };
            match call.send().await {
                Ok(_) => {
                    // AWS's own stamp, read back: what later runs know the reservation by.
                    let record = match describe_reservation(elb, &rc.load_balancer_arn).await {
                        Ok(back) => Record::requested(units, now).stamped(&back),
                        Err(e) => {
                            r.errors.push(format!(
                                "requested, but not read back ({e}): ownership falls back to the request time"
                            ));
                            Record::requested(units, now)
                        }
                    };
                    if let Err(e) = write_record(ssm, &rc.record_parameter, &record).await {
                        r.errors
                            .push(format!("requested, but the record was not written: {e}"));
                    }
                }
                Err(e) => {
                    let why = e
                        .as_service_error()
                        .map(modify_refusal)
                        .unwrap_or("no answer");
                    r.errors.push(format!(
                        "ModifyCapacityReservation {}: {why}; retried on the next run ({})",
                        if reset {
                            "reset".to_string()
                        } else {
                            format!("{units} units")
                        },
                        AwsError::new("elasticloadbalancing:ModifyCapacityReservation", e)
                    ));
                }
            }
        }
    }
    r.decision = Some(decision);
    publish_reservation(cw, cfg, r.ready, deadline_check, &mut r).await;
    r
}

async fn publish_reservation(
    cw: &aws_sdk_cloudwatch::Client,
    cfg: &WarmupConfig,
    ready: bool,
    deadline_check: bool,
    r: &mut ReservationReport,
) {
    let mut metrics = vec![(
        RESERVATION_READY_METRIC,
        if ready { 1.0 } else { 0.0 },
        StandardUnit::Count,
    )];
    if deadline_check {
        r.deadline_missed = Some(!ready);
        metrics.push((
            RESERVATION_DEADLINE_METRIC,
            if ready { 0.0 } else { 1.0 },
            StandardUnit::Count,
        ));
    }
    if let Err(e) =
        crate::aws::cloudwatch::put_stack_metrics(cw, &cfg.metrics_namespace, &cfg.stack, &metrics)
            .await
    {
        r.errors.push(e.to_string());
    }
}
