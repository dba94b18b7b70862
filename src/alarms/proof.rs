//! One target group's ALB metrics through a blue/green deployment, second by second, and what
//! a deployment-group alarm does with them (pure). The streams follow the ALB's documented
//! reporting ([`super::data`]); the traffic, the versions and the task starts are inputs.
//!
//! What a second holds: production requests at `rate` x the group's share (10 % on the canary,
//! then all; the blue group the rest), the gates' synthetic requests on the test listener,
//! spread round-robin over the healthy targets. A request fails when the deterministic rule of
//! its traffic class says so: request k of a class with rate r fails when
//! floor(k*r) > floor((k-1)*r). Latencies: 2 % of a class's requests take its p99 (so the
//! minute's p99 is that value), the rest a quarter of it, except that a new task's first `cold`
//! answers that are not among the slow ones take the cold latency. Unhealthy hosts: a target is `unhealthy` from RUNNING plus the
//! unhealthy threshold until it turns healthy (ELB docs, "Health checks for Application Load
//! Balancer target groups": a target is `initial` until it passes or fails its first checks).

use super::data::{MetricKey, MetricStore, Stream};

/// Traffic classes, as the rehearsal names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Requests through the test listener (the gates).
    Test,
    /// Production requests while the canary holds.
    Canary,
    /// Production requests after the full shift (and blue's production before it).
    Full,
}

/// A value per traffic class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerClass<T> {
    pub test: T,
    pub canary: T,
    pub full: T,
}

impl<T: Copy> PerClass<T> {
    pub fn all(v: T) -> Self {
        PerClass {
            test: v,
            canary: v,
            full: v,
        }
    }
    pub fn get(&self, c: Class) -> T {
        match c {
            Class::Test => self.test,
            Class::Canary => self.canary,
            Class::Full => self.full,
        }
    }
}

/// A new task's slow first answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cold {
    pub first_requests: u64,
    pub seconds: f64,
}

/// How a version answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Version {
    /// Fraction of requests answered 5xx by the target, by class (the background noise is
    /// added to it).
    pub error_rate: PerClass<f64>,
    pub p99_seconds: PerClass<f64>,
    pub cold: Option<Cold>,
}

/// One task of the group: RUNNING (registered) and healthy, in seconds of the deployment;
/// `healthy` `None` for a task that never passes its health checks; `stopped` when its target
/// left the group (deregistered: in neither host count and served nothing from then on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub running: i64,
    pub healthy: Option<i64>,
    pub stopped: Option<i64>,
}

impl Task {
    /// Registered and not yet deregistered at `t`.
    fn registered(&self, t: i64) -> bool {
        t >= self.running && self.stopped.is_none_or(|s| t < s)
    }

    /// Healthy (and still registered) at `t`.
    fn healthy_at(&self, t: i64) -> bool {
        self.healthy.is_some_and(|h| h <= t) && self.registered(t)
    }
}

/// How UnHealthyHostCount is sampled within a minute: AWS does not document it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// A minute reads 1 when a target was unhealthy at ANY moment of it (the pessimistic
    /// reading for a good version).
    AnyMoment,
    /// One sample a second (a breach must hold the whole minute for `Minimum`: the pessimistic
    /// reading for a bad version).
    EverySecond,
}

/// One target group's traffic through the deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupTraffic {
    /// Seconds past a whole minute at which the deployment was created (the CloudWatch clock is
    /// the deployment's + this).
    pub offset: u32,
    pub tasks: Vec<Task>,
    /// From each instant on, this share of production and its class (sorted by time).
    pub shares: Vec<(i64, f64, Class)>,
    /// When the gates send their synthetic requests (through the test listener), and how many.
    pub gate: Option<(i64, u64)>,
    pub rate: f64,
    /// Background 5xx of every version (keep-alive races, client aborts).
    pub noise: f64,
    pub version: Version,
    pub end: i64,
    /// HealthCheckIntervalSeconds x UnhealthyThresholdCount.
    pub to_unhealthy: i64,
    pub sampling: Sampling,
}

/// The ALB metrics one group publishes, keyed with `dims` (LoadBalancer, TargetGroup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub requests: MetricKey,
    pub ok2: MetricKey,
    pub e5: MetricKey,
    pub latency: MetricKey,
    pub unhealthy: MetricKey,
    pub healthy: MetricKey,
}

impl Keys {
    pub fn new(dims: &[(String, String)]) -> Self {
        let k = |name: &str| MetricKey {
            namespace: "AWS/ApplicationELB".into(),
            name: name.into(),
            dimensions: dims.iter().cloned().collect(),
        };
        Keys {
            requests: k("RequestCount"),
            ok2: k("HTTPCode_Target_2XX_Count"),
            e5: k("HTTPCode_Target_5XX_Count"),
            latency: k("TargetResponseTime"),
            unhealthy: k("UnHealthyHostCount"),
            healthy: k("HealthyHostCount"),
        }
    }
}

