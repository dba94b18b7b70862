//! The CloudFormation custom-resource protocol, for any custom resource of this project.
//!
//! CloudFormation waits for an answer PUT to the request's presigned `ResponseURL`. This module
//! answers on every path: success, handler error, panic, malformed properties, and the deadline
//! (it answers before the Lambda times out). The body stays within CloudFormation's limits
//! (Reason truncated, whole body <= 4096 bytes) and echoes StackId, RequestId and
//! LogicalResourceId. A failed Create answers with a recognisable marker PhysicalResourceId, and
//! the Delete CloudFormation then sends for it succeeds without calling the handler. The PUT is
//! retried with backoff. The ResponseURL is a credential: it is never logged ([`ResponseUrl`]'s
//! `Debug` and `Display` redact it).

use std::future::Future;
use std::time::{Duration, Instant};

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use serde::Serialize;
use serde_json::{Map, Value};

/// Largest response body CloudFormation accepts.
pub const MAX_BODY: usize = 4096;
/// Prefix of the PhysicalResourceId answered for a failed Create.
pub const FAILED_CREATE_PREFIX: &str = "failed-create:";

/// The presigned URL, kept out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseUrl(String);

impl ResponseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        ResponseUrl(url.into())
    }
    /// The URL itself: only for the PUT.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseUrl(<redacted>)")
    }
}

impl std::fmt::Display for ResponseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Create, Update or Delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RequestKind {
    Create,
    Update,
    Delete,
}

/// A request as the handler sees it (properties still raw: the handler types them).
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: RequestKind,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub resource_type: String,
    /// Absent on Create.
    pub physical_resource_id: Option<String>,
    pub properties: Value,
    pub old_properties: Option<Value>,
    pub response_url: ResponseUrl,
}

/// What the handler decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub physical_resource_id: String,
    pub data: Map<String, Value>,
}

/// The answer body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
}

/// What can go wrong that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("custom-resource event without a ResponseURL/StackId/RequestId: nothing can be answered ({0})")]
    Unanswerable(String),
    #[error("the answer could not be delivered after {attempts} attempt(s): {last}")]
    NotDelivered { attempts: u32, last: String },
}

/// Reads the event. A malformed envelope that still names where to answer becomes a request
/// whose handling is a FAILED answer; one that does not is unanswerable.
pub fn parse(event: Value) -> Result<Result<Request, (Request, String)>, ProtocolError> {
    match serde_json::from_value::<CloudFormationCustomResourceRequest<Value, Value>>(event.clone())
    {
        Ok(CloudFormationCustomResourceRequest::Create(r)) => Ok(Ok(Request {
            kind: RequestKind::Create,
            stack_id: r.stack_id,
            request_id: r.request_id,
            logical_resource_id: r.logical_resource_id,
            resource_type: r.resource_type,
            physical_resource_id: None,
            properties: r.resource_properties,
            old_properties: None,
            response_url: ResponseUrl::new(r.response_url),
        })),
        Ok(CloudFormationCustomResourceRequest::Update(r)) => Ok(Ok(Request {
            kind: RequestKind::Update,
            stack_id: r.stack_id,
            request_id: r.request_id,
            logical_resource_id: r.logical_resource_id,
            resource_type: r.resource_type,
            physical_resource_id: Some(r.physical_resource_id),
            properties: r.resource_properties,
            old_properties: Some(r.old_resource_properties),
            response_url: ResponseUrl::new(r.response_url),
        })),
        Ok(CloudFormationCustomResourceRequest::Delete(r)) => Ok(Ok(Request {
            kind: RequestKind::Delete,
            stack_id: r.stack_id,
            request_id: r.request_id,
            logical_resource_id: r.logical_resource_id,
            resource_type: r.resource_type,
            physical_resource_id: Some(r.physical_resource_id),
            properties: r.resource_properties,
            old_properties: None,
            response_url: ResponseUrl::new(r.response_url),
        })),
        Ok(_) => Err(ProtocolError::Unanswerable("unknown request type".into())),
        Err(e) => {
            let s = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_string);
            match (
                s("ResponseURL"),
                s("StackId"),
                s("RequestId"),
                s("LogicalResourceId"),
            ) {
                (Some(url), Some(stack_id), Some(request_id), Some(logical)) => {
                    let kind = match s("RequestType").as_deref() {
                        Some("Update") => RequestKind::Update,
                        Some("Delete") => RequestKind::Delete,
                        _ => RequestKind::Create,
                    };
                    let req = Request {
                        kind,
                        stack_id,
                        request_id,
                        logical_resource_id: logical,
                        resource_type: s("ResourceType").unwrap_or_default(),
                        physical_resource_id: s("PhysicalResourceId"),
                        properties: event
                            .get("ResourceProperties")
                            .cloned()
                            .unwrap_or(Value::Null),
                        old_properties: None,
                        response_url: ResponseUrl::new(url),
                    };
                    Ok(Err((
                        req,
                        format!("malformed custom-resource request: {e}"),
                    )))
                }
                _ => Err(ProtocolError::Unanswerable(e.to_string())),
            }
        }
    }
}

