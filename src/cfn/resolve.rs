//! Template values resolved the way CloudFormation resolves them for given parameter values
//! (pure): `Ref` to a parameter becomes its value, `Fn::Sub`, `Fn::Join`, `Fn::Select`,
//! `Fn::Split`, `Fn::If` (with the template's `Conditions`) are computed, and what only exists
//! once the stack does (`Ref` to a resource, `Fn::GetAtt`, pseudo parameters) becomes a stable
//! symbolic text: `Resource`, `Resource.Attribute`, `AWS::StackName`. `Ref: AWS::NoValue`
//! removes the property, as in CloudFormation ("Intrinsic function reference", Ref, pseudo
//! parameters; "Condition functions").

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::cfn::template::Template;

/// What cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("parameter {0} has no value and no Default")]
    NoValue(String),
    #[error("{0} is not a parameter, resource or pseudo parameter of the template")]
    UnknownRef(String),
    #[error("condition {0} is not in the template's Conditions")]
    UnknownCondition(String),
    #[error("{0} is not resolved by this model")]
    Unsupported(String),
    #[error("{function}: {what}")]
    Malformed {
        function: &'static str,
        what: String,
    },
}

/// Parameter values: each `Default`, replaced by the overrides given.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    values: BTreeMap<String, String>,
    /// Resources CloudFormation replaces in the update being judged: their `Ref` and
    /// `Fn::GetAtt` resolve to a marked text ([`REPLACED`] after the logical id), so a value that
    /// refers to one differs from the same value before the update (src/update).
    replaced: std::collections::BTreeSet<String>,
    /// Physical ids of a deployed stack's resources: `Ref` to one of them (not replaced)
    /// resolves to it, as in CloudFormation.
    physical: BTreeMap<String, String>,
}

/// The mark after a replaced resource's logical id in a resolved value.
pub const REPLACED: char = '\u{1}';

const NO_VALUE: &str = "\u{0}AWS::NoValue";

impl Parameters {
    /// The template's defaults with `overrides` applied; an override the template does not
    /// declare is ignored (as `sam deploy` passes a full list to every template version).
    pub fn new(t: &Template, overrides: &[(String, String)]) -> Self {
        let mut values = BTreeMap::new();
        if let Some(params) = t.section("Parameters").as_object() {
            for (name, p) in params {
                let default = match p.get("Default") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(Value::Array(a)) => Some(
                        a.iter()
                            .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    _ => None,
                };
                if let Some(d) = default {
                    values.insert(name.clone(), d);
                }
            }
            for (k, v) in overrides {
                if params.contains_key(k) {
                    values.insert(k.clone(), v.clone());
                }
            }
        }
        Parameters {
            values,
            replaced: Default::default(),
            physical: BTreeMap::new(),
        }
    }

    /// The same values, `Ref` to a resource of `physical` resolving to its physical id.
    pub fn with_physical(&self, physical: &BTreeMap<String, String>) -> Self {
        Parameters {
            physical: physical.clone(),
            ..self.clone()
        }
    }

    /// The same values, with `replaced` resources' references marked ([`REPLACED`]).
    pub fn with_replaced(&self, replaced: &std::collections::BTreeSet<String>) -> Self {
        Parameters {
            replaced: replaced.clone(),
            ..self.clone()
        }
    }