/// The streams being built (one-minute resolution, as the ALB publishes).
struct Out {
    requests: Stream,
    ok2: Stream,
    e5: Stream,
    latency: Stream,
    unhealthy: Stream,
    healthy: Stream,
}

impl Default for Out {
    fn default() -> Self {
        Out {
            requests: Stream::new(60),
            ok2: Stream::new(60),
            e5: Stream::new(60),
            latency: Stream::new(60),
            unhealthy: Stream::new(60),
            healthy: Stream::new(60),
        }
    }
}

impl Out {
    fn into_store(self, keys: &Keys) -> MetricStore {
        let mut store = MetricStore::default();
        for (key, stream) in [
            (&keys.requests, self.requests),
            (&keys.ok2, self.ok2),
            (&keys.e5, self.e5),
            (&keys.latency, self.latency),
            (&keys.unhealthy, self.unhealthy),
            (&keys.healthy, self.healthy),
        ] {
            store.streams.insert(key.clone(), stream);
        }
        store
    }
}

/// Request counters and per-task served counts, carried from second to second.
#[derive(Default)]
struct Counters {
    production: f64,
    class_index: [u64; 3],
    served: Vec<u64>,
    rotate: usize,
}

fn class_slot(c: Class) -> usize {
    match c {
        Class::Test => 0,
        Class::Canary => 1,
        Class::Full => 2,
    }
}

/// How many of requests `(from, from + n]` a rate `r` fails: request k fails when
/// floor(k*r) > floor((k-1)*r) (the rehearsal's gates and production count with it too).
pub fn failing(from: u64, n: u64, r: f64) -> u64 {
    if r <= 0.0 {
        return 0;
    }
    let f = |k: u64| (k as f64 * r.min(1.0)).floor() as u64;
    f(from + n) - f(from)
}

/// How many of requests `(from, from + n]` hit the 2 % slow pattern.
fn slow(from: u64, n: u64) -> u64 {
    failing(from, n, 0.02)
}

impl GroupTraffic {
    fn share_at(&self, t: i64) -> (f64, Class) {
        self.shares
            .iter()
            .rev()
            .find(|(at, _, _)| *at <= t)
            .map(|(_, s, c)| (*s, *c))
            .unwrap_or((0.0, Class::Full))
    }

    /// The group's metric streams.
    pub fn streams(&self, keys: &Keys) -> MetricStore {
        let mut out = Out::default();
        let mut c = Counters {
            served: vec![0; self.tasks.len()],
            ..Counters::default()
        };
        let o = i64::from(self.offset);
        let mut minute_max: Option<(i64, u64)> = None;
        let mut healthy: Vec<usize> = Vec::with_capacity(self.tasks.len());
        for t in 0..self.end {
            healthy.clear();
            healthy.extend((0..self.tasks.len()).filter(|&i| self.tasks[i].healthy_at(t)));
            let (share, class) = self.share_at(t);
            let before = c.production.floor() as u64;
            c.production += self.rate * share;
            let n = c.production.floor() as u64 - before;
            if !healthy.is_empty() {
                self.serve(&mut out, &mut c, t + o, (n, class), &healthy);
                if let Some((at, count)) = self.gate {
                    if at == t {
                        self.serve(&mut out, &mut c, t + o, (count, Class::Test), &healthy);
                    }
                }
            }
            self.host_counts(&mut out, t, &mut minute_max);
        }
        if let Some((m, v)) = minute_max {
            out.unhealthy.add_value(m, v as f64, 1);
        }
        out.into_store(keys)
    }

    fn serve(
        &self,
        out: &mut Out,
        c: &mut Counters,
        at: i64,
        (n, class): (u64, Class),
        healthy: &[usize],
    ) {
        if n == 0 {
            return;
        }
        let slot = class_slot(class);
        let k = c.class_index[slot];
        c.class_index[slot] += n;
        let rate = self.version.error_rate.get(class) + self.noise;
        let errors = failing(k, n, rate);
        out.requests.add_count(at, n);
        out.e5.add_count(at, errors);
        out.ok2.add_count(at, n - errors);
        // Round-robin: each healthy target an equal share, the remainder rotating.
        let h = healthy.len() as u64;
        let mut cold = 0;
        for (j, &i) in healthy.iter().enumerate() {
            let extra = u64::from(((j + c.rotate) % healthy.len()) < (n % h) as usize);
            let got = n / h + extra;
            if let Some(cd) = self.version.cold {
                cold += got.min(cd.first_requests.saturating_sub(c.served[i]));
            }
            c.served[i] += got;
        }
        c.rotate = (c.rotate + (n % h) as usize) % healthy.len();
        // The 2 % slow pattern holds for every request, a new task's first ones included; the
        // other first answers of a new task are cold.
        let p99 = self.version.p99_seconds.get(class);
        let slow = slow(k, n);
        let cold = cold.min(n - slow);
        out.latency.add_value(at, p99, slow);
        out.latency.add_value(at, p99 / 4.0, n - cold - slow);
        if let Some(cd) = self.version.cold {
            out.latency.add_value(at, cd.seconds, cold);
        }
    }