/// The marker id for a failed Create (recognised on the Delete that follows).
pub fn failed_create_id(request_id: &str) -> String {
    format!("{FAILED_CREATE_PREFIX}{request_id}")
}

/// Is this the Delete of a resource whose Create failed?
pub fn is_failed_create_delete(req: &Request) -> bool {
    req.kind == RequestKind::Delete
        && req
            .physical_resource_id
            .as_deref()
            .is_some_and(|id| id.starts_with(FAILED_CREATE_PREFIX))
}

/// The PhysicalResourceId to answer with when the handler did not produce one.
fn fallback_id(req: &Request) -> String {
    match (&req.kind, &req.physical_resource_id) {
        (RequestKind::Create, _) | (_, None) => failed_create_id(&req.request_id),
        // Update/Delete: keep the current id (a different id would mean replacement).
        (_, Some(id)) => id.clone(),
    }
}

/// Builds the body for a result, within CloudFormation's limits.
pub fn response(req: &Request, result: Result<Success, String>) -> Response {
    let mut r = match result {
        Ok(ok) => Response {
            status: "SUCCESS",
            reason: None,
            physical_resource_id: if ok.physical_resource_id.trim().is_empty() {
                fallback_id(req)
            } else {
                ok.physical_resource_id
            },
            stack_id: req.stack_id.clone(),
            request_id: req.request_id.clone(),
            logical_resource_id: req.logical_resource_id.clone(),
            data: (!ok.data.is_empty()).then_some(ok.data),
        },
        Err(reason) => Response {
            status: "FAILED",
            reason: Some(reason),
            physical_resource_id: fallback_id(req),
            stack_id: req.stack_id.clone(),
            request_id: req.request_id.clone(),
            logical_resource_id: req.logical_resource_id.clone(),
            data: None,
        },
    };
    r.physical_resource_id = truncate(&r.physical_resource_id, 1024);
    fit(&mut r);
    r
}

