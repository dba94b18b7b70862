//! samconfig.toml: the one source of the stack tags and of the deploy parameters.
//!
//! `sam deploy --parameter-overrides` REPLACES samconfig's `parameter_overrides` instead of merging
//! them (aws-sam-cli issue 2380). So `make deploy` never passes a partial list: it asks this module
//! for samconfig's whole list plus the values derived here (`CostCenter` from the stack tags, and
//! any per-deploy value), and passes that.

use std::path::Path;

/// What can go wrong reading samconfig.toml.
#[derive(Debug, thiserror::Error)]
pub enum SamConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// toml's own text starts "TOML parse error at line N".
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: Box<SamConfigError>,
    },
    #[error("refused before parsing: {0}")]
    Shape(String),
    #[error("samconfig has no [{env}.deploy.parameters] table")]
    NoDeployParameters { env: String },
    #[error("samconfig {field}: expected KEY=VALUE pairs, found {found:?}")]
    BadPair { field: &'static str, found: String },
    #[error("samconfig {field}: unterminated quote in {found:?}")]
    Unterminated { field: &'static str, found: String },
    #[error("samconfig {field} must be a string or a list of strings")]
    BadField { field: &'static str },
    #[error("the stack tags in samconfig have no {0} tag (it is the source of the {0} parameter)")]
    MissingTag(&'static str),
    #[error(
        "samconfig parameter_overrides sets CostCenter={param:?} but the stack tag says {tag:?}: \
         remove CostCenter from parameter_overrides, the tag is its only source"
    )]
    CostCenterConflict { param: String, tag: String },
    #[error(
        "--set CostCenter={value:?} disagrees with the stack tag CostCenter={tag:?}, its only source: change the tag in samconfig.toml instead"
    )]
    CostCenterSet { value: String, tag: String },
    #[error("value for {key} contains a double quote, which sam cannot pass through: {value:?}")]
    Unquotable { key: String, value: String },
}

/// `Key=Value` pairs in the order written.
pub type Pairs = Vec<(String, String)>;

/// The `[<env>.deploy.parameters]` part of samconfig.toml.
#[derive(Debug, Clone)]
pub struct SamConfig {
    deploy: toml::Table,
    env: String,
}

impl SamConfig {
    /// Parses samconfig text for one config environment (`default` normally).
    pub fn parse(text: &str, env: &str) -> Result<Self, SamConfigError> {
        crate::cfn::check_untrusted(text).map_err(SamConfigError::Shape)?;
        let root: toml::Table = toml::from_str(text)?;
        let deploy = root
            .get(env)
            .and_then(|e| e.get("deploy"))
            .and_then(|d| d.get("parameters"))
            .and_then(|p| p.as_table())
            .cloned()
            .ok_or_else(|| SamConfigError::NoDeployParameters {
                env: env.to_string(),
            })?;
        Ok(SamConfig {
            deploy,
            env: env.to_string(),
        })
    }

    /// Reads samconfig.toml.
    pub fn load(path: impl AsRef<Path>, env: &str) -> Result<Self, SamConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SamConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, env).map_err(|e| SamConfigError::File {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// The config environment this was read for.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// A plain string setting (`stack_name`, `region`, ...).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.deploy.get(key).and_then(|v| v.as_str())
    }

    /// The stack tags (`tags`).
    pub fn stack_tags(&self) -> Result<Pairs, SamConfigError> {
        self.pairs("tags")
    }

    /// `parameter_overrides` exactly as samconfig lists them.
    pub fn parameter_overrides(&self) -> Result<Pairs, SamConfigError> {
        self.pairs("parameter_overrides")
    }

    /// The full override list for `sam deploy`: samconfig's own overrides, then `CostCenter`
    /// from the stack tags, then `extra` (later keys replace earlier ones, order kept).
    pub fn deploy_overrides(&self, extra: &[(String, String)]) -> Result<Pairs, SamConfigError> {
        let tags = self.stack_tags()?;
        let cost_center = tags
            .iter()
            .find(|(k, _)| k == "CostCenter")
            .map(|(_, v)| v.clone())
            .ok_or(SamConfigError::MissingTag("CostCenter"))?;
        let mut out = self.parameter_overrides()?;
        if let Some((_, param)) = out.iter().find(|(k, _)| k == "CostCenter") {
            if *param != cost_center {
                return Err(SamConfigError::CostCenterConflict {
                    param: param.clone(),
                    tag: cost_center,
                });
            }
        }
        upsert(&mut out, "CostCenter", &cost_center);
        for (k, v) in extra {
            if k == "CostCenter" && *v != cost_center {
                return Err(SamConfigError::CostCenterSet {
                    value: v.clone(),
                    tag: cost_center,
                });
            }
            upsert(&mut out, k, v);
        }
        Ok(out)
    }

    fn pairs(&self, field: &'static str) -> Result<Pairs, SamConfigError> {
        match self.deploy.get(field) {
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => parse_pairs(field, s),
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    let s = item.as_str().ok_or(SamConfigError::BadField { field })?;
                    out.extend(parse_pairs(field, s)?);
                }
                Ok(out)
            }
            Some(_) => Err(SamConfigError::BadField { field }),
        }
    }
}

