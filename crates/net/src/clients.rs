//! The AWS clients of one account, and how their errors are classified.

use aws_config::SdkConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use enclave_aws::CallCounter;

/// EC2, CloudWatch Logs and IAM clients for one account, each counting its calls.
#[derive(Clone, Debug)]
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// CloudWatch Logs (the flow-log group).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// IAM (the flow-log delivery role).
    pub iam: aws_sdk_iam::Client,
}

impl Clients {
    /// Clients from an account's config (see [`enclave_aws::Aws::account`]).
    pub fn new(config: &SdkConfig, counter: &CallCounter) -> Self {
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(config).interceptor(counter.clone()).build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(config).interceptor(counter.clone()).build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(config).interceptor(counter.clone()).build(),
            ),
        }
    }
}

/// A failed AWS call, with the operation and what the service said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct CallError {
    /// `ec2:CreateVpc`.
    pub operation: String,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// The whole message.
    pub message: String,
    /// Whether trying again may succeed (throttling, 5xx, lost connections, timeouts).
    pub retryable: bool,
}

impl CallError {
    /// An error enclave itself raises about `operation`.
    pub fn new(operation: impl Into<String>, message: impl Into<String>) -> Self {
        CallError { operation: operation.into(), code: None, message: message.into(), retryable: false }
    }

    /// Whether the service said the thing does not exist (any `*NotFound*` code, IAM's
    /// `NoSuchEntity`).
    pub fn is_not_found(&self) -> bool {
        self.code.as_deref().is_some_and(|code| code.contains("NotFound") || code == "NoSuchEntity")
    }

    /// Whether the service's error code is `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

const THROTTLING: &[&str] =
    &["RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequestsException"];
const TRANSIENT: &[&str] = &["InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"];

/// Turns an SDK error into a [`CallError`], classifying it.
pub fn call_error<E, R>(operation: &str) -> impl Fn(SdkError<E, R>) -> CallError + '_
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |error| {
        let code = error.code().map(str::to_owned);
        let retryable = match &error {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                code.as_deref().is_some_and(|code| THROTTLING.contains(&code) || TRANSIENT.contains(&code))
            }
            _ => false,
        };
        CallError {
            operation: operation.to_owned(),
            code,
            message: enclave_core::redact::url_credentials(
                &aws_sdk_ec2::error::DisplayErrorContext(&error).to_string(),
            ),
            retryable,
        }
    }
}
