//! The SAM / CloudFormation template as CloudFormation reads it.
//!
//! YAML short-form intrinsics (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) are normalised to their JSON
//! long form (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, `{"Fn::Sub": ...}`), so policy checks
//! and tests see one shape whichever form the author wrote.

use std::path::Path;

use serde_json::{Map, Value};

/// What can go wrong reading a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("template refused before parsing: {0}")]
    Shape(String),
    #[error("unknown YAML tag !{0}: not a CloudFormation intrinsic function")]
    UnknownTag(String),
    #[error("mapping key {0} is not a string")]
    NonStringKey(String),
    #[error("template has no Resources mapping")]
    NoResources,
    #[error("resource {0} has no Type")]
    NoType(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<TemplateError>,
    },
}

/// Short-form tags CloudFormation (and its Rules section) understands.
const INTRINSICS: &[&str] = &[
    "Base64",
    "Cidr",
    "Contains",
    "EachMemberEquals",
    "EachMemberIn",
    "Equals",
    "FindInMap",
    "ForEach",
    "GetAZs",
    "GetAtt",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "And",
    "Or",
    "RefAll",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
    "ValueOf",
    "ValueOfAll",
];

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    doc: Value,
}

/// One resource of a template.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub id: &'a str,
    pub body: &'a Value,
}

static NULL: Value = Value::Null;

impl Template {
    /// Parses template text (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        crate::cfn::check_untrusted(text).map_err(TemplateError::Shape)?;
        let yaml: serde_norway::Value = serde_norway::from_str(text)?;
        Self::from_json(to_json(yaml)?)
    }

    /// A template already in JSON form (long-form intrinsics), e.g. a translator's output.
    pub fn from_json(doc: Value) -> Result<Self, TemplateError> {
        let template = Template { doc };
        let resources = template
            .doc
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or(TemplateError::NoResources)?;
        for (id, body) in resources {
            if body.get("Type").and_then(Value::as_str).is_none() {
                return Err(TemplateError::NoType(id.clone()));
            }
        }
        Ok(template)
    }

    /// Reads and parses a template file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TemplateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| TemplateError::File {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// The whole normalised document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// A top-level section (`Parameters`, `Outputs`, `Rules`, `Globals`, ...), or null.
    pub fn section(&self, name: &str) -> &Value {
        self.doc.get(name).unwrap_or(&NULL)
    }

    /// Resources in template order.
    pub fn resources(&self) -> impl Iterator<Item = Resource<'_>> {
        self.doc["Resources"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.iter())
            .map(|(id, body)| Resource { id, body })
    }

    /// One resource by logical id.
    pub fn resource(&self, id: &str) -> Option<Resource<'_>> {
        self.doc["Resources"].get(id).map(|body| Resource {
            id: self.key(id),
            body,
        })
    }

    /// Resources of one type.
    pub fn resources_of_type<'a>(
        &'a self,
        type_name: &'a str,
    ) -> impl Iterator<Item = Resource<'a>> + 'a {
        self.resources().filter(move |r| r.type_name() == type_name)
    }

    fn key(&self, id: &str) -> &str {
        self.doc["Resources"]
            .as_object()
            .and_then(|m| m.get_key_value(id))
            .map(|(k, _)| k.as_str())
            .unwrap_or_default()
    }
}

impl<'a> Resource<'a> {
    /// `Type`, e.g. `AWS::ECS::Service`.
    pub fn type_name(&self) -> &'a str {
        self.body["Type"].as_str().unwrap_or_default()
    }

    /// `Properties`, or null.
    pub fn properties(&self) -> &'a Value {
        self.body.get("Properties").unwrap_or(&NULL)
    }

    /// A property by dotted path; numeric segments index lists (`LoadBalancers.0.ContainerPort`).
    pub fn prop(&self, path: &str) -> Option<&'a Value> {
        lookup(self.properties(), path)
    }

    /// `DependsOn` as a list of logical ids.
    pub fn depends_on(&self) -> Vec<&'a str> {
        match self.body.get("DependsOn") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `Condition`, if the resource is conditional.
    pub fn condition(&self) -> Option<&'a str> {
        self.body.get("Condition").and_then(Value::as_str)
    }
}

