//! A SAM template as CloudFormation receives it, through scripts/sam-translate.py (the SAM
//! translator in `.venv/tools`, offline). A template without `Transform` is already what
//! CloudFormation processes and is used as is.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cfn::template::{Template, TemplateError};

/// Why a template could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot run {program} (the SAM translator; `make setup` installs it): {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the SAM translation failed: {0}")]
    Failed(String),
    #[error("the SAM translation took over {0} s and was stopped")]
    Timeout(u64),
    #[error("the SAM translation's output: {0}")]
    Output(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// The translator: `ORDERBROKER_SAM_TRANSLATE` (program and script), else the project's venv.
fn command() -> (String, Vec<String>) {
    match std::env::var("ORDERBROKER_SAM_TRANSLATE") {
        Ok(v) if !v.trim().is_empty() => {
            let mut parts = v.split_whitespace().map(str::to_string);
            let program = parts.next().unwrap_or_default();
            (program, parts.collect())
        }
        _ => (
            ".venv/tools/bin/python".to_string(),
            vec!["scripts/sam-translate.py".to_string()],
        ),
    }
}

/// Whether a template still needs the SAM transform.
pub fn needs_transform(t: &Template) -> bool {
    !t.section("Transform").is_null()
}

/// Every template that needs it, translated in one run of the translator (in order).
pub fn translate_all(
    templates: Vec<Template>,
    limit: Duration,
) -> Result<Vec<Template>, TranslateError> {
    let todo: Vec<usize> = (0..templates.len())
        .filter(|&i| needs_transform(&templates[i]))
        .collect();
    if todo.is_empty() {
        return Ok(templates);
    }
    let input = serde_json::to_vec(
        &todo
            .iter()
            .map(|&i| templates[i].doc().clone())
            .collect::<Vec<_>>(),
    )
    .map_err(|e| TranslateError::Output(e.to_string()))?;
    let (program, mut args) = command();
    args.push("--stdin-json".into());
    let mut child = Command::new(&program)
        .args(&args)
        .env("AWS_DEFAULT_REGION", "us-east-2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TranslateError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            // A translator that exits early closes the pipe; its status says why.
            let _ = s.write_all(&input);
        }
    });
    // Both pipes are drained while it runs: a translation larger than a pipe's buffer would
    // otherwise block the translator until the time limit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TranslateError::Timeout(limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(TranslateError::Failed(e.to_string())),
        }
    };
    let _ = writer.join();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        let last: Vec<&str> = err
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect();
        return Err(TranslateError::Failed(format!(
            "{program} exited with {status}: {}",
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    let docs: Vec<serde_json::Value> =
        serde_json::from_slice(&out).map_err(|e| TranslateError::Output(e.to_string()))?;
    if docs.len() != todo.len() {
        return Err(TranslateError::Output(format!(
            "{} templates back for {} sent",
            docs.len(),
            todo.len()
        )));
    }
    let mut templates = templates;
    for (i, doc) in todo.into_iter().zip(docs) {
        templates[i] = Template::from_json(doc)?;
    }
    Ok(templates)
}

/// The placeholder code location scripts/sam-translate.py gives every function.
pub const PLACEHOLDER_BUCKET: &str = "sam-build-placeholder";

/// `proposed` with each function's placeholder code location replaced by the deployed one of
/// the same logical id: the code `sam build` will upload is not known before it runs, so the
/// plan does not judge it (a new build is a stack update of `Code`, in place).
pub fn keep_deployed_code(
    deployed: &Template,
    proposed: Template,
) -> Result<Template, TemplateError> {
    let mut doc = proposed.doc().clone();
    if let Some(resources) = doc.get_mut("Resources").and_then(|r| r.as_object_mut()) {
        for (id, body) in resources.iter_mut() {
            let placeholder = body
                .pointer("/Properties/Code/S3Bucket")
                .and_then(|b| b.as_str())
                == Some(PLACEHOLDER_BUCKET);
            let deployed_code = deployed
                .resource(id)
                .and_then(|r| r.properties().get("Code").cloned());
            if let (true, Some(code)) = (placeholder, deployed_code) {
                if let Some(props) = body.get_mut("Properties").and_then(|p| p.as_object_mut()) {
                    props.insert("Code".into(), code);
                }
            }
        }
    }
    Template::from_json(doc)
}
