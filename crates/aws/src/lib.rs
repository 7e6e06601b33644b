//! `enclave-aws`: the one place enclave builds AWS SDK configurations. Every reconciler
//! (network, access, secrets, deploy) gets its per-account config from here.
//!
//! - Credentials from the standard chain, region from the spec, endpoint override from
//!   [`AwsOptions::endpoint_url`] or the SDK's own `AWS_ENDPOINT_URL`. [`Aws::connect`] fails
//!   fast, before any AWS call, when no credential source has credentials (naming the sources
//!   it tried) or an explicit endpoint refuses connections (naming it), instead of spending the
//!   retry budget on every call; [`Error::hint`] says what to do. Every client carries
//!   [`RefusedIsFinal`]: a connection refused later in the run is not retried either.
//! - Per member account, `sts:AssumeRole` into `arn:<partition>:iam::<id>:role/<role>` (the
//!   partition of the region: `aws`, `aws-cn` or `aws-us-gov`), made once and cached for the run
//!   ([`Aws::account`]).
//! - Retries in standard mode (exponential backoff with jitter; throttling errors are retried)
//!   with a generous attempt budget, so throttling does not fail work that would succeed later.
//! - The reconciler toolkit every AWS domain uses ([`reconcile`]): ownership tags checked on the
//!   client, creates looked up before any retry, client tokens, backoff with jitter, bounded
//!   waits, delete retries, typed errors.
//! - The record of the accounts a stack manages ([`record`]), so that a plan finds the resources
//!   of an account removed from the spec.
//! - A [`CallCounter`] interceptor that counts operations per `service:Operation`; attach it to
//!   each service client ([`Aws::counter`]).
//! - For tests: `moto::MotoServer` (feature `moto`) and `proxy::FaultProxy` (feature
//!   `fault-proxy`), a loopback proxy that throttles, fails, drops and delays calls.
//!
//! ```no_run
//! # async fn run() -> Result<(), enclave_aws::Error> {
//! let aws = enclave_aws::Aws::connect(enclave_aws::AwsOptions::new("eu-west-1", "OrganizationAccountAccessRole")).await?;
//! let config = aws.account("111111111111").await?;
//! let sts = aws_sdk_sts::Client::from_conf(
//!     aws_sdk_sts::config::Builder::from(&config).interceptor(aws.counter()).build(),
//! );
//! let _ = sts.get_caller_identity().send().await;
//! println!("{:?}", aws.calls());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

/// An SDK client of `$service` (the SDK crate's name) from an account's config (see
/// [`Aws::account`]), counting its calls with `$counter` (a [`CallCounter`]): how every domain's
/// `Clients` makes each of its clients.
#[macro_export]
macro_rules! counted_client {
    ($service:ident, $config:expr, $counter:expr) => {
        $service::Client::from_conf(
            $service::config::Builder::from($config)
                .interceptor($counter.clone())
                .retry_classifier($crate::RefusedIsFinal)
                .build(),
        )
    };
}

mod counter;
mod credentials;
#[cfg(feature = "fault-proxy")]
mod eks_gaps;
#[cfg(feature = "iam")]
pub mod iam;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "moto")]
pub mod moto;
#[cfg(feature = "fault-proxy")]
pub mod proxy;
pub mod reconcile;
pub mod record;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

pub use self::counter::CallCounter;
use self::credentials::AssumedRole;

/// How to reach AWS.
#[derive(Clone, Debug)]
pub struct AwsOptions {
    /// Region of every client.
    pub region: String,
    /// Endpoint override for every service (moto, LocalStack, a proxy).
    pub endpoint_url: Option<String>,
    /// Role assumed in member accounts.
    pub role_name: String,
    /// Attempts per operation, first one included.
    pub max_attempts: u32,
}

impl AwsOptions {
    /// Options with the default retry budget (10 attempts).
    pub fn new(region: &str, role_name: &str) -> Self {
        AwsOptions { region: region.to_owned(), endpoint_url: None, role_name: role_name.to_owned(), max_attempts: 10 }
    }

    /// Sends every call to `endpoint`.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint_url = Some(endpoint.into());
        self
    }
}

/// What can go wrong here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `sts:AssumeRole` into a member account failed.
    #[error("cannot assume role {role_arn}: {message}")]
    AssumeRole {
        /// The role.
        role_arn: String,
        /// What STS said.
        message: String,
        /// The service's error code, when STS sent one (`AccessDenied`).
        code: Option<String>,
    },
    /// Reading or writing the record of managed accounts failed.
    #[error("{operation} on {parameter} in the calling account: {message}")]
    Record {
        /// `ssm:GetParameter`, ...
        operation: &'static str,
        /// The parameter.
        parameter: String,
        /// What went wrong.
        message: String,
    },
    /// The explicit endpoint does not accept connections.
    #[error("cannot connect to the AWS endpoint {endpoint}")]
    Unreachable {
        /// The endpoint, as given.
        endpoint: String,
        /// What the connection attempt returned.
        source: std::io::Error,
    },
    /// The explicit endpoint is not a URL with a host.
    #[error("the AWS endpoint {endpoint} is not a URL with a host (http://127.0.0.1:5000)")]
    BadEndpoint {
        /// The endpoint, as given (user-info removed).
        endpoint: String,
    },
    /// No source of the standard chain gave credentials.
    #[error("no usable AWS credentials")]
    Credentials {
        /// What the last source said.
        source: aws_credential_types::provider::error::CredentialsError,
    },
}

