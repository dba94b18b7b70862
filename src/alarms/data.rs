//! Metric data as CloudWatch holds it: one stream per metric (namespace, name, dimensions), each
//! period's raw values, and when each period's data is published (pure).
//!
//! - A period is present only when the service published something for it. The ALB publishes
//!   its count metrics only in a period where they are nonzero ("Reporting criteria: There is a
//!   nonzero value", ELB docs, "CloudWatch metrics for your Application Load Balancer"), and
//!   nothing at all when no request flows ("If there are no requests flowing through the load
//!   balancer or no data for a metric, the metric is not reported", same page). So a minute
//!   without errors has no 5xx datapoint: absent, not 0. [`Stream::add_count`] keeps that rule.
//! - Statistics come from the raw values of the period: a count metric is published as samples
//!   of 1 ("Note that Minimum, Maximum, and Average all return 1", same page, for the
//!   HTTPCode_Target_* counts), so Sum is the count; a latency metric keeps every request's value
//!   (as a weighted histogram), so a percentile is computed from the requests themselves.
//! - A period's data reaches CloudWatch some time after the period ends. AWS documents no bound
//!   for the ALB ("measures and sends its metrics in 60-second intervals", same page): the delay
//!   is an input ([`Delays`]), one value per metric or one per period, never a constant here.

use std::collections::BTreeMap;

use serde::Serialize;

/// One metric: namespace, name and dimensions (values as the template resolves them, e.g.
/// `GreenTargetGroup.TargetGroupFullName` for a `!GetAtt`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MetricKey {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

impl MetricKey {
    pub fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Self {
        MetricKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// A statistic of one period's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Stat {
    Sum,
    SampleCount,
    Minimum,
    Maximum,
    Average,
    /// `pNN`: the value at or below which NN % of the period's values lie.
    Percentile(f64),
}

impl Stat {
    /// Parses CloudWatch's statistic names (`Sum`, `Minimum`, `p99`, `p99.9`); `None` for one
    /// this model does not compute (trimmed means, `TC`, `IQM`, ...).
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "Sum" => Stat::Sum,
            "SampleCount" => Stat::SampleCount,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            "Average" => Stat::Average,
            p if p.starts_with('p') => {
                let v: f64 = p[1..].parse().ok()?;
                if !(0.0..=100.0).contains(&v) {
                    return None;
                }
                Stat::Percentile(v)
            }
            _ => return None,
        })
    }
}

/// The raw values of one period: `(value, how many times)`, merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeriodData {
    values: Vec<(f64, u64)>,
}

impl PeriodData {
    /// Adds `count` observations of `value`.
    pub fn add(&mut self, value: f64, count: u64) {
        if count == 0 || !value.is_finite() {
            return;
        }
        match self.values.iter_mut().find(|(v, _)| *v == value) {
            Some(entry) => entry.1 += count,
            None => self.values.push((value, count)),
        }
    }

    pub fn merge(&mut self, other: &PeriodData) {
        for (v, c) in &other.values {
            self.add(*v, *c);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The statistic, or `None` for a period without values.
    pub fn stat(&self, stat: Stat) -> Option<f64> {
        let n: u64 = self.values.iter().map(|(_, c)| c).sum();
        if n == 0 {
            return None;
        }
        let sum: f64 = self.values.iter().map(|(v, c)| v * *c as f64).sum();
        let min = self
            .values
            .iter()
            .map(|(v, _)| *v)
            .fold(f64::INFINITY, f64::min);
        let max = self
            .values
            .iter()
            .map(|(v, _)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        Some(match stat {
            Stat::Sum => sum,
            Stat::SampleCount => n as f64,
            Stat::Minimum => min,
            Stat::Maximum => max,
            Stat::Average => sum / n as f64,
            Stat::Percentile(p) => self.percentile(p, n),
        })
    }

    /// Nearest rank: the smallest value with at least p % of the values at or below it.
    /// ASSUMPTION: CloudWatch does not document its interpolation ("p99 ... 99 percent of the
    /// data is lower than this value", CloudWatch user guide, "Statistics definitions"); with
    /// the few distinct latencies the models produce, every reading gives the same value.
    fn percentile(&self, p: f64, n: u64) -> f64 {
        let mut sorted = self.values.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (v, c) in &sorted {
            seen += c;
            if seen >= rank {
                return *v;
            }
        }
        sorted.last().map(|(v, _)| *v).unwrap_or(f64::NAN)
    }
}

/// One metric's periods, keyed by the period's start (seconds on the model's clock).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stream {
    /// The resolution the service publishes at (60 for the ALB; 10, 20 or 30 for
    /// high-resolution metrics).
    pub resolution: u32,
    pub periods: BTreeMap<i64, PeriodData>,
}

impl Stream {
    pub fn new(resolution: u32) -> Self {
        Stream {
            resolution,
            periods: BTreeMap::new(),
        }
    }

    fn slot(&self, t: i64) -> i64 {
        t.div_euclid(i64::from(self.resolution)) * i64::from(self.resolution)
    }

    /// `count` events at time `t` (a count metric: samples of 1). Nothing is recorded for 0,
    /// so a period without events stays absent (the ALB's "nonzero value" rule).
    pub fn add_count(&mut self, t: i64, count: u64) {
        if count > 0 {
            let slot = self.slot(t);
            self.periods.entry(slot).or_default().add(1.0, count);
        }
    }

    /// `count` observations of `value` at time `t` (a latency, a host count sample).
    pub fn add_value(&mut self, t: i64, value: f64, count: u64) {
        if count > 0 {
            let slot = self.slot(t);
            self.periods.entry(slot).or_default().add(value, count);
        }
    }
}

/// Every stream a scenario produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricStore {
    pub streams: BTreeMap<MetricKey, Stream>,
}

impl MetricStore {
    /// The stream of a metric, created at `resolution` if new.
    pub fn stream(&mut self, key: &MetricKey, resolution: u32) -> &mut Stream {
        if !self.streams.contains_key(key) {
            self.streams.insert(key.clone(), Stream::new(resolution));
        }
        self.streams.get_mut(key).expect("inserted above")
    }

