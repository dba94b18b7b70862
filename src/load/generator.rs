//! What the in-VPC load-generator function may do (pure): send synthetic orders only to the
//! stack's own listeners (their URLs and the order path come from its environment, never from
//! the event), at most `MAX_RATE` orders a second and `MAX_ORDERS_PER_INVOCATION` per
//! invocation, and at most `MAX_ORDERS_PER_DAY` a New York day (a ledger in its own SSM
//! parameter, charged before a segment runs). Anyone allowed to invoke it can then run only a
//! bounded live-test load at this stack, never an arbitrary-rate load at an arbitrary endpoint.
//!
//! The ledger is read, charged and written by each invocation; two overlapping invocations
//! (reserved concurrency 2: the runner starts the next segment a few seconds early) can both
//! read the same value, so a day's total can exceed the cap by at most one invocation's orders.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::load::LoadRequest;

/// Which of the stack's listeners a segment loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listener {
    Production,
    Test,
}

/// The event of one invocation: no URL, no path (an unknown key is refused by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRequest {
    pub listener: Listener,
    pub rate: f64,
    pub duration_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Start at this time (epoch milliseconds): segments of one run join without gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_ms: Option<u64>,
}

/// The function's limits and targets, from its environment (set by the template).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub production_url: String,
    pub test_url: String,
    pub order_path: String,
    pub max_rate: f64,
    pub max_orders_per_invocation: u64,
    pub max_orders_per_day: u64,
    pub ledger_parameter: String,
}

/// What the function refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneratorError {
    #[error("environment: {0} is missing or not valid")]
    Environment(&'static str),
    #[error("the event is not a segment request ({{listener: production|test, rate, duration_seconds, timeout_ms?, max_in_flight?, run_id?, start_at_ms?}}; the target comes from the stack, never from the event): {0}")]
    Event(String),
    #[error("rate {rate}/s is above this function's MAX_RATE {max}/s")]
    Rate { rate: f64, max: f64 },
    #[error("{orders} orders in one invocation are above MAX_ORDERS_PER_INVOCATION {max}: use shorter segments or a lower rate")]
    Invocation { orders: u64, max: u64 },
    #[error("{orders} more orders would make {total} on {day}, above MAX_ORDERS_PER_DAY {max}")]
    Daily {
        orders: u64,
        total: u64,
        day: NaiveDate,
        max: u64,
    },
    #[error("the ledger {parameter} is not valid: {why} (fix or reset it to {{}})")]
    Ledger { parameter: String, why: String },
    #[error("{0}")]
    Load(#[from] crate::load::LoadError),
}

impl Limits {
    /// Reads the limits from an environment lookup.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, GeneratorError> {
        let text = |k: &'static str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or(GeneratorError::Environment(k))
        };
        let number = |k: &'static str| -> Result<u64, GeneratorError> {
            text(k)?
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(GeneratorError::Environment(k))
        };
        let max_rate: f64 = text("MAX_RATE")?
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or(GeneratorError::Environment("MAX_RATE"))?;
        Ok(Limits {
            production_url: text("PRODUCTION_LISTENER_URL")?,
            test_url: text("TEST_LISTENER_URL")?,
            order_path: text("ORDER_PATH")?,
            max_rate,
            max_orders_per_invocation: number("MAX_ORDERS_PER_INVOCATION")?,
            max_orders_per_day: number("MAX_ORDERS_PER_DAY")?,
            ledger_parameter: text("LEDGER_PARAMETER")?,
        })
    }
}

/// Orders a segment sends at most.
pub fn orders(rate: f64, duration_seconds: f64) -> u64 {
    (rate * duration_seconds).ceil().max(0.0) as u64
}

/// The load request an event asks for, within the limits; and its orders.
pub fn admit(
    event: serde_json::Value,
    limits: &Limits,
) -> Result<(LoadRequest, u64), GeneratorError> {
    let s: SegmentRequest =
        serde_json::from_value(event).map_err(|e| GeneratorError::Event(e.to_string()))?;
    if !(s.rate.is_finite() && s.rate <= limits.max_rate) {
        return Err(GeneratorError::Rate {
            rate: s.rate,
            max: limits.max_rate,
        });
    }
    let req = LoadRequest {
        url: match s.listener {
            Listener::Production => limits.production_url.clone(),
            Listener::Test => limits.test_url.clone(),
        },
        rate: s.rate,
        duration_seconds: s.duration_seconds,
        path: limits.order_path.clone(),
        timeout_ms: s.timeout_ms.unwrap_or(5000),
        max_in_flight: s.max_in_flight.unwrap_or(512),
        run_id: s.run_id,
        start_at_ms: s.start_at_ms,
    };
    req.config()?;
    let n = orders(s.rate, s.duration_seconds);
    if n > limits.max_orders_per_invocation {
        return Err(GeneratorError::Invocation {
            orders: n,
            max: limits.max_orders_per_invocation,
        });
    }
    Ok((req, n))
}