fn truncate(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let mut end = max_bytes.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Shrinks Reason, then Data's free text, until the serialised body fits. A body over 4096 bytes
/// fails the stack operation, and `!GetAtt Resource.Key` of a key missing from Data fails it too
/// (../shared/aws-facts.md): so every key stays, and every non-string value (the counts and flags
/// the template reads) is kept whole; only string values shorten, longest first, down to a marker.
fn fit(r: &mut Response) {
    let size = |r: &Response| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
    if size(r) <= MAX_BODY {
        return;
    }
    if let Some(reason) = r.reason.clone() {
        let over = size(r) - MAX_BODY;
        let keep = reason.len().saturating_sub(over + 16);
        r.reason = Some(truncate(&reason, keep.max(16)));
    }
    let mut limit = 1024;
    while size(r) > MAX_BODY && limit >= 8 {
        let Some(data) = r.data.as_mut() else {
            return;
        };
        for v in data.values_mut() {
            if let Value::String(text) = v {
                if text.len() > limit {
                    *v = Value::from(truncate(text, limit));
                }
            }
        }
        limit /= 2;
    }
    if size(r) > MAX_BODY {
        // Only the non-string values are left to count: empty the strings, keep every key.
        if let Some(data) = r.data.as_mut() {
            for v in data.values_mut() {
                if v.is_string() {
                    *v = Value::from("");
                }
            }
        }
    }
    if let Some(data) = r.data.as_mut() {
        data.insert(
            "Truncated".to_string(),
            Value::from("free text shortened to fit 4096 bytes; see the function's logs"),
        );
    }
    if size(r) > MAX_BODY {
        if let Some(data) = r.data.as_mut() {
            data.remove("Truncated");
        }
    }
}

/// PUTs the answer, retrying with backoff until `deadline`. The body is sent with no
/// Content-Type (the presigned URL is signed without one).
pub async fn deliver(
    http: &reqwest::Client,
    url: &ResponseUrl,
    body: &Response,
    deadline: Instant,
) -> Result<u32, ProtocolError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut attempts = 0;
    let mut backoff = Duration::from_millis(200);
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let last = match http
            .put(url.expose())
            .timeout(
                remaining
                    .min(Duration::from_secs(10))
                    .max(Duration::from_millis(100)),
            )
            .body(bytes.clone())
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => return Ok(attempts),
            Ok(resp) => format!("status {}", resp.status().as_u16()),
            // Strip the URL from reqwest's error text: it is a credential.
            Err(e) => e.without_url().to_string(),
        };
        tracing::warn!(attempt = attempts, error = %last, "custom-resource answer not delivered yet");
        if attempts >= 6 || Instant::now() + backoff >= deadline {
            return Err(ProtocolError::NotDelivered { attempts, last });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(4));
    }
}

/// What one invocation answered.
#[derive(Debug, Clone, Serialize)]
pub struct Answered {
    pub status: &'static str,
    pub physical_resource_id: String,
    pub reason: Option<String>,
    pub put_attempts: u32,
}

/// Handles one custom-resource event end to end: parse, run `handler` in its own task (a panic
/// or an overrun becomes FAILED), answer. `reserve` is kept from the Lambda deadline to answer.
pub async fn handle<F, Fut>(
    event: Value,
    http: &reqwest::Client,
    lambda_deadline: Instant,
    reserve: Duration,
    handler: F,
) -> Result<Answered, ProtocolError>
where
    F: FnOnce(Request, Instant) -> Fut,
    Fut: Future<Output = Result<Success, String>> + Send + 'static,
{
    let (req, result) = match parse(event)? {
        Err((req, why)) => (req, Err(why)),
        Ok(req) if is_failed_create_delete(&req) => {
            let id = req.physical_resource_id.clone().unwrap_or_default();
            (
                req,
                Ok(Success {
                    physical_resource_id: id,
                    data: Map::new(),
                }),
            )
        }
        Ok(req) => {
            let until = lambda_deadline
                .checked_sub(reserve)
                .unwrap_or_else(Instant::now)
                .max(Instant::now());
            let task = tokio::spawn(handler(req.clone(), until));
            let abort = task.abort_handle();
            let result =
                match tokio::time::timeout_at(tokio::time::Instant::from_std(until), task).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(j)) if j.is_panic() => {
                        let msg = crate::aws::lambda::panic_message(j.into_panic());
                        Err(format!("handler panicked: {msg}"))
                    }
                    Ok(Err(j)) => Err(format!("handler task failed: {j}")),
                    Err(_) => {
                        abort.abort();
                        Err("handler did not finish before the Lambda deadline".into())
                    }
                };
            (req, result)
        }
    };
    let body = response(&req, result);
    let attempts = deliver(http, &req.response_url, &body, lambda_deadline).await?;
    Ok(Answered {
        status: body.status,
        physical_resource_id: body.physical_resource_id,
        reason: body.reason,
        put_attempts: attempts,
    })
}