    /// The same (pseudo parameters, physical ids, replaced marks kept) with `pairs` over the
    /// values of the parameters `t` declares.
    pub fn overridden(&self, t: &Template, pairs: &[(String, String)]) -> Self {
        let mut out = self.clone();
        let declared = t.section("Parameters");
        for (k, v) in pairs {
            if declared.get(k).is_some() {
                out.values.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// The same values with pseudo parameters given values (`AWS::Region`, `AWS::Partition`,
    /// `AWS::URLSuffix`, ...); the others stay symbolic.
    pub fn with_pseudo(&self, pseudo: &[(&str, &str)]) -> Self {
        let mut out = self.clone();
        for (k, v) in pseudo {
            if k.starts_with("AWS::") {
                out.values.insert(k.to_string(), v.to_string());
            }
        }
        out
    }

    /// Every parameter value.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    fn mark(&self, id: &str) -> String {
        if self.replaced.contains(id) {
            format!("{id}{REPLACED}")
        } else {
            id.to_string()
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A value with every intrinsic resolved.
    pub fn resolve(&self, t: &Template, v: &Value) -> Result<Value, ResolveError> {
        let out = self.value(t, v)?;
        Ok(if out.as_str() == Some(NO_VALUE) {
            Value::Null
        } else {
            out
        })
    }

    fn value(&self, t: &Template, v: &Value) -> Result<Value, ResolveError> {
        match v {
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().expect("one entry");
                if k == "Ref" || k.starts_with("Fn::") {
                    return self.intrinsic(t, k, arg);
                }
                self.object(t, m)
            }
            Value::Object(m) => self.object(t, m),
            Value::Array(a) => {
                let mut out = Vec::new();
                for item in a {
                    let r = self.value(t, item)?;
                    if r.as_str() != Some(NO_VALUE) {
                        out.push(r);
                    }
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn object(&self, t: &Template, m: &Map<String, Value>) -> Result<Value, ResolveError> {
        let mut out = Map::new();
        for (k, item) in m {
            let r = self.value(t, item)?;
            if r.as_str() != Some(NO_VALUE) {
                out.insert(k.clone(), r);
            }
        }
        Ok(Value::Object(out))
    }

    fn text(
        &self,
        t: &Template,
        v: &Value,
        function: &'static str,
    ) -> Result<String, ResolveError> {
        match self.value(t, v)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(ResolveError::Malformed {
                function,
                what: format!("expected a text, found {other}"),
            }),
        }
    }

    fn name(&self, t: &Template, name: &str) -> Result<String, ResolveError> {
        if name == "AWS::NoValue" {
            return Ok(NO_VALUE.to_string());
        }
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        if t.section("Parameters").get(name).is_some() {
            return Err(ResolveError::NoValue(name.to_string()));
        }
        if name.starts_with("AWS::") {
            return Ok(name.to_string());
        }
        if t.resource(name).is_some() {
            return Ok(match self.physical.get(name) {
                Some(id) if !self.replaced.contains(name) => id.clone(),
                _ => self.mark(name),
            });
        }
        Err(ResolveError::UnknownRef(name.to_string()))
    }

    fn intrinsic(&self, t: &Template, k: &str, arg: &Value) -> Result<Value, ResolveError> {
        let bad = |function: &'static str, what: &str| ResolveError::Malformed {
            function,
            what: what.to_string(),
        };
        match k {
            "Ref" => {
                let name = arg.as_str().ok_or_else(|| bad("Ref", "not a name"))?;
                Ok(Value::String(self.name(t, name)?))
            }
            "Fn::GetAtt" => {
                let mut parts: Vec<String> = match arg {
                    Value::Array(a) => a
                        .iter()
                        .map(|p| self.text(t, p, "Fn::GetAtt"))
                        .collect::<Result<_, _>>()?,
                    Value::String(s) => s.splitn(2, '.').map(str::to_string).collect(),
                    _ => return Err(bad("Fn::GetAtt", "not [resource, attribute]")),
                };
                if let Some(first) = parts.first_mut() {
                    *first = self.mark(first);
                }
                Ok(Value::String(parts.join(".")))
            }
            "Fn::Sub" => self.sub(t, arg).map(Value::String),
            "Fn::Join" => {
                let [sep, list] = arg.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    return Err(bad("Fn::Join", "not [delimiter, list]"));
                };
                let sep = self.text(t, sep, "Fn::Join")?;
                let items = self.list(t, list, "Fn::Join")?;
                Ok(Value::String(items.join(&sep)))
            }
            "Fn::Select" => {
                let [i, list] = arg.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    return Err(bad("Fn::Select", "not [index, list]"));
                };
                let i: usize = self
                    .text(t, i, "Fn::Select")?
                    .parse()
                    .map_err(|_| bad("Fn::Select", "index is not a number"))?;
                let items = self.list(t, list, "Fn::Select")?;
                items
                    .get(i)
                    .map(|s| Value::String(s.clone()))
                    .ok_or_else(|| bad("Fn::Select", "index out of range"))
            }
            "Fn::Split" => {
                let [sep, s] = arg.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    return Err(bad("Fn::Split", "not [delimiter, text]"));
                };
                let sep = self.text(t, sep, "Fn::Split")?;
                let s = self.text(t, s, "Fn::Split")?;
                Ok(Value::Array(
                    s.split(sep.as_str()).map(Value::from).collect(),
                ))
            }
            "Fn::If" => {
                let [c, yes, no] = arg.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    return Err(bad("Fn::If", "not [condition, then, else]"));
                };
                let c = c
                    .as_str()
                    .ok_or_else(|| bad("Fn::If", "condition is not a name"))?;
                if self.condition(t, c)? {
                    self.value(t, yes)
                } else {
                    self.value(t, no)
                }
            }
            "Fn::FindInMap" => {
                let [map, top, second] = arg.as_array().map(Vec::as_slice).unwrap_or_default()
                else {
                    return Err(bad(
                        "Fn::FindInMap",
                        "not [map, top-level key, second-level key]",
                    ));
                };
                let map = self.text(t, map, "Fn::FindInMap")?;
                let top = self.text(t, top, "Fn::FindInMap")?;
                let second = self.text(t, second, "Fn::FindInMap")?;
                let found = t.section("Mappings")[&map][&top][&second].clone();
                if found.is_null() {
                    return Err(bad(
                        "Fn::FindInMap",
                        &format!("Mappings has no {map}.{top}.{second}"),
                    ));
                }
                Ok(found)
            }
            // The encoding is CloudFormation's; the model compares the text it encodes.
            "Fn::Base64" => Ok(Value::String(format!(
                "Fn::Base64({})",
                self.text(t, arg, "Fn::Base64")?
            ))),
            // The zones exist only in an account: the same region gives the same list.
            "Fn::GetAZs" => Ok(Value::String(format!(
                "Fn::GetAZs({})",
                self.text(t, arg, "Fn::GetAZs")?
            ))),
            other => Err(ResolveError::Unsupported(other.to_string())),
        }
    }

    fn list(&self, t: &Template, v: &Value, f: &'static str) -> Result<Vec<String>, ResolveError> {
        match self.value(t, v)? {
            Value::Array(a) => a
                .iter()
                .map(|x| self.text(t, x, f))
                .collect::<Result<_, _>>(),
            Value::String(s) => Ok(s.split(',').map(str::to_string).collect()),
            _ => Err(ResolveError::Malformed {
                function: f,
                what: "not a list".into(),
            }),
        }
    }

    fn sub(&self, t: &Template, arg: &Value) -> Result<String, ResolveError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(a) if a.len() == 2 => (
                a[0].as_str().ok_or(ResolveError::Malformed {
                    function: "Fn::Sub",
                    what: "template is not a text".into(),
                })?,
                a[1].as_object(),
            ),
            _ => {
                return Err(ResolveError::Malformed {
                    function: "Fn::Sub",
                    what: "not a text or [text, variables]".into(),
                })
            }
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or(ResolveError::Malformed {
                function: "Fn::Sub",
                what: format!("unclosed ${{ in {text:?}"),
            })?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.text(t, v, "Fn::Sub")?);
            } else if name.contains('.') && !name.starts_with("AWS::") {
                let (id, attr) = name.split_once('.').unwrap_or((name, ""));
                out.push_str(&format!("{}.{attr}", self.mark(id)));
            } else {
                out.push_str(&self.name(t, name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A named condition of the template's `Conditions`.
    pub fn condition(&self, t: &Template, name: &str) -> Result<bool, ResolveError> {
        let c = t
            .section("Conditions")
            .get(name)
            .ok_or_else(|| ResolveError::UnknownCondition(name.to_string()))?;
        self.truth(t, c)
    }

    fn truth(&self, t: &Template, c: &Value) -> Result<bool, ResolveError> {
        let (k, arg) = c
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
            .ok_or(ResolveError::Malformed {
                function: "Condition",
                what: format!("{c} is not a condition function"),
            })?;
        let items = arg.as_array().map(Vec::as_slice).unwrap_or_default();
        match k.as_str() {
            "Condition" => self.condition(t, arg.as_str().unwrap_or_default()),
            "Fn::Equals" => match items {
                [a, b] => Ok(self.text(t, a, "Fn::Equals")? == self.text(t, b, "Fn::Equals")?),
                _ => Err(ResolveError::Malformed {
                    function: "Fn::Equals",
                    what: "not two values".into(),
                }),
            },
            "Fn::Not" => Ok(!self.truth(t, items.first().unwrap_or(&Value::Null))?),
            "Fn::And" => items
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.truth(t, c)?)),
            "Fn::Or" => items
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.truth(t, c)?)),
            other => Err(ResolveError::Unsupported(other.to_string())),
        }
    }
}

