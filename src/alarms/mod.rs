//! CloudWatch alarms as CloudWatch documents them, executable: the metric data an alarm reads
//! (published late, absent when zero), metric math, and the alarm's evaluation on every tick
//! (pure). The deployment-group alarms are read from the template as CloudFormation receives it
//! ([`template`]), never restated by hand, and evaluated here on metric streams; the rollback
//! proofs ([`proof`]) and the deployment rehearsal build on it.
//!
//! - [`data`]: metric streams, statistics, publication delays.
//! - [`math`]: metric math (FILL, IF, arithmetic, comparisons, AND/OR).
//! - [`evaluate`]: the evaluation range and the state decision with TreatMissingData.
//! - [`template`]: alarm definitions from the template with `make deploy`'s parameter values.
//! - [`proof`]: deployment metric streams of good and bad versions and what each alarm does
//!   with them.

pub mod data;
pub mod evaluate;
pub mod math;
pub mod proof;
pub mod template;

use std::collections::BTreeMap;

use serde::Serialize;

use data::{Delays, MetricKey, MetricStore, Stat};
use evaluate::{decide, Settings, State};
use math::{Expr, MathError, Series, Value};

/// `ComparisonOperator` (the anomaly-detection ones are not modelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

/// `TreatMissingData` (default `missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TreatMissing {
    #[serde(rename = "missing")]
    Missing,
    #[serde(rename = "ignore")]
    Ignore,
    #[serde(rename = "breaching")]
    Breaching,
    #[serde(rename = "notBreaching")]
    NotBreaching,
}

/// A metric read by an alarm: which metric, the statistic and the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricStat {
    pub metric: MetricKey,
    pub stat: Stat,
    pub period: u32,
}

/// One entry of an alarm's `Metrics` (a single-metric alarm is one metric query).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    pub id: String,
    pub return_data: bool,
    pub source: QuerySource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum QuerySource {
    Metric(MetricStat),
    /// The expression text, parsed when the definition was read.
    Expression(String, #[serde(skip)] Expr),
}

/// One alarm as CloudFormation would create it, parameters resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmDefinition {
    pub logical_id: String,
    pub queries: Vec<Query>,
    pub period: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison: Comparison,
    pub treat_missing: TreatMissing,
}

/// An alarm whose queries cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("alarm {alarm}: {source}")]
    Math {
        alarm: String,
        #[source]
        source: MathError,
    },
    #[error("alarm {0}: no query returns data")]
    NoResult(String),
    #[error("alarm {0}: the returned expression is a scalar, not a time series")]
    Scalar(String),
}

impl AlarmDefinition {
    /// The value of every range period at `tick` (the returned query's series), each `None`
    /// where it has no point. Queries are evaluated in order; an expression may read any
    /// query listed before it or after it, as CloudWatch allows.
    pub fn values_at(
        &self,
        store: &MetricStore,
        delays: &Delays,
        tick: i64,
        settings: &Settings,
    ) -> Result<Vec<(i64, Option<f64>)>, EvalError> {
        let range = settings.range(self, tick);
        let mut vars: BTreeMap<String, Series> = BTreeMap::new();
        for q in &self.queries {
            if let QuerySource::Metric(ms) = &q.source {
                let s: Series = range
                    .iter()
                    .filter_map(|&t| {
                        store
                            .datapoint(&ms.metric, ms.stat, t, ms.period, tick, delays)
                            .map(|v| (t, v))
                    })
                    .collect();
                vars.insert(q.id.clone(), s);
            }
        }
        self.expressions(&mut vars, &range)?;
        let ret = self
            .queries
            .iter()
            .find(|q| q.return_data)
            .ok_or_else(|| EvalError::NoResult(self.logical_id.clone()))?;
        let series = &vars[&ret.id];
        Ok(range.iter().map(|t| (*t, series.get(t).copied())).collect())
    }

