//! Where two resolved property values differ, leaf by leaf (pure).
//!
//! Lists whose items are objects all carrying one distinct identifying key (`Name`, `Key`,
//! `Id`, `CapacityProvider`, `ContainerName`, `SourceVolume`) are matched by it, so one
//! environment variable inserted in the middle of a list is one change named after the variable,
//! not every later item shifted by one. Other lists of equal length are matched by position;
//! lists of different lengths that have no key differ as a whole.

use serde_json::Value;

/// One step of a path into a property.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    /// An object key.
    Key(String),
    /// A list item matched by its identifying field's value.
    Named(String),
    /// A list item matched by position.
    Index(usize),
}

/// A path: its first segment is the property name.
pub type Path = Vec<Seg>;

/// `ContainerDefinitions[orderbroker].Environment[HTTP_IDLE_TIMEOUT_SECONDS]`.
pub fn render(path: &[Seg]) -> String {
    write(path, false)
}

/// The path's shape: list items as `[]` whatever matched them (`ContainerDefinitions[].Environment[]`),
/// what the classification rules and the schemas' JSON pointers are written against.
pub fn shape(path: &[Seg]) -> String {
    write(path, true)
}

fn write(path: &[Seg], shape: bool) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            _ if shape => out.push_str("[]"),
            Seg::Named(n) => out.push_str(&format!("[{n}]")),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A schema's JSON pointer (`/properties/Tags/*/Key`) as a shape (`Tags[].Key`); `None` when it
/// does not point into `/properties`.
pub fn pointer_shape(pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix("/properties/")?;
    let mut out = String::new();
    for seg in rest.split('/') {
        if seg == "*" || seg.parse::<usize>().is_ok() {
            out.push_str("[]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    Some(out)
}

/// One difference: the path, and the value on each side (`Null` where absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub path: Path,
    pub old: Value,
    pub new: Value,
}

const ITEM_KEYS: [&str; 6] = [
    "Name",
    "Key",
    "Id",
    "CapacityProvider",
    "ContainerName",
    "SourceVolume",
];

/// Every leaf where `old` and `new` differ, under `prefix`.
pub fn leaves(prefix: Path, old: &Value, new: &Value) -> Vec<Leaf> {
    let mut out = Vec::new();
    walk(prefix, old, new, &mut out);
    out
}

fn walk(path: Path, old: &Value, new: &Value, out: &mut Vec<Leaf>) {
    if old == new || same_scalar(old, new) {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let mut p = path.clone();
                p.push(Seg::Key(k.clone()));
                walk(
                    p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => match item_key(a, b) {
            Some(key) if reordered(a, b, key) => out.push(Leaf {
                path,
                old: old.clone(),
                new: new.clone(),
            }),
            Some(key) => {
                let name = |v: &Value| v.get(key).map(scalar).unwrap_or_default();
                let mut names: Vec<String> = a.iter().chain(b.iter()).map(name).collect();
                names.sort();
                names.dedup();
                for n in names {
                    let find = |l: &[Value]| l.iter().find(|v| name(v) == n).cloned();
                    let mut p = path.clone();
                    p.push(Seg::Named(n.clone()));
                    walk(
                        p,
                        &find(a).unwrap_or(Value::Null),
                        &find(b).unwrap_or(Value::Null),
                        out,
                    );
                }
            }
            None if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    let mut p = path.clone();
                    p.push(Seg::Index(i));
                    walk(p, x, y, out);
                }
            }
            None => out.push(Leaf {
                path,
                old: old.clone(),
                new: new.clone(),
            }),
        },
        _ => out.push(Leaf {
            path,
            old: old.clone(),
            new: new.clone(),
        }),
    }
}

/// Whether the items both lists have come in another order: CloudFormation sends a list as
/// written, so a reorder is a change of the whole list.
fn reordered(a: &[Value], b: &[Value], key: &str) -> bool {
    let names = |l: &[Value]| -> Vec<String> {
        l.iter()
            .map(|v| v.get(key).map(scalar).unwrap_or_default())
            .collect()
    };
    let (na, nb) = (names(a), names(b));
    let common_a: Vec<&String> = na.iter().filter(|n| nb.contains(n)).collect();
    let common_b: Vec<&String> = nb.iter().filter(|n| na.contains(n)).collect();
    common_a != common_b
}

/// `60` and `"60"`, `true` and `"true"`: CloudFormation passes template scalars to a resource
/// as the schema's type, so a `Ref` to a Number parameter (text) and a literal number are one
/// value.
fn same_scalar(a: &Value, b: &Value) -> bool {
    let plain = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    plain(a) && plain(b) && scalar(a) == scalar(b)
}

/// The field that identifies every item of both lists, each value once per list.
fn item_key(a: &[Value], b: &[Value]) -> Option<&'static str> {
    if a.is_empty() && b.is_empty() {
        return None;
    }
    ITEM_KEYS.into_iter().find(|k| {
        [a, b].iter().all(|l| {
            let mut seen = std::collections::BTreeSet::new();
            l.iter().all(|v| {
                v.get(*k)
                    .filter(|x| x.is_string() || x.is_number())
                    .is_some_and(|x| seen.insert(scalar(x)))
            })
        })
    })
}