/// The sources of the SDK's standard credential chain, in the order it tries them.
pub const CREDENTIAL_SOURCES: &[&str] = &[
    "environment variables (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    "the shared config and credentials files (~/.aws/config, ~/.aws/credentials; profile AWS_PROFILE or default, SSO included)",
    "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)",
    "ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)",
    "the EC2 instance metadata service (IMDS)",
];

impl Error {
    /// What to do about it, where that is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Unreachable { endpoint, source } => Some(match source.kind() {
                std::io::ErrorKind::ConnectionRefused => format!(
                    "connection refused: nothing is listening at {endpoint}; start the service there (moto, \
                     LocalStack, a proxy) or fix --endpoint-url"
                ),
                std::io::ErrorKind::TimedOut => {
                    format!(
                        "{endpoint} did not answer within {} s; check the address and any firewall",
                        PROBE.as_secs()
                    )
                }
                _ => format!("check that {endpoint} is the right address and reachable from here"),
            }),
            Error::BadEndpoint { .. } => None,
            Error::Credentials { .. } => Some(format!(
                "the SDK's credential chain tried, in order:\n{}\n  configure one of them (for example `aws sso login \
                 --profile NAME` and AWS_PROFILE=NAME)",
                CREDENTIAL_SOURCES.iter().map(|source| format!("  - {source}")).collect::<Vec<_>>().join("\n")
            )),
            Error::AssumeRole { role_arn, code: Some(code), .. }
                if reconcile::ACCESS_DENIED.contains(&code.as_str()) =>
            {
                Some(format!(
                    "the calling identity may not sts:AssumeRole into {role_arn}: allow it in the role's trust policy \
                     and in the caller's IAM policy, or set organization.assume_role to a role it may assume"
                ))
            }
            Error::AssumeRole { .. } | Error::Record { .. } => None,
        }
    }
}

/// A retry classifier every client of enclave carries: a refused connection is not retried
/// (nothing listens at the endpoint; waiting out the retry budget, about a minute, would only
/// delay the error). Throttling, server errors, timeouts and dropped connections are retried as
/// before.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefusedIsFinal;

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for RefusedIsFinal {
    fn classify_retry(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        match context.output_or_error() {
            Some(Err(error)) if error.as_connector_error().is_some_and(|connector| refused(connector)) => {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "enclave: a refused connection is final"
    }
}

/// Whether an I/O error somewhere in `error`'s chain is a refused connection.
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(current) = next {
        if current.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        next = current.source();
    }
    false
}

/// How long the first connection to an explicit endpoint may take.
const PROBE: Duration = Duration::from_secs(3);

/// One TCP connection to `endpoint`'s host and port, so a wrong or dead endpoint fails the run
/// at once instead of after every call's retries.
async fn probe(endpoint: &str) -> Result<(), Error> {
    let shown = enclave_core::redact::url_credentials(endpoint);
    let bad = || Error::BadEndpoint { endpoint: shown.clone() };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    match tokio::time::timeout(PROBE, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(Error::Unreachable { endpoint: shown, source }),
        Err(_) => Err(Error::Unreachable { endpoint: shown, source: std::io::ErrorKind::TimedOut.into() }),
    }
}

/// An error and its causes as one line, each cause's text once (the SDK's errors repeat their
/// source's text in their own), with any user-info in URLs removed.
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    enclave_core::redact::url_credentials(&parts.join(": "))
}

/// Shared AWS access for one run.
pub struct Aws {
    base: SdkConfig,
    options: AwsOptions,
    counter: CallCounter,
    accounts: tokio::sync::Mutex<HashMap<String, SdkConfig>>,
}