fn upsert(list: &mut Pairs, key: &str, value: &str) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => list.push((key.to_string(), value.to_string())),
    }
}

/// Parses `Key=Value Key2="Value with spaces"` as SAM writes it.
pub fn parse_pairs(field: &'static str, s: &str) -> Result<Pairs, SamConfigError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(SamConfigError::BadPair {
                field,
                found: s.to_string(),
            });
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(SamConfigError::Unterminated {
                    field,
                    found: s.to_string(),
                });
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// Renders pairs as one `Key="Value" ...` string for `--parameter-overrides` or `--tags`.
pub fn render_pairs(pairs: &[(String, String)]) -> Result<String, SamConfigError> {
    let mut parts = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if v.contains('"') {
            return Err(SamConfigError::Unquotable {
                key: k.clone(),
                value: v.clone(),
            });
        }
        parts.push(format!("{k}=\"{v}\""));
    }
    Ok(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Pairs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CONFIG: &str = r#"
version = 0.1
[default.deploy.parameters]
stack_name = "orderbroker"
tags = "CostCenter=\"TRD 4410\" Project=\"TradingPlatform\" Service=\"OrderBroker\""
parameter_overrides = "MinTasks=\"3\" SreEmail=\"sre@example.com\" Empty=\"\""
"#;

    #[test]
    fn pairs_parse_quoted_and_bare_values() {
        assert_eq!(
            parse_pairs("tags", r#"A=1 B="two words"  C="" D=x=y"#).unwrap(),
            p(&[("A", "1"), ("B", "two words"), ("C", ""), ("D", "x=y")])
        );
        assert!(matches!(
            parse_pairs("tags", "A"),
            Err(SamConfigError::BadPair { .. })
        ));
        assert!(matches!(
            parse_pairs("tags", "A=\"open"),
            Err(SamConfigError::Unterminated { .. })
        ));
    }

    #[test]
    fn deploy_overrides_keep_everything_and_add_cost_center_from_the_tag() {
        let c = SamConfig::parse(CONFIG, "default").unwrap();
        let all = c
            .deploy_overrides(&p(&[("TagPolicyNonce", "42"), ("MinTasks", "4")]))
            .unwrap();
        assert_eq!(
            all,
            p(&[
                ("MinTasks", "4"),
                ("SreEmail", "sre@example.com"),
                ("Empty", ""),
                ("CostCenter", "TRD 4410"),
                ("TagPolicyNonce", "42"),
            ])
        );
        assert_eq!(
            render_pairs(&all).unwrap(),
            r#"MinTasks="4" SreEmail="sre@example.com" Empty="" CostCenter="TRD 4410" TagPolicyNonce="42""#
        );
    }

    #[test]
    fn a_second_cost_center_that_disagrees_is_refused() {
        let text = CONFIG.replace("Empty=", "CostCenter=\\\"OTHER\\\" Empty=");
        let c = SamConfig::parse(&text, "default").unwrap();
        assert!(matches!(
            c.deploy_overrides(&[]),
            Err(SamConfigError::CostCenterConflict { .. })
        ));
    }

    #[test]
    fn missing_pieces_are_named() {
        assert!(matches!(
            SamConfig::parse(CONFIG, "prod"),
            Err(SamConfigError::NoDeployParameters { env }) if env == "prod"
        ));
        let no_tag = CONFIG.replace("CostCenter=\\\"TRD 4410\\\" ", "");
        let c = SamConfig::parse(&no_tag, "default").unwrap();
        assert!(matches!(
            c.deploy_overrides(&[]),
            Err(SamConfigError::MissingTag("CostCenter"))
        ));
        assert!(render_pairs(&p(&[("A", "say \"hi\"")])).is_err());
    }
}