/// A value as text (strings without quotes).
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value at a path (`Null` where there is none).
pub fn at(value: &Value, path: &[Seg]) -> Value {
    let mut v = value;
    for s in path {
        let next = match (s, v) {
            (Seg::Key(k), Value::Object(m)) => m.get(k),
            (Seg::Index(i), Value::Array(a)) => a.get(*i),
            (Seg::Named(n), Value::Array(a)) => a.iter().find(|item| {
                ITEM_KEYS
                    .iter()
                    .any(|k| item.get(*k).map(scalar).as_deref() == Some(n.as_str()))
            }),
            _ => None,
        };
        match next {
            Some(x) => v = x,
            None => return Value::Null,
        }
    }
    v.clone()
}

/// The values found at a shape (`Tags[].Key`) inside a property value whose path is `base`
/// (a shape too), in document order; empty when the shape is not under `base`.
pub fn values_at<'v>(value: &'v Value, shape: &str) -> Vec<&'v Value> {
    let mut out = vec![value];
    for part in shape.split('.') {
        let (key, lists) = match part.find('[') {
            Some(i) => (&part[..i], part[i..].matches("[]").count()),
            None => (part, 0),
        };
        out = out
            .into_iter()
            .filter_map(|v| if key.is_empty() { Some(v) } else { v.get(key) })
            .collect();
        for _ in 0..lists {
            out = out
                .into_iter()
                .flat_map(|v| {
                    v.as_array()
                        .map(|a| a.iter().collect())
                        .unwrap_or_else(Vec::new)
                })
                .collect();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_items_are_matched_by_name() {
        let old = json!([{"Name": "A", "Value": "1"}, {"Name": "C", "Value": "3"}]);
        let new = json!([{"Name": "A", "Value": "1"}, {"Name": "B", "Value": "2"}, {"Name": "C", "Value": "3"}]);
        let l = leaves(vec![Seg::Key("Environment".into())], &old, &new);
        assert_eq!(l.len(), 1);
        assert_eq!(render(&l[0].path), "Environment[B]");
        assert_eq!(shape(&l[0].path), "Environment[]");
        assert_eq!(l[0].old, Value::Null);
    }

    #[test]
    fn a_reordered_named_list_is_one_change_of_the_whole_list() {
        let old = json!([{"Name": "A", "Value": "1"}, {"Name": "B", "Value": "2"}]);
        let new = json!([{"Name": "B", "Value": "2"}, {"Name": "A", "Value": "1"}]);
        let l = leaves(vec![Seg::Key("Environment".into())], &old, &new);
        assert_eq!(l.len(), 1);
        assert_eq!(render(&l[0].path), "Environment");
    }

    #[test]
    fn unkeyed_lists_by_position_or_whole() {
        let l = leaves(
            vec![Seg::Key("S".into())],
            &json!(["a", "b"]),
            &json!(["a", "c"]),
        );
        assert_eq!(render(&l[0].path), "S[1]");
        let l = leaves(
            vec![Seg::Key("S".into())],
            &json!(["a"]),
            &json!(["a", "c"]),
        );
        assert_eq!(render(&l[0].path), "S");
    }

    #[test]
    fn a_number_and_its_text_are_one_value() {
        assert!(leaves(vec![], &json!({"P": 60}), &json!({"P": "60"})).is_empty());
        assert_eq!(
            leaves(vec![], &json!({"P": 60}), &json!({"P": "61"})).len(),
            1
        );
    }

    #[test]
    fn pointers_and_values_at_shapes() {
        assert_eq!(
            pointer_shape("/properties/Tags/*/Key").unwrap(),
            "Tags[].Key"
        );
        assert_eq!(pointer_shape("/properties/Family").unwrap(), "Family");
        let v = json!({"Tags": [{"Key": "a"}, {"Key": "b"}]});
        assert_eq!(values_at(&v, "Tags[].Key"), vec![&json!("a"), &json!("b")]);
    }
}