/// What is wrong with parameter values for a template, each named: a name the template does
/// not declare (`sam deploy` would fail on it), a Number that is not one or is outside
/// MinValue/MaxValue, a value outside AllowedValues, an empty value for a parameter without a
/// Default, and MinTasks above MaxTasks (this template's one cross-parameter rule).
pub fn check_values(t: &Template, pairs: &[(String, String)]) -> Vec<String> {
    let declared = t.section("Parameters");
    let mut out = Vec::new();
    for (k, v) in pairs {
        let Some(p) = declared.get(k) else {
            out.push(format!("{k} is not a parameter of the template"));
            continue;
        };
        if v.is_empty() && p.get("Default").is_none() {
            out.push(format!("{k} is required and empty"));
            continue;
        }
        if p.get("Type").and_then(Value::as_str) == Some("Number") {
            let Ok(n) = v.trim().parse::<f64>() else {
                out.push(format!("{k}={v:?} is not a number"));
                continue;
            };
            let bound = |key: &str| {
                p.get(key)
                    .and_then(|b| b.as_f64().or_else(|| b.as_str()?.parse().ok()))
            };
            if bound("MinValue").is_some_and(|min| n < min)
                || bound("MaxValue").is_some_and(|max| n > max)
            {
                out.push(format!(
                    "{k}={v} is outside {}..={}",
                    bound("MinValue").map_or("-".into(), |b| b.to_string()),
                    bound("MaxValue").map_or("-".into(), |b| b.to_string())
                ));
            }
        }
        if let Some(allowed) = p.get("AllowedValues").and_then(Value::as_array) {
            let texts: Vec<String> = allowed
                .iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| a.to_string())
                })
                .collect();
            if !texts.iter().any(|a| a == v) {
                out.push(format!("{k}={v:?} is not one of {}", texts.join(", ")));
            }
        }
    }
    let p = Parameters::new(t, pairs);
    let number = |k: &str| p.get(k).and_then(|v| v.parse::<f64>().ok());
    if let (Some(min), Some(max)) = (number("MinTasks"), number("MaxTasks")) {
        if min > max {
            out.push(format!("MinTasks {min} is above MaxTasks {max}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: &str = r#"
Parameters:
  Rate: {Type: Number, Default: 2}
  Scheme: {Type: String, Default: internal}
Conditions:
  Public: !Equals [!Ref Scheme, internet-facing]
  Private: !Not [!Condition Public]
Resources:
  Tg: {Type: AWS::ElasticLoadBalancingV2::TargetGroup}
  A:
    Type: AWS::CloudWatch::Alarm
    Properties:
      E: !Sub "x * ${Rate} ${Tg.TargetGroupFullName} ${!Literal} ${AWS::StackName}"
      D: !GetAtt Tg.TargetGroupFullName
      I: !If [Public, yes, !Ref AWS::NoValue]
      J: !Join ["-", [a, !Ref Rate, !Select [1, !Split [",", "p,q"]]]]
"#;

    #[test]
    fn intrinsics_resolve_with_defaults_and_overrides() {
        let t = Template::parse(T).unwrap();
        let p = Parameters::new(
            &t,
            &[("Rate".into(), "5".into()), ("Nope".into(), "1".into())],
        );
        let a = t.resource("A").unwrap();
        let r = p.resolve(&t, a.properties()).unwrap();
        assert_eq!(
            r,
            json!({"E": "x * 5 Tg.TargetGroupFullName ${Literal} AWS::StackName",
                   "D": "Tg.TargetGroupFullName", "J": "a-5-q"})
        );
        assert!(p.condition(&t, "Private").unwrap());
        let public = Parameters::new(&t, &[("Scheme".into(), "internet-facing".into())]);
        assert_eq!(
            public.resolve(&t, a.prop("I").unwrap()).unwrap(),
            json!("yes")
        );
        assert!(matches!(
            p.resolve(&t, &json!({"Ref": "Missing"})),
            Err(ResolveError::UnknownRef(_))
        ));
        assert!(matches!(
            p.resolve(&t, &json!({"Fn::ImportValue": "x"})),
            Err(ResolveError::Unsupported(_))
        ));
    }

    #[test]
    fn physical_ids_pseudo_parameters_mappings_and_replaced_marks() {
        let t = Template::parse(
            r#"
Mappings:
  Acct: {us-east-2: {Id: "033677994240"}}
Resources:
  Tg: {Type: AWS::ElasticLoadBalancingV2::TargetGroup}
  A:
    Type: AWS::CloudWatch::Alarm
    Properties:
      R: !Ref Tg
      G: !GetAtt Tg.Arn
      S: !Sub "${Tg}/${Tg.Arn}"
      M: !FindInMap [Acct, !Ref AWS::Region, Id]
"#,
        )
        .unwrap();
        let props = t.resource("A").unwrap().properties().clone();
        let phys = BTreeMap::from([("Tg".to_string(), "arn:tg/1".to_string())]);
        let p = Parameters::new(&t, &[])
            .with_pseudo(&[("AWS::Region", "us-east-2")])
            .with_physical(&phys);
        assert_eq!(
            p.resolve(&t, &props).unwrap(),
            json!({"R": "arn:tg/1", "G": "Tg.Arn", "S": "arn:tg/1/Tg.Arn", "M": "033677994240"})
        );
        // A replaced resource: every reference to it is marked, its physical id no longer holds.
        let replaced = std::collections::BTreeSet::from(["Tg".to_string()]);
        let m = p.with_replaced(&replaced);
        let mark = REPLACED;
        assert_eq!(
            m.resolve(&t, &props).unwrap(),
            json!({"R": format!("Tg{mark}"), "G": format!("Tg{mark}.Arn"),
                   "S": format!("Tg{mark}/Tg{mark}.Arn"), "M": "033677994240"})
        );
    }
}