    /// Evaluates the expressions, each once its inputs exist (any order in `Metrics`).
    fn expressions(
        &self,
        vars: &mut BTreeMap<String, Series>,
        range: &[i64],
    ) -> Result<(), EvalError> {
        let math = |source| EvalError::Math {
            alarm: self.logical_id.clone(),
            source,
        };
        let mut pending: Vec<&Query> = self
            .queries
            .iter()
            .filter(|q| matches!(q.source, QuerySource::Expression(..)))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for q in pending {
                let QuerySource::Expression(_, e) = &q.source else {
                    continue;
                };
                let mut needs = Vec::new();
                math::ids(e, &mut needs);
                if needs.iter().all(|id| vars.contains_key(id)) {
                    match math::eval(e, vars, range).map_err(math)? {
                        Value::Series(s) => vars.insert(q.id.clone(), s),
                        Value::Scalar(_) => return Err(EvalError::Scalar(self.logical_id.clone())),
                    };
                } else {
                    rest.push(q);
                }
            }
            if rest.len() == before {
                let mut needs = Vec::new();
                if let QuerySource::Expression(_, e) = &rest[0].source {
                    math::ids(e, &mut needs);
                }
                let missing = needs.into_iter().find(|id| !vars.contains_key(id));
                return Err(math(MathError::UnknownId(missing.unwrap_or_default())));
            }
            pending = rest;
        }
        Ok(())
    }

    /// The state at `tick`, from the state before it.
    pub fn state_at(
        &self,
        store: &MetricStore,
        delays: &Delays,
        tick: i64,
        settings: &Settings,
        current: State,
    ) -> Result<State, EvalError> {
        let points: Vec<Option<bool>> = self
            .values_at(store, delays, tick, settings)?
            .into_iter()
            .map(|(_, v)| v.map(|v| self.comparison.breaches(v, self.threshold)))
            .collect();
        Ok(decide(
            &points,
            self.evaluation_periods as usize,
            self.datapoints_to_alarm as usize,
            self.treat_missing,
            current,
        ))
    }

    /// Evaluates every tick in `[from, to]` starting from `initial`; the first tick in ALARM.
    pub fn first_alarm(
        &self,
        store: &MetricStore,
        delays: &Delays,
        window: (i64, i64),
        settings: &Settings,
        initial: State,
    ) -> Result<Option<i64>, EvalError> {
        self.published(store, delays)?
            .first_alarm(window, settings, initial)
    }

    /// Every period's value as it is published: computed once, then evaluated on any ticks
    /// and settings ([`Published::first_alarm`]).
    pub fn published<'a>(
        &'a self,
        store: &'a MetricStore,
        delays: &'a Delays,
    ) -> Result<Published<'a>, EvalError> {
        Published::new(self, store, delays, &PointCache::default())
    }

    /// [`Self::published`] sharing `cache` with other publication orders of the same store.
    pub fn published_with<'a>(
        &'a self,
        store: &'a MetricStore,
        delays: &'a Delays,
        cache: &PointCache,
    ) -> Result<Published<'a>, EvalError> {
        Published::new(self, store, delays, cache)
    }

    /// The returned series at the one period starting at `t`, from `vars` (evaluated over that
    /// single timestamp).
    fn value_of_one_period(
        &self,
        mut vars: BTreeMap<String, Series>,
        t: i64,
    ) -> Result<Option<f64>, EvalError> {
        self.expressions(&mut vars, &[t])?;
        let ret = self
            .queries
            .iter()
            .find(|q| q.return_data)
            .ok_or_else(|| EvalError::NoResult(self.logical_id.clone()))?;
        Ok(vars[&ret.id].get(&t).copied())
    }

    /// The metrics this alarm reads.
    pub fn metrics(&self) -> impl Iterator<Item = &MetricStat> {
        self.queries.iter().filter_map(|q| match &q.source {
            QuerySource::Metric(m) => Some(m),
            QuerySource::Expression(..) => None,
        })
    }

    /// Whether an expression FILLs a series while the alarm needs all N datapoints: the
    /// newest period then always has the FILL value (CloudWatch user guide, "Using metric
    /// math", FILL row: "can result in the alarm being stuck in either OK state or ALARM
    /// state. You can work around this by using a M out of N alarm").
    pub fn fills_newest_with_n_of_n(&self) -> bool {
        let fills = self.queries.iter().any(|q| match &q.source {
            QuerySource::Expression(text, _) => text.contains("FILL("),
            QuerySource::Metric(_) => false,
        });
        fills && self.datapoints_to_alarm >= self.evaluation_periods
    }
}

/// Per period with data: (from this tick on, the value), in tick order.
type Steps = BTreeMap<i64, Vec<(i64, Option<f64>)>>;

/// A period's value by which of the alarm's metrics are published for it: the same for any
/// publication delays, so one cache serves every publication order of one alarm and store.
#[derive(Default)]
pub struct PointCache(std::cell::RefCell<std::collections::HashMap<(i64, u64), Option<f64>>>);

/// One alarm's data as it is published. When every expression is pointwise (each function
/// the model knows but `FILL(.., REPEAT)` computes a period from that period's values alone)
/// and every metric is published at the alarm's period, a period's value changes only when one
/// of its metrics is published: each period's values are computed once, at those instants.
/// Otherwise each tick evaluates the whole range ([`AlarmDefinition::values_at`]). Tests
/// compare the two.
pub struct Published<'a> {
    def: &'a AlarmDefinition,
    store: &'a MetricStore,
    delays: &'a Delays,
    /// Per period with data: (from this tick on, the value), in tick order.
    steps: Option<Steps>,
    /// The value of a period none of whose metrics is published (FILL gives one).
    empty: Option<f64>,
}