impl Aws {
    /// Loads credentials from the standard chain and applies `options`. Fails before any AWS
    /// call when an explicit endpoint refuses connections or no source has credentials.
    pub async fn connect(options: AwsOptions) -> Result<Aws, Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(options.region.clone()));
        if let Some(endpoint) = &options.endpoint_url {
            probe(endpoint).await?;
            loader = loader.endpoint_url(endpoint);
        }
        let base = loader.load().await;
        if let Some(provider) = base.credentials_provider() {
            use aws_credential_types::provider::ProvideCredentials as _;
            provider.provide_credentials().await.map_err(|source| Error::Credentials { source })?;
        }
        Ok(Aws::from_config(base, options))
    }

    /// Uses `base` (credentials, and anything else already set) and applies `options` on top.
    pub fn from_config(base: SdkConfig, options: AwsOptions) -> Aws {
        let retry = RetryConfig::standard()
            .with_max_attempts(options.max_attempts)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(20));
        let mut builder = base.into_builder().region(Region::new(options.region.clone())).retry_config(retry);
        if let Some(endpoint) = &options.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        Aws {
            base: builder.build(),
            options,
            counter: CallCounter::default(),
            accounts: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The config of the calling identity (the management account).
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The interceptor to attach to every service client.
    pub fn counter(&self) -> CallCounter {
        self.counter.clone()
    }

    /// Operations made so far, by `service:Operation`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.counter.snapshot()
    }

    /// The role ARN assumed in `account_id`.
    pub fn role_arn(&self, account_id: &str) -> String {
        let partition = enclave_core::region::partition(&self.options.region);
        format!("arn:{partition}:iam::{account_id}:role/{}", self.options.role_name)
    }

    /// The config for `account_id`: credentials from `sts:AssumeRole` into the member role,
    /// assumed once and cached for the run.
    pub async fn account(&self, account_id: &str) -> Result<SdkConfig, Error> {
        let mut accounts = self.accounts.lock().await;
        if let Some(config) = accounts.get(account_id) {
            return Ok(config.clone());
        }
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.base)
                .interceptor(self.counter.clone())
                .retry_classifier(RefusedIsFinal)
                .build(),
        );
        let provider = AssumedRole::assume(sts, self.role_arn(account_id), "enclave").await?;
        let config = self.base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
        accounts.insert(account_id.to_owned(), config.clone());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(region: &str) -> Aws {
        let base = SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        Aws::from_config(base, AwsOptions::new(region, "Member"))
    }

    #[test]
    fn role_arns_carry_the_partition_of_the_region() {
        assert_eq!(aws("eu-west-1").role_arn("111111111111"), "arn:aws:iam::111111111111:role/Member");
        assert_eq!(aws("us-gov-west-1").role_arn("111111111111"), "arn:aws-us-gov:iam::111111111111:role/Member");
        assert_eq!(aws("cn-north-1").role_arn("111111111111"), "arn:aws-cn:iam::111111111111:role/Member");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure: io error: connection refused")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("io error: connection refused")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn a_chain_shows_each_cause_once_without_credentials_in_urls() {
        let error = Outer(Middle(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")));
        assert_eq!(chain_text(&error), "dispatch failure: io error: connection refused");
        let error = Middle(std::io::Error::other("POST http://user:secret@127.0.0.1:9/ failed"));
        assert_eq!(chain_text(&error), "io error: connection refused: POST http://127.0.0.1:9/ failed");
    }

    #[tokio::test]
    async fn an_endpoint_nobody_listens_on_fails_at_once_with_a_hint() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let endpoint = format!("http://127.0.0.1:{}", port.expect("a free port"));
        let error = probe(&endpoint).await.expect_err("nothing listens");
        assert!(
            matches!(&error, Error::Unreachable { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused)
        );
        let hint = error.hint().expect("a hint");
        assert!(hint.starts_with("connection refused: nothing is listening at http://127.0.0.1:"), "{hint}");
        assert!(matches!(probe("not a url").await, Err(Error::BadEndpoint { .. })));
    }

    #[tokio::test]
    async fn a_refused_connection_mid_run_is_not_retried() {
        // An endpoint that accepted the probe, then went away: the call fails at once, not after
        // ten attempts with backoff.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let endpoint = format!("http://127.0.0.1:{}", port.expect("a free port"));
        let credentials = aws_credential_types::Credentials::new("AKIDEXAMPLE", "example", None, None, "test");
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        let aws = Aws::from_config(base, AwsOptions::new("eu-west-1", "Member").endpoint(&endpoint));
        let started = std::time::Instant::now();
        let error = aws.managed_accounts("stack").await.expect_err("nothing listens");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert!(error.to_string().contains("Connection refused"), "{error}");
    }

    #[test]
    fn access_denied_hints_name_the_role_or_the_action() {
        let denied = Error::AssumeRole {
            role_arn: "arn:aws:iam::111111111111:role/Member".into(),
            message: "AccessDenied: not authorized".into(),
            code: Some("AccessDenied".into()),
        };
        let hint = denied.hint().expect("a hint");
        assert!(hint.contains("sts:AssumeRole into arn:aws:iam::111111111111:role/Member"), "{hint}");
        let call = reconcile::CallError::aws("ec2:DescribeVpcs", Some("UnauthorizedOperation"), "not allowed");
        assert!(call.hint().expect("a hint").contains("may not call ec2:DescribeVpcs"));
        assert_eq!(reconcile::CallError::aws("ec2:DescribeVpcs", Some("Throttling"), "slow down").hint(), None);
        let missing = Error::Credentials {
            source: aws_credential_types::provider::error::CredentialsError::not_loaded("no source"),
        };
        let hint = missing.hint().expect("a hint");
        for source in CREDENTIAL_SOURCES {
            assert!(hint.contains(source), "{source}");
        }
    }
}