    /// The statistic of the alarm period `[start, start + period)` from the data published by
    /// `now`: the stream's periods inside it that reached CloudWatch, merged. `None` when none
    /// did (a missing datapoint).
    pub fn datapoint(
        &self,
        key: &MetricKey,
        stat: Stat,
        start: i64,
        period: u32,
        now: i64,
        delays: &Delays,
    ) -> Option<f64> {
        let stream = self.streams.get(key)?;
        let published =
            |s: i64| s + i64::from(stream.resolution) + i64::from(delays.of(&key.name, s)) <= now;
        if stream.resolution == period {
            // One stream period is the alarm period: no merge.
            return stream
                .periods
                .get(&start)
                .filter(|_| published(start))
                .and_then(|d| d.stat(stat));
        }
        let end = start + i64::from(period);
        let mut merged = PeriodData::default();
        for (&s, data) in stream.periods.range(start..end) {
            if published(s) {
                merged.merge(data);
            }
        }
        merged.stat(stat)
    }
}

/// When each period's data is published: `delay` seconds after the period ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delays {
    /// Every metric not named in `by_metric`.
    pub default: u32,
    /// One delay per metric name (one value per run).
    pub by_metric: BTreeMap<String, u32>,
    /// Per-period delays: a seeded draw in `[min, max]` for every (metric, period), replacing
    /// the two fields above. Deterministic: the same seed gives the same delays.
    pub per_period: Option<(u64, u32, u32)>,
}

impl Delays {
    /// Every metric `seconds` late.
    pub fn uniform(seconds: u32) -> Self {
        Delays {
            default: seconds,
            by_metric: BTreeMap::new(),
            per_period: None,
        }
    }

    /// Every metric `default` late, except those named.
    pub fn by_metric(default: u32, named: &[(&str, u32)]) -> Self {
        Delays {
            default,
            by_metric: named.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            per_period: None,
        }
    }

    /// Each (metric, period) drawn from `[min, max]` with `seed`.
    pub fn seeded(seed: u64, min: u32, max: u32) -> Self {
        Delays {
            default: min,
            by_metric: BTreeMap::new(),
            per_period: Some((seed, min, max.max(min))),
        }
    }

    pub fn of(&self, metric: &str, period_start: i64) -> u32 {
        if let Some((seed, min, max)) = self.per_period {
            let h = metric
                .bytes()
                .fold(seed ^ period_start as u64, |acc, b| mix(acc ^ u64::from(b)));
            return min + (mix(h) % u64::from(max - min + 1)) as u32;
        }
        self.by_metric.get(metric).copied().unwrap_or(self.default)
    }
}

/// splitmix64's finaliser: a fixed, well-spread hash (no dependency, same result everywhere).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_absent_when_zero_and_sum_to_the_count() {
        let mut s = Stream::new(60);
        s.add_count(5, 0);
        assert!(s.periods.is_empty());
        s.add_count(5, 3);
        s.add_count(59, 2);
        let p = &s.periods[&0];
        assert_eq!(p.stat(Stat::Sum), Some(5.0));
        assert_eq!(p.stat(Stat::Minimum), Some(1.0));
        assert_eq!(p.stat(Stat::Average), Some(1.0));
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_requests() {
        let mut p = PeriodData::default();
        p.add(0.01, 98);
        p.add(4.0, 2);
        assert_eq!(p.stat(Stat::Percentile(99.0)), Some(4.0));
        assert_eq!(p.stat(Stat::Percentile(98.0)), Some(0.01));
        let mut q = PeriodData::default();
        q.add(0.01, 995);
        q.add(4.0, 5);
        assert_eq!(q.stat(Stat::Percentile(99.0)), Some(0.01));
        assert_eq!(Stat::parse("p99.9"), Some(Stat::Percentile(99.9)));
        assert_eq!(Stat::parse("tm99"), None);
    }

    #[test]
    fn a_period_is_visible_only_after_its_delay() {
        let key = MetricKey::new("AWS/ApplicationELB", "RequestCount", &[]);
        let mut store = MetricStore::default();
        store.stream(&key, 60).add_count(30, 10);
        let d = Delays::uniform(90);
        assert_eq!(store.datapoint(&key, Stat::Sum, 0, 60, 149, &d), None);
        assert_eq!(store.datapoint(&key, Stat::Sum, 0, 60, 150, &d), Some(10.0));
        let seeded = Delays::seeded(7, 30, 150);
        let a = seeded.of("RequestCount", 60);
        assert!((30..=150).contains(&a));
        assert_eq!(a, Delays::seeded(7, 30, 150).of("RequestCount", 60));
    }
}
