//! The template's `Rules` for given parameter values, evaluated offline as CloudFormation does
//! before it creates a change set (pure): a rule applies when its `RuleCondition` holds (or it
//! has none), and then every `Assert` must hold, or the stack operation fails with that
//! assertion's `AssertDescription` (CloudFormation user guide, "Template Rules syntax").
//!
//! Rule functions: `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Fn::Contains` (a list
//! contains a string), `Ref` (a list parameter is its comma-separated members). The
//! `Fn::EachMember*` / `Fn::ValueOf*` functions read attributes of AWS resources in the account
//! (a subnet's VPC): they cannot be evaluated offline and are reported as not evaluated.

use serde::Serialize;
use serde_json::Value;

use super::resolve::Parameters;
use super::template::Template;

/// One assertion the values break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub rule: String,
    pub description: String,
}

/// What the rules say about a set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RulesVerdict {
    pub refused: Vec<Refusal>,
    /// Rules whose functions need the account (named, not evaluated).
    pub not_evaluated: Vec<String>,
}

enum Truth {
    Known(bool),
    /// Needs values only the account has.
    Unknown,
}

fn items(arg: &Value) -> &[Value] {
    arg.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A value as text or as a list of texts.
fn texts(t: &Template, p: &Parameters, v: &Value) -> Option<Vec<String>> {
    let resolved = p.resolve(t, v).ok()?;
    match resolved {
        Value::String(s) if v.get("Ref").is_some() && is_list(t, v) => {
            Some(s.split(',').map(|x| x.trim().to_string()).collect())
        }
        Value::String(s) => Some(vec![s]),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Array(a) => Some(
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn is_list(t: &Template, v: &Value) -> bool {
    let name = v.get("Ref").and_then(Value::as_str).unwrap_or_default();
    t.section("Parameters")
        .get(name)
        .and_then(|d| d.get("Type"))
        .and_then(Value::as_str)
        .is_some_and(|ty| ty.starts_with("List<") || ty == "CommaDelimitedList")
}

fn truth(t: &Template, p: &Parameters, c: &Value) -> Truth {
    let Some((k, arg)) = c
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
    else {
        return Truth::Unknown;
    };
    let known = |b: Option<bool>| b.map_or(Truth::Unknown, Truth::Known);
    match k.as_str() {
        "Fn::Equals" => match items(arg) {
            [a, b] => known(texts(t, p, a).zip(texts(t, p, b)).map(|(a, b)| a == b)),
            _ => Truth::Unknown,
        },
        "Fn::Contains" => match items(arg) {
            [list, x] => known(
                texts(t, p, list)
                    .zip(texts(t, p, x))
                    .map(|(l, x)| x.len() == 1 && l.contains(&x[0])),
            ),
            _ => Truth::Unknown,
        },
        "Fn::Not" => match truth(t, p, items(arg).first().unwrap_or(&Value::Null)) {
            Truth::Known(b) => Truth::Known(!b),
            Truth::Unknown => Truth::Unknown,
        },
        "Fn::And" | "Fn::Or" => {
            let all: Vec<Truth> = items(arg).iter().map(|c| truth(t, p, c)).collect();
            if all.iter().any(|x| matches!(x, Truth::Unknown)) {
                return Truth::Unknown;
            }
            let v = all.iter().map(|x| matches!(x, Truth::Known(true)));
            Truth::Known(if k == "Fn::And" {
                v.clone().all(|b| b)
            } else {
                v.clone().any(|b| b)
            })
        }
        _ => Truth::Unknown,
    }
}

/// Evaluates every rule of the template for these values.
pub fn check(t: &Template, p: &Parameters) -> RulesVerdict {
    let mut out = RulesVerdict::default();
    let Some(rules) = t.section("Rules").as_object() else {
        return out;
    };
    for (name, rule) in rules {
        let applies = match rule.get("RuleCondition") {
            None => Truth::Known(true),
            Some(c) => truth(t, p, c),
        };
        match applies {
            Truth::Known(false) => continue,
            Truth::Unknown => {
                out.not_evaluated.push(name.clone());
                continue;
            }
            Truth::Known(true) => {}
        }
        for a in rule.get("Assertions").map(items).unwrap_or_default() {
            match truth(t, p, a.get("Assert").unwrap_or(&Value::Null)) {
                Truth::Known(true) => {}
                Truth::Known(false) => out.refused.push(Refusal {
                    rule: name.clone(),
                    description: a
                        .get("AssertDescription")
                        .and_then(Value::as_str)
                        .unwrap_or("(no AssertDescription)")
                        .to_string(),
                }),
                Truth::Unknown => {
                    if !out.not_evaluated.contains(name) {
                        out.not_evaluated.push(name.clone());
                    }
                }
            }
        }
    }
    out
}