    fn host_counts(&self, out: &mut Out, t: i64, minute_max: &mut Option<(i64, u64)>) {
        let o = i64::from(self.offset);
        let grace = match self.sampling {
            Sampling::AnyMoment => 0,
            Sampling::EverySecond => self.to_unhealthy,
        };
        let unhealthy = self
            .tasks
            .iter()
            .filter(|k| {
                t >= k.running + grace && k.registered(t) && k.healthy.is_none_or(|h| t < h)
            })
            .count() as u64;
        let healthy = self.tasks.iter().filter(|k| k.healthy_at(t)).count() as u64;
        out.healthy.add_value(t + o, healthy as f64, 1);
        match self.sampling {
            Sampling::EverySecond => out.unhealthy.add_value(t + o, unhealthy as f64, 1),
            Sampling::AnyMoment => {
                let minute = (t + o).div_euclid(60) * 60;
                match minute_max {
                    Some((m, v)) if *m == minute => *v = (*v).max(unhealthy),
                    Some((m, v)) => {
                        out.unhealthy.add_value(*m, *v as f64, 1);
                        *minute_max = Some((minute, unhealthy));
                    }
                    None => *minute_max = Some((minute, unhealthy)),
                }
            }
        }
    }

    /// The first production request of `class` that fails (error or slow above `slow_above`),
    /// in seconds of the deployment: a bad version's onset.
    pub fn onset(&self, slow_above: f64) -> Option<i64> {
        let mut produced = 0.0f64;
        let mut index = [0u64; 3];
        for t in 0..self.end {
            let (share, class) = self.share_at(t);
            let before = produced.floor() as u64;
            produced += self.rate * share;
            let n = produced.floor() as u64 - before;
            if n == 0 || class == Class::Test {
                continue;
            }
            let slot = class_slot(class);
            let k = index[slot];
            index[slot] += n;
            let bad_rate = self.version.error_rate.get(class);
            let slow_hit = self.version.p99_seconds.get(class) > slow_above && slow(k, n) > 0;
            if failing(k, n, bad_rate) > 0 || slow_hit {
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::data::{Delays, Stat};

    fn traffic(rate: f64) -> GroupTraffic {
        GroupTraffic {
            offset: 0,
            tasks: vec![
                Task {
                    running: 10,
                    healthy: Some(40),
                    stopped: None,
                },
                Task {
                    running: 10,
                    healthy: Some(40),
                    stopped: None,
                },
            ],
            shares: vec![(60, 0.1, Class::Canary), (240, 1.0, Class::Full)],
            gate: Some((45, 66)),
            rate,
            noise: 0.0,
            version: Version {
                error_rate: PerClass {
                    test: 0.0,
                    canary: 0.05,
                    full: 0.05,
                },
                p99_seconds: PerClass::all(0.04),
                cold: Some(Cold {
                    first_requests: 50,
                    seconds: 0.9,
                }),
            },
            end: 600,
            to_unhealthy: 10,
            sampling: Sampling::EverySecond,
        }
    }

    #[test]
    fn streams_count_every_request_once_and_zero_minutes_are_absent() {
        let g = traffic(20.0);
        let keys = Keys::new(&[("TargetGroup".into(), "G".into())]);
        let s = g.streams(&keys);
        let all = Delays::uniform(0);
        let get = |k: &MetricKey, m: i64| s.datapoint(k, Stat::Sum, m * 60, 60, 10_000, &all);
        // Minute 0: the gates' 66 requests only, none failing: no 5xx datapoint at all.
        assert_eq!(get(&keys.requests, 0), Some(66.0));
        assert_eq!(get(&keys.e5, 0), None);
        // Minute 1 (canary at 2 a second): 120 requests, 5 % of them failing.
        assert_eq!(get(&keys.requests, 1), Some(120.0));
        assert_eq!(get(&keys.e5, 1), Some(6.0));
        assert_eq!(get(&keys.ok2, 1), Some(114.0));
        // Minute 4 (all of production): 1200.
        assert_eq!(get(&keys.requests, 4), Some(1200.0));
        // The cold first requests dominate the first canary minute's p99.
        let p99 = s.datapoint(&keys.latency, Stat::Percentile(99.0), 60, 60, 10_000, &all);
        assert_eq!(p99, Some(0.9));
        assert_eq!(g.onset(1.0), Some(69));
    }
}