/// Follows a dotted path (numeric segments index arrays).
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, seg| match v {
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        Value::Object(m) => m.get(seg),
        _ => None,
    })
}

/// Every logical id a value refers to through `Ref`, `Fn::GetAtt` or `${...}` in `Fn::Sub`.
pub fn references(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_refs(value, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("Ref", Value::String(s)) => out.push(s.clone()),
                    ("Fn::GetAtt", Value::Array(a)) => {
                        if let Some(s) = a.first().and_then(Value::as_str) {
                            out.push(s.to_string());
                        }
                    }
                    ("Fn::Sub", Value::String(s)) => sub_refs(s, out),
                    ("Fn::Sub", Value::Array(a)) => {
                        if let Some(s) = a.first().and_then(Value::as_str) {
                            sub_refs(s, out);
                        }
                        a.iter().skip(1).for_each(|v| collect_refs(v, out));
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn sub_refs(s: &str, out: &mut Vec<String>) {
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            out.push(name.split('.').next().unwrap_or(name).to_string());
        }
        rest = &after[end + 1..];
    }
}

fn to_json(v: serde_norway::Value) -> Result<Value, TemplateError> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(TemplateError::NonStringKey(format!("{other:?}"))),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            let (key, value) = match name {
                "Ref" => ("Ref".to_string(), inner),
                "Condition" => ("Condition".to_string(), inner),
                "GetAtt" => {
                    let value = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((res, attr)) => {
                                Value::Array(vec![Value::from(res), Value::from(attr)])
                            }
                            None => Value::Array(vec![Value::from(s)]),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), value)
                }
                other if INTRINSICS.contains(&other) => (format!("Fn::{other}"), inner),
                other => return Err(TemplateError::UnknownTag(other.to_string())),
            };
            let mut m = Map::new();
            m.insert(key, value);
            Value::Object(m)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SMALL: &str = r#"
Parameters:
  Name: {Type: String}
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    DependsOn: Other
    Properties:
      BucketName: !Sub "${Name}-${Other.Arn}-${!Literal}"
      Tags:
        - {Key: A, Value: !Ref Name}
        - {Key: B, Value: !GetAtt Other.Arn}
        - {Key: C, Value: !If [Cond, !Select [0, !Split [",", !Ref Name]], x]}
  Other:
    Type: AWS::SNS::Topic
"#;

    #[test]
    fn short_forms_become_long_forms() {
        let t = Template::parse(SMALL).unwrap();
        let b = t.resource("Bucket").unwrap();
        assert_eq!(b.type_name(), "AWS::S3::Bucket");
        assert_eq!(b.prop("Tags.0.Value"), Some(&json!({"Ref": "Name"})));
        assert_eq!(
            b.prop("Tags.1.Value"),
            Some(&json!({"Fn::GetAtt": ["Other", "Arn"]}))
        );
        assert_eq!(
            b.prop("Tags.2.Value"),
            Some(
                &json!({"Fn::If": ["Cond", {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "Name"}]}]}, "x"]})
            )
        );
        assert_eq!(b.depends_on(), vec!["Other"]);
        assert_eq!(references(b.properties()), vec!["Name", "Other"]);
    }

    #[test]
    fn bad_templates_are_named_errors() {
        assert!(matches!(
            Template::parse("Resources:\n  X: {Type: A, Properties: {P: !Bogus 1}}\n"),
            Err(TemplateError::UnknownTag(t)) if t == "Bogus"
        ));
        assert!(matches!(
            Template::parse("Parameters: {}\n"),
            Err(TemplateError::NoResources)
        ));
        assert!(matches!(
            Template::parse("Resources:\n  X: {Properties: {}}\n"),
            Err(TemplateError::NoType(id)) if id == "X"
        ));
        assert!(matches!(
            Template::parse("Resources: [\n"),
            Err(TemplateError::Yaml(_))
        ));
    }
}
