//! The one error type of every AWS call in this crate.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed AWS call: the operation (`service:Action`, or `Action` where the caller's context
/// names the service), what it acted on, and the SDK error itself as the source.
///
/// Its text is one line: operation, resource, cause (the service's code and message, or the
/// kind of failure and its innermost cause: "dispatch failure: Connection refused"). The SDK's
/// full error context is [`AwsError::detail`] (`orderbroker --debug` prints it).
#[derive(Debug, thiserror::Error)]
#[error("{operation}{}: {}", resource.as_deref().map(|r| format!(" {r}")).unwrap_or_default(), self.cause())]
pub struct AwsError {
    operation: &'static str,
    resource: Option<String>,
    code: Option<String>,
    message: Option<String>,
    /// The HTTP status of an answer that came back (a service error, or an answer the SDK
    /// could not read); `None` when nothing came back (dispatch failure, timeout).
    http_status: Option<u16>,
    #[source]
    source: BoxError,
}

impl AwsError {
    /// Wraps an SDK (or any) error of `operation`.
    pub fn new<E>(operation: &'static str, source: E) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        AwsError {
            operation,
            resource: None,
            code: source.code().map(str::to_string),
            message: source.message().map(str::to_string),
            http_status: None,
            source: Box::new(source),
        }
    }

    /// Wraps an SDK error, keeping the HTTP status of an answer that came back.
    pub fn sdk<E>(
        operation: &'static str,
        source: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    ) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let status = source.raw_response().map(|r| r.status().as_u16());
        AwsError {
            http_status: status,
            ..AwsError::new(operation, source)
        }
    }

    /// The HTTP status of the answer, when one came back ([`AwsError::sdk`]).
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// Names what the call acted on (a stack, a function, an image).
    pub fn on(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The service's error code (`ValidationError`, `ThrottlingException`, ...), when it answered.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service's error message, when it answered.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The cause in a few words: `Code: message` when the service answered, else the failure's
    /// kind and its innermost source.
    pub fn cause(&self) -> String {
        if let Some(code) = &self.code {
            return match &self.message {
                Some(m) => format!("{code}: {m}"),
                None => code.clone(),
            };
        }
        let mut texts: Vec<String> = Vec::new();
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self.source.as_ref());
        while let Some(e) = current {
            texts.push(e.to_string());
            current = e.source();
        }
        match (texts.first(), texts.last()) {
            (Some(first), Some(last)) if first != last => format!("{first}: {last}"),
            (Some(first), _) => first.clone(),
            _ => "unknown error".into(),
        }
    }

    /// The SDK's full error context (every source, with its debug form): for `--debug`.
    pub fn detail(&self) -> String {
        DisplayErrorContext(self.source.as_ref()).to_string()
    }

    /// No credentials could be loaded (nothing was sent). The SDK reports this as a dispatch
    /// failure whose source chain names the credentials provider; there is no typed variant.
    pub fn is_missing_credentials(&self) -> bool {
        let text = DisplayErrorContext(self.source.as_ref()).to_string();
        self.code.is_none() && (text.contains("credentials") || text.contains("Credentials"))
    }
}

/// `.send().await.aws("ecs:DescribeServices")?`: an SDK result as an [`AwsError`] result.
pub trait AwsResultExt<T> {
    fn aws(self, operation: &'static str) -> Result<T, AwsError>;
}

impl<T, E> AwsResultExt<T>
    for Result<
        T,
        aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    fn aws(self, operation: &'static str) -> Result<T, AwsError> {
        self.map_err(|e| AwsError::sdk(operation, e))
    }
}
