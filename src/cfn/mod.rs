//! CloudFormation and SAM: the template as CloudFormation reads it, samconfig.toml, and the
//! custom-resource protocol.

pub mod custom_resource;
pub mod resolve;
pub mod rules;
pub mod samconfig;
pub mod template;

/// The most a template or samconfig file may hold before it is parsed (CloudFormation takes a
/// template body of at most 1 MB from S3; "CloudFormation quotas").
pub const MAX_INPUT_BYTES: usize = 1_048_576;
/// The deepest `[`/`{` nesting a file may have before it is parsed (CloudFormation templates
/// nest a few levels; a parser given thousands of levels runs for minutes).
pub const MAX_FLOW_NESTING: usize = 64;
/// The widest indentation of a line (block nesting), in characters.
pub const MAX_INDENT: usize = 256;

/// Checks untrusted YAML, JSON or TOML text before a parser sees it: size, bracket nesting
/// (outside quoted strings and comments) and indentation. What is wrong, in words.
pub fn check_untrusted(text: &str) -> Result<(), String> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "{} bytes: more than {MAX_INPUT_BYTES} (CloudFormation's template limit)",
            text.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent > MAX_INDENT {
            return Err(format!(
                "a line indented {indent} characters: more than {MAX_INDENT}"
            ));
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q && prev != '\\' => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') if prev.is_whitespace() => break,
                (None, '[' | '{') => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
        if deepest > MAX_FLOW_NESTING {
            return Err(format!(
                "brackets nested more than {MAX_FLOW_NESTING} levels"
            ));
        }
    }
    Ok(())
}