/// One day's orders so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub day: NaiveDate,
    pub orders: u64,
}

/// Reads the ledger parameter's text: empty or `{}` is none yet.
pub fn read_ledger(parameter: &str, text: &str) -> Result<Option<Ledger>, GeneratorError> {
    let text = text.trim();
    if text.is_empty() || text == "{}" {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| GeneratorError::Ledger {
            parameter: parameter.to_string(),
            why: e.to_string(),
        })
}

/// The ledger after charging `orders` on `today`, or the refusal: a new day starts at 0.
pub fn charge(
    ledger: Option<Ledger>,
    today: NaiveDate,
    orders: u64,
    max: u64,
) -> Result<Ledger, GeneratorError> {
    let so_far = ledger.filter(|l| l.day == today).map_or(0, |l| l.orders);
    let total = so_far.saturating_add(orders);
    if total > max {
        return Err(GeneratorError::Daily {
            orders,
            total,
            day: today,
            max,
        });
    }
    Ok(Ledger {
        day: today,
        orders: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits::from_env(|k| {
            Some(
                match k {
                    "PRODUCTION_LISTENER_URL" => "http://internal-ob.example:80",
                    "TEST_LISTENER_URL" => "http://internal-ob.example:9090",
                    "ORDER_PATH" => "/orders",
                    "MAX_RATE" => "200",
                    "MAX_ORDERS_PER_INVOCATION" => "60000",
                    "MAX_ORDERS_PER_DAY" => "1000000",
                    "LEDGER_PARAMETER" => "/ob/load-generator/ledger",
                    _ => return None,
                }
                .to_string(),
            )
        })
        .unwrap()
    }

    #[test]
    fn the_target_comes_from_the_environment_never_from_the_event() {
        let (req, n) = admit(
            json!({"listener": "test", "rate": 20, "duration_seconds": 300}),
            &limits(),
        )
        .unwrap();
        assert_eq!(req.url, "http://internal-ob.example:9090");
        assert_eq!(req.path, "/orders");
        assert_eq!(n, 6000);
        for bad in [
            json!({"listener": "production", "rate": 20, "duration_seconds": 10, "url": "https://victim.example"}),
            json!({"listener": "production", "rate": 20, "duration_seconds": 10, "path": "/admin"}),
            json!({"url": "https://victim.example", "rate": 20, "duration_seconds": 10}),
            json!({"listener": "anywhere", "rate": 20, "duration_seconds": 10}),
        ] {
            assert!(
                matches!(admit(bad.clone(), &limits()), Err(GeneratorError::Event(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rate_and_orders_per_invocation_are_capped() {
        let l = limits();
        let e = admit(
            json!({"listener": "production", "rate": 2000, "duration_seconds": 1}),
            &l,
        );
        assert!(matches!(e, Err(GeneratorError::Rate { .. })), "{e:?}");
        let e = admit(
            json!({"listener": "production", "rate": 200, "duration_seconds": 840}),
            &l,
        );
        assert!(
            matches!(e, Err(GeneratorError::Invocation { orders: 168000, .. })),
            "{e:?}"
        );
        let e = admit(
            json!({"listener": "production", "rate": 0, "duration_seconds": 10}),
            &l,
        );
        assert!(matches!(e, Err(GeneratorError::Load(_))), "{e:?}");
        assert!(Limits::from_env(|_| None).is_err());
    }

    #[test]
    fn the_daily_ledger_caps_and_starts_over_each_day() {
        let d1 = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let d2 = d1.succ_opt().unwrap();
        let l = charge(None, d1, 600_000, 1_000_000).unwrap();
        let l = charge(Some(l), d1, 400_000, 1_000_000).unwrap();
        assert_eq!(l.orders, 1_000_000);
        assert!(matches!(
            charge(Some(l), d1, 1, 1_000_000),
            Err(GeneratorError::Daily {
                total: 1_000_001,
                ..
            })
        ));
        assert_eq!(charge(Some(l), d2, 1, 1_000_000).unwrap().orders, 1);
        assert_eq!(read_ledger("p", "{}").unwrap(), None);
        assert!(read_ledger("p", "{\"day\": 3}").is_err());
    }
}