impl<'a> Published<'a> {
    fn new(
        def: &'a AlarmDefinition,
        store: &'a MetricStore,
        delays: &'a Delays,
        cache: &PointCache,
    ) -> Result<Self, EvalError> {
        let mut out = Published {
            def,
            store,
            delays,
            steps: None,
            empty: None,
        };
        let pointwise = def.queries.iter().all(|q| match &q.source {
            QuerySource::Expression(text, _) => !text.contains("REPEAT"),
            QuerySource::Metric(m) => {
                m.period == def.period
                    && store
                        .streams
                        .get(&m.metric)
                        .is_none_or(|s| s.resolution == m.period)
            }
        });
        if pointwise {
            out.empty = def.value_of_one_period(out.inputs(0, i64::MIN), 0)?;
            out.steps = Some(out.steps(cache)?);
        }
        Ok(out)
    }

    /// The metric queries' values of period `t` as published by `tick`.
    fn inputs(&self, t: i64, tick: i64) -> BTreeMap<String, Series> {
        self.def
            .queries
            .iter()
            .filter_map(|q| match &q.source {
                QuerySource::Metric(m) => {
                    let v = self
                        .store
                        .datapoint(&m.metric, m.stat, t, m.period, tick, self.delays);
                    Some((
                        q.id.clone(),
                        v.map(|v| Series::from([(t, v)])).unwrap_or_default(),
                    ))
                }
                QuerySource::Expression(..) => None,
            })
            .collect()
    }

    fn steps(&self, cache: &PointCache) -> Result<Steps, EvalError> {
        let p = i64::from(self.def.period);
        let streams: Vec<Option<&data::Stream>> = self
            .def
            .metrics()
            .map(|m| self.store.streams.get(&m.metric))
            .collect();
        let mut periods = std::collections::BTreeSet::new();
        for s in streams.iter().flatten() {
            periods.extend(s.periods.keys().copied());
        }
        let mut out = BTreeMap::new();
        for t in periods {
            // Each metric with data in this period, and when it is published.
            let mut published: Vec<(i64, usize)> = self
                .def
                .metrics()
                .enumerate()
                .filter(|(i, _)| streams[*i].is_some_and(|s| s.periods.contains_key(&t)))
                .map(|(i, m)| (t + p + i64::from(self.delays.of(&m.metric.name, t)), i))
                .collect();
            published.sort_unstable();
            let mut steps: Vec<(i64, Option<f64>)> = Vec::with_capacity(published.len());
            let mut mask = 0u64;
            for (k, (tick, i)) in published.iter().enumerate() {
                mask |= 1 << i;
                if published.get(k + 1).is_some_and(|(next, _)| next == tick) {
                    continue;
                }
                let key = (t, mask);
                let cached = cache.0.borrow().get(&key).copied();
                let v = match cached {
                    Some(v) => v,
                    None => {
                        let v = self.def.value_of_one_period(self.inputs(t, *tick), t)?;
                        cache.0.borrow_mut().insert(key, v);
                        v
                    }
                };
                steps.push((*tick, v));
            }
            out.insert(t, steps);
        }
        Ok(out)
    }

    /// The value of period `t` at `tick`.
    fn value(&self, steps: &Steps, t: i64, tick: i64) -> Option<f64> {
        match steps.get(&t) {
            Some(s) => s
                .iter()
                .rev()
                .find(|(from, _)| *from <= tick)
                .map_or(self.empty, |(_, v)| *v),
            None => self.empty,
        }
    }

    /// The range's points at `tick`: breaching or not, `None` where missing.
    fn points(&self, tick: i64, settings: &Settings) -> Result<Vec<Option<bool>>, EvalError> {
        let values: Vec<Option<f64>> = match &self.steps {
            Some(steps) => settings
                .range(self.def, tick)
                .into_iter()
                .map(|t| self.value(steps, t, tick))
                .collect(),
            None => self
                .def
                .values_at(self.store, self.delays, tick, settings)?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        };
        Ok(values
            .into_iter()
            .map(|v| v.map(|v| self.def.comparison.breaches(v, self.def.threshold)))
            .collect())
    }

    /// Evaluates every tick in `[from, to]` starting from `initial`; the first tick in ALARM.
    pub fn first_alarm(
        &self,
        (from, to): (i64, i64),
        settings: &Settings,
        initial: State,
    ) -> Result<Option<i64>, EvalError> {
        let def = self.def;
        let step = i64::from(Settings::tick_seconds(def.period));
        let offset = i64::from(settings.tick_offset) % step;
        let mut tick = from.div_euclid(step) * step + offset;
        if tick < from {
            tick += step;
        }
        let mut state = initial;
        while tick <= to {
            state = decide(
                &self.points(tick, settings)?,
                def.evaluation_periods as usize,
                def.datapoints_to_alarm as usize,
                def.treat_missing,
                state,
            );
            if state == State::Alarm {
                return Ok(Some(tick));
            }
            tick += step;
        }
        Ok(None)
    }

    /// Whether the period-by-period shortcut applies (tests compare both paths).
    pub fn is_stepwise(&self) -> bool {
        self.steps.is_some()
    }
}
