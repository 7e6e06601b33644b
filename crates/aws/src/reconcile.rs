//! The reconciler toolkit every AWS domain uses, so that each gets the network's guarantees
//! without copying them: ownership by tag checked on the client, creates that never duplicate,
//! throttling that never fails work, bounded waits, and typed errors.
//!
//! - Ownership: everything enclave creates carries [`STACK_TAG`] and [`ADDRESS_TAG`]. [`owned`]
//!   checks both on the client for anything [`Tagged`] (moto ignores tag filters on some types,
//!   and a resource of another stack must never be taken for ours).
//! - [`create`]: runs a create without the SDK's retries; after a failure that may have reached
//!   AWS (a 5xx, a lost connection, a timeout, throttling) it looks the resource up by its
//!   address before trying again, so no retry makes a duplicate. [`client_token`] derives the
//!   idempotency token for APIs that take one.
//! - [`backoff`]: full jitter, capped.
//! - [`wait`]: polls until done, failed or the [`Waits`] bound, and says what it waited for.
//! - [`delete`]: "already gone" is success; deletes blocked by a dependency are retried within
//!   the bound.
//! - [`CallError`]: the operation, the AWS error [`Code`] as an enum where domains branch on it,
//!   and whether a retry may succeed; enclave's own faults are [`CallError::Enclave`].
//!
//! ```
//! use enclave_aws::reconcile::{CallError, Code, Missing};
//! let error = CallError::aws("ec2:DeleteSubnet", Some("InvalidSubnetID.NotFound"), "gone");
//! assert!(error.is(&Code::NotFound(Missing::Subnet)));
//! assert_eq!(error.to_string(), "ec2:DeleteSubnet: gone");
//! ```

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use enclave_core::Address;

pub use enclave_core::address::{ADDRESS_TAG, STACK_TAG};

/// An AWS resource with an id and tags.
pub trait Tagged {
    /// Its AWS id.
    fn id(&self) -> Option<&str>;
    /// The value of its tag `key`.
    fn tag(&self, key: &str) -> Option<&str>;
}

/// The AWS id and logical address of `item` when it carries this stack's tag and an address
/// tag; `None` otherwise. Always checked here, never left to a server-side filter.
pub fn owned<'a, T: Tagged>(item: &'a T, stack: &str) -> Option<(&'a str, Address)> {
    if item.tag(STACK_TAG) != Some(stack) {
        return None;
    }
    Some((item.id()?, item.tag(ADDRESS_TAG)?.parse().ok()?))
}

/// The address of a resource whose tags (key, value pairs) make it this stack's and
/// `component`'s; `None` otherwise. For services whose resources are not [`Tagged`] items
/// (tags read separately, as maps or lists).
pub fn owned_address<'t>(
    stack: &str,
    component: &str,
    tags: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> Option<Address> {
    let tags: Vec<(&str, &str)> = tags.into_iter().collect();
    let stack_seen = tags.iter().any(|(key, value)| *key == STACK_TAG && *value == stack);
    let address = tags.iter().find(|(key, _)| *key == ADDRESS_TAG).and_then(|(_, value)| value.parse::<Address>().ok());
    address.filter(|address| stack_seen && address.component() == component)
}

/// The clients of the account `step` is in, from a domain's clients by account name.
pub fn account_of<'c, C>(
    accounts: &'c std::collections::BTreeMap<String, C>,
    step: &enclave_core::reconcile::Step<'_>,
) -> Result<&'c C, CallError> {
    let name = step.address.account();
    accounts.get(name).ok_or_else(|| CallError::enclave(format!("no AWS access configured for account {name}")))
}

/// The kind of `step`'s resource in a domain's closed set (`K`), or an error naming it.
pub fn kind_of<K>(step: &enclave_core::reconcile::Step<'_>) -> Result<K, CallError>
where
    K: std::str::FromStr,
    K::Err: fmt::Display,
{
    step.address.kind().parse().map_err(|error: K::Err| CallError::enclave(format!("{}: {error}", step.address)))
}

/// The text attribute `name` of a step: desired (creates and updates) or else observed (deletes).
pub fn text_of(step: &enclave_core::reconcile::Step<'_>, name: &str) -> Result<String, CallError> {
    step.after
        .or(step.before)
        .and_then(|a| a.get(name))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CallError::enclave(format!("{}: attribute {name} is missing", step.address)))
}

/// The id of the resource whose plan address is the step's attribute `name` (a reference to
/// another resource, possibly of another domain, made earlier in the walk or observed).
pub fn reference_of(
    step: &enclave_core::reconcile::Step<'_>,
    ids: &enclave_core::reconcile::Ids,
    name: &str,
) -> Result<String, CallError> {
    let address = text_of(step, name)?;
    ids.resolve(&address)
        .ok_or_else(|| CallError::enclave(format!("{}: {address} (its {name}) has no id yet", step.address)))
}

/// `Ok` when `tags` make an existing resource `address`'s own (a create retried after it
/// reached AWS, or a name freed by this stack's own earlier delete); an error naming `what`
/// otherwise: nothing of anyone else's is taken over.
pub fn claim<'t>(
    stack: &str,
    component: &str,
    address: &Address,
    what: &str,
    tags: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> Result<(), CallError> {
    if owned_address(stack, component, tags).as_ref() == Some(address) {
        Ok(())
    } else {
        Err(CallError::enclave(format!(
            "{address}: {what} exists without this stack's tags; enclave will not take it over"
        )))
    }
}

/// Refuses an update that would change an attribute its kind cannot change in place: every
/// attribute that differs between `step.before` and `step.after` must be in `updatable` (or in
/// `initial`, set only at creation). `kind` names the kind in the error. A provider calls this
/// before any change, so a planned change is never silently skipped.
pub fn check_in_place(
    step: &enclave_core::reconcile::Step<'_>,
    kind: &str,
    updatable: &[&str],
    initial: &[&str],
) -> Result<(), CallError> {
    let before = step.before;
    let unchangeable: Vec<String> = step
        .after
        .into_iter()
        .flat_map(|after| after.iter())
        .filter(|(name, value)| before.and_then(|b| b.get(*name)) != Some(*value))
        .map(|(name, _)| name)
        .filter(|name| !updatable.contains(&name.as_str()) && !initial.contains(&name.as_str()))
        .map(|name| format!("`{name}`"))
        .collect();
    if unchangeable.is_empty() {
        Ok(())
    } else {
        Err(CallError::enclave(format!("{}: {kind} cannot change {} in place", step.address, unchangeable.join(", "))))
    }
}

/// A policy document as AWS returns it, parsed: IAM sends documents URL-encoded, moto and the
/// other services as sent. Text that is not JSON stays a string (and differs from any plan).
pub fn policy_document(text: &str) -> serde_json::Value {
    let decoded = if text.trim_start().starts_with('{') {
        text.to_owned()
    } else {
        percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
    };
    serde_json::from_str(&decoded).unwrap_or(serde_json::Value::String(text.to_owned()))
}

/// `ClientToken` for a create: stable for stack and address, at most 64 ASCII characters.
pub fn client_token(stack: &str, address: &Address) -> String {
    // FNV-1a over "stack/address", twice with different offsets, as 32 hex digits.
    let text = format!("{stack}/{address}");
    let hash =
        |offset: u64| text.bytes().fold(offset, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("enclave-{:016x}{:016x}", hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4))
}

/// Full-jitter backoff: a random wait up to `min(10 s, 200 ms x 2^attempt)`.
pub fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(200).saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(10));
    cap.mul_f64(fastrand::f64())
}

/// Bounds on waiting: for resources to become available or go away, and for deletes blocked by
/// a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waits {
    /// Give up after this long.
    pub timeout: Duration,
    /// Poll this often.
    pub interval: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Waits { timeout: Duration::from_secs(600), interval: Duration::from_secs(5) }
    }
}

/// What one poll of a [`wait`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitState {
    /// The goal is reached.
    Done,
    /// Not yet; the state seen.
    Pending(String),
    /// It will never be reached; the state seen.
    Failed(String),
}

/// The AWS error codes domains branch on; anything else is [`Code::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Too many requests: retried with backoff.
    Throttling(String),
    /// A server-side failure that may pass: retried.
    Transient(String),
    /// Something still depends on the resource.
    DependencyViolation,
    /// The named thing does not exist.
    NotFound(Missing),
    /// The thing to create exists already.
    AlreadyExists(Existing),
    /// The internet gateway is not attached to that VPC.
    GatewayNotAttached,
    /// The container still holds something (`RepositoryNotEmptyException`, ECR).
    NotEmpty,
    /// The resource is in use, or exists already (`ResourceInUseException`, EKS: a cluster
    /// name taken, or a cluster that still has node groups).
    InUse,
    /// The request is not valid in the resource's state (`InvalidRequestException`, Secrets
    /// Manager: a secret scheduled for deletion, or a rotation without a function).
    InvalidRequest,
    /// The caller may not do this (`AccessDenied`, `AccessDeniedException`,
    /// `UnauthorizedOperation`), as AWS sent it.
    AccessDenied(String),
    /// Any other code, as AWS sent it.
    Other(String),
}

/// What a "not found" code is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Missing {
    /// `InvalidVpcID.NotFound`.
    Vpc,
    /// `InvalidSubnetID.NotFound`.
    Subnet,
    /// `InvalidInternetGatewayID.NotFound`.
    InternetGateway,
    /// `InvalidAllocationID.NotFound`.
    Allocation,
    /// `NatGatewayNotFound`, `InvalidNatGatewayID.NotFound`.
    NatGateway,
    /// `InvalidRouteTableID.NotFound`.
    RouteTable,
    /// `InvalidAssociationID.NotFound`.
    Association,
    /// `InvalidRoute.NotFound`.
    Route,
    /// `InvalidGroup.NotFound`, `InvalidGroupId.NotFound`.
    SecurityGroup,
    /// `InvalidPermission.NotFound`.
    Permission,
    /// `InvalidVpcEndpointId.NotFound`.
    VpcEndpoint,
    /// `InvalidFlowLogId.NotFound`.
    FlowLog,
    /// `ResourceNotFoundException` (CloudWatch Logs and others).
    Resource,
    /// `NoSuchEntity` (IAM).
    Entity,
    /// `ParameterNotFound` (SSM).
    Parameter,
    /// `NotFoundException` (KMS keys and aliases).
    Key,
    /// `NoSuchBucket` (S3).
    Bucket,
    /// A bucket without that configuration: `NoSuchBucketPolicy`, `NoSuchLifecycleConfiguration`,
    /// `NoSuchPublicAccessBlockConfiguration`, `ServerSideEncryptionConfigurationNotFoundError`.
    BucketConfiguration,
    /// `InvalidDocument` (SSM: no such document).
    Document,
    /// `TrailNotFoundException` (CloudTrail).
    Trail,
    /// `InvalidInstanceID.NotFound`.
    Instance,
    /// `InvalidLaunchTemplateId.NotFound`, `InvalidLaunchTemplateName.NotFoundException`.
    LaunchTemplate,
    /// `RepositoryNotFoundException` (ECR).
    Repository,
    /// A repository without that setting: `LifecyclePolicyNotFoundException`,
    /// `RepositoryPolicyNotFoundException` (ECR).
    RepositoryConfiguration,
    /// `ImageNotFoundException`, `ScanNotFoundException` (ECR).
    Image,
    /// Another `*NotFound*` code.
    Other,
}

/// What an "already exists" code is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Existing {
    /// `RouteAlreadyExists`.
    Route,
    /// `Resource.AlreadyAssociated`.
    Association,
    /// `InvalidPermission.Duplicate`.
    Permission,
    /// `EntityAlreadyExists` (IAM).
    Entity,
    /// `ResourceAlreadyExistsException` (CloudWatch Logs and others).
    Resource,
    /// `ParameterAlreadyExists` (SSM).
    Parameter,
    /// `AlreadyExistsException` (KMS aliases).
    Alias,
    /// `BucketAlreadyOwnedByYou` (S3; `BucketAlreadyExists` is someone else's and stays
    /// [`Code::Other`]).
    Bucket,
    /// `DocumentAlreadyExists` (SSM).
    Document,
    /// `TrailAlreadyExistsException` (CloudTrail).
    Trail,
    /// `InvalidLaunchTemplateName.AlreadyExistsException`.
    LaunchTemplate,
    /// `RepositoryAlreadyExistsException` (ECR).
    Repository,
    /// `ResourceExistsException` (Secrets Manager: the name is taken, possibly by a secret
    /// scheduled for deletion).
    Secret,
}

const THROTTLING: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequestsException",
    "SlowDown",
];
const TRANSIENT: &[&str] = &["InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"];
/// The codes of a caller that may not do what it asked, across services.
pub const ACCESS_DENIED: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"];

impl Code {
    /// The code AWS sent, classified.
    pub fn parse(code: &str) -> Code {
        let missing = |what| Code::NotFound(what);
        let existing = |what| Code::AlreadyExists(what);
        match code {
            _ if THROTTLING.contains(&code) => Code::Throttling(code.to_owned()),
            _ if TRANSIENT.contains(&code) => Code::Transient(code.to_owned()),
            _ if ACCESS_DENIED.contains(&code) => Code::AccessDenied(code.to_owned()),
            "DependencyViolation" => Code::DependencyViolation,
            "Gateway.NotAttached" => Code::GatewayNotAttached,
            "InvalidVpcID.NotFound" => missing(Missing::Vpc),
            "InvalidSubnetID.NotFound" => missing(Missing::Subnet),
            "InvalidInternetGatewayID.NotFound" => missing(Missing::InternetGateway),
            "InvalidAllocationID.NotFound" => missing(Missing::Allocation),
            "NatGatewayNotFound" | "InvalidNatGatewayID.NotFound" => missing(Missing::NatGateway),
            "InvalidRouteTableID.NotFound" => missing(Missing::RouteTable),
            "InvalidAssociationID.NotFound" => missing(Missing::Association),
            "InvalidRoute.NotFound" => missing(Missing::Route),
            "InvalidGroup.NotFound" | "InvalidGroupId.NotFound" => missing(Missing::SecurityGroup),
            "InvalidPermission.NotFound" => missing(Missing::Permission),
            "InvalidVpcEndpointId.NotFound" => missing(Missing::VpcEndpoint),
            "InvalidFlowLogId.NotFound" => missing(Missing::FlowLog),
            "ResourceNotFoundException" => missing(Missing::Resource),
            "NoSuchEntity" => missing(Missing::Entity),
            "ParameterNotFound" => missing(Missing::Parameter),
            "NotFoundException" => missing(Missing::Key),
            "NoSuchBucket" => missing(Missing::Bucket),
            "NoSuchBucketPolicy"
            | "NoSuchLifecycleConfiguration"
            | "NoSuchPublicAccessBlockConfiguration"
            | "ServerSideEncryptionConfigurationNotFoundError" => missing(Missing::BucketConfiguration),
            "InvalidDocument" => missing(Missing::Document),
            "TrailNotFoundException" => missing(Missing::Trail),
            "InvalidInstanceID.NotFound" => missing(Missing::Instance),
            "InvalidLaunchTemplateId.NotFound" | "InvalidLaunchTemplateName.NotFoundException" => {
                missing(Missing::LaunchTemplate)
            }
            "RepositoryNotFoundException" => missing(Missing::Repository),
            "LifecyclePolicyNotFoundException" | "RepositoryPolicyNotFoundException" => {
                missing(Missing::RepositoryConfiguration)
            }
            "ImageNotFoundException" | "ScanNotFoundException" => missing(Missing::Image),
            "RepositoryAlreadyExistsException" => existing(Existing::Repository),
            "ResourceExistsException" => existing(Existing::Secret),
            "InvalidRequestException" => Code::InvalidRequest,
            "RepositoryNotEmptyException" => Code::NotEmpty,
            "ResourceInUseException" => Code::InUse,
            "AlreadyExistsException" => existing(Existing::Alias),
            "BucketAlreadyOwnedByYou" => existing(Existing::Bucket),
            "DocumentAlreadyExists" => existing(Existing::Document),
            "TrailAlreadyExistsException" => existing(Existing::Trail),
            "InvalidLaunchTemplateName.AlreadyExistsException" => existing(Existing::LaunchTemplate),
            "RouteAlreadyExists" => existing(Existing::Route),
            "Resource.AlreadyAssociated" => existing(Existing::Association),
            "InvalidPermission.Duplicate" => existing(Existing::Permission),
            "EntityAlreadyExists" => existing(Existing::Entity),
            "ResourceAlreadyExistsException" => existing(Existing::Resource),
            "ParameterAlreadyExists" => existing(Existing::Parameter),
            _ if code.contains("NotFound") => missing(Missing::Other),
            other => Code::Other(other.to_owned()),
        }
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Code::Throttling(_) | Code::Transient(_))
    }
}

/// A failed call, or a fault of enclave's own while carrying out a step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// AWS (or the way to it) failed.
    #[error("{operation}: {message}")]
    Aws {
        /// `ec2:CreateVpc`.
        operation: String,
        /// The service's error code, when it sent one.
        code: Option<Code>,
        /// The whole message (URLs without user-info).
        message: String,
        /// Whether trying again may succeed (throttling, 5xx, lost connections, timeouts).
        retryable: bool,
    },
    /// enclave could not carry out a step: a reference without an id yet, a resource someone
    /// else owns, a wait that timed out.
    #[error("enclave: {message}")]
    Enclave {
        /// What went wrong, naming the resource.
        message: String,
    },
}

impl CallError {
    /// An AWS error from its parts (batch APIs report errors per item, outside `SdkError`).
    pub fn aws(operation: impl Into<String>, code: Option<&str>, message: impl Into<String>) -> Self {
        let code = code.map(Code::parse);
        let retryable = code.as_ref().is_some_and(Code::is_retryable);
        CallError::Aws { operation: operation.into(), code, message: message.into(), retryable }
    }

    /// A fault of enclave's own.
    pub fn enclave(message: impl Into<String>) -> Self {
        CallError::Enclave { message: message.into() }
    }

    /// The AWS error code, when AWS sent one.
    pub fn code(&self) -> Option<&Code> {
        match self {
            CallError::Aws { code, .. } => code.as_ref(),
            CallError::Enclave { .. } => None,
        }
    }

    /// The failed operation (`ec2:CreateVpc`), for an AWS error.
    pub fn operation(&self) -> Option<&str> {
        match self {
            CallError::Aws { operation, .. } => Some(operation),
            CallError::Enclave { .. } => None,
        }
    }

    /// What went wrong, without the operation.
    pub fn message(&self) -> &str {
        match self {
            CallError::Aws { message, .. } | CallError::Enclave { message } => message,
        }
    }

    /// Whether AWS answered with `code`.
    pub fn is(&self, code: &Code) -> bool {
        self.code() == Some(code)
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CallError::Aws { retryable: true, .. })
    }

    /// What to do about it, where that is known: for access denied, which action the assumed
    /// role lacks.
    pub fn hint(&self) -> Option<String> {
        match self {
            CallError::Aws { operation, code: Some(Code::AccessDenied(_)), .. } => Some(format!(
                "the role enclave assumed in that account may not call {operation}: allow the action in its IAM \
                 policy (and check service control policies and permission boundaries)"
            )),
            CallError::Aws { .. } | CallError::Enclave { .. } => None,
        }
    }

    /// The same error with another message (the operation and code kept).
    #[must_use]
    pub fn with_message(self, text: String) -> Self {
        match self {
            CallError::Aws { operation, code, retryable, .. } => {
                CallError::Aws { operation, code, message: text, retryable }
            }
            CallError::Enclave { .. } => CallError::Enclave { message: text },
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Throttling(code) | Code::Transient(code) | Code::AccessDenied(code) | Code::Other(code) => {
                f.write_str(code)
            }
            other => write!(f, "{other:?}"),
        }
    }
}

/// Turns an SDK error into a [`CallError`], classifying it: timeouts, dispatch failures and
/// unreadable responses are retryable, as are throttling and transient service codes.
pub fn call_error<E, R>(operation: &str) -> impl Fn(SdkError<E, R>) -> CallError + '_
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + 'static,
{
    move |error| {
        let code = error.code().map(Code::parse);
        let retryable = match &error {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => code.as_ref().is_some_and(Code::is_retryable),
            _ => false,
        };
        CallError::Aws { operation: operation.to_owned(), code, message: crate::chain_text(&error), retryable }
    }
}

/// Runs `create`; after a failure that may have reached AWS, asks `lookup` whether the
/// resource exists before trying again (at most `attempts` tries in all, with [`backoff`]).
pub async fn create<L, LF, C, CF>(address: &Address, attempts: u32, lookup: L, create: C) -> Result<String, CallError>
where
    L: Fn() -> LF,
    LF: Future<Output = Result<Option<String>, CallError>>,
    C: Fn() -> CF,
    CF: Future<Output = Result<String, CallError>>,
{
    let mut attempt = 0;
    loop {
        match create().await {
            Ok(id) => return Ok(id),
            Err(error) if error.is_retryable() && attempt + 1 < attempts => {
                attempt += 1;
                tracing::debug!(%address, %error, attempt, "create failed; looking up before retrying");
                tokio::time::sleep(backoff(attempt)).await;
                if let Some(id) = lookup().await? {
                    return Ok(id);
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Polls `check` until it says done, within `waits`; the error names `address` and `what`.
pub async fn wait<F, Fut>(address: &Address, what: &str, waits: Waits, check: F) -> Result<(), CallError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<WaitState, CallError>>,
{
    let began = Instant::now();
    loop {
        match check().await? {
            WaitState::Done => return Ok(()),
            WaitState::Failed(state) => {
                return Err(CallError::enclave(format!("{address}: {what} ended in state {state}")));
            }
            WaitState::Pending(state) => {
                if began.elapsed() >= waits.timeout {
                    return Err(CallError::enclave(format!(
                        "{address}: timed out after {:?} waiting for {what} (last state: {state})",
                        waits.timeout
                    )));
                }
                tokio::time::sleep(waits.interval).await;
            }
        }
    }
}

/// `Ok(None)` when `result` failed with `missing`'s "not found": the thing is not there (never
/// made, or gone already). Any other error stays an error.
pub fn found<T>(result: Result<T, CallError>, missing: Missing) -> Result<Option<T>, CallError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is(&Code::NotFound(missing)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Runs `delete`; an error `gone` accepts (the resource's own "not found") is success, and
/// [`Code::DependencyViolation`] is retried within `waits`.
pub async fn delete<G, F, Fut>(waits: Waits, gone: G, delete: F) -> Result<(), CallError>
where
    G: Fn(&CallError) -> bool,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), CallError>>,
{
    let began = Instant::now();
    loop {
        match delete().await {
            Ok(()) => return Ok(()),
            Err(error) if gone(&error) => return Ok(()),
            Err(error) if error.is(&Code::DependencyViolation) && began.elapsed() < waits.timeout => {
                tokio::time::sleep(waits.interval).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Brings the rules of security group `id` to `ingress` and `egress` (rules as
/// [`rule_strings`] writes them): revokes what is extra, authorizes what is missing; "already
/// revoked" and "already authorized" count as done.
#[cfg(feature = "ec2")]
pub async fn sync_rules(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    ingress: &[String],
    egress: &[String],
) -> Result<(), CallError> {
    use std::collections::BTreeSet;

    use aws_sdk_ec2::types::IpPermission;
    let out =
        ec2.describe_security_groups().group_ids(id).send().await.map_err(call_error("ec2:DescribeSecurityGroups"))?;
    let Some(group) = out.security_groups().first() else {
        return Err(CallError::aws("ec2:DescribeSecurityGroups", None, format!("{id} not found")));
    };
    for (is_ingress, wanted, current) in
        [(true, ingress, group.ip_permissions()), (false, egress, group.ip_permissions_egress())]
    {
        let wanted: BTreeSet<String> = wanted.iter().cloned().collect();
        let present: BTreeSet<String> = current.iter().flat_map(rule_strings).collect();
        let revoke: Vec<IpPermission> = present.difference(&wanted).filter_map(|rule| permission(rule)).collect();
        let authorize: Vec<IpPermission> = wanted.difference(&present).filter_map(|rule| permission(rule)).collect();
        if !revoke.is_empty() {
            let result = if is_ingress {
                ec2.revoke_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(revoke))
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("ec2:RevokeSecurityGroupIngress"))
            } else {
                ec2.revoke_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(revoke))
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("ec2:RevokeSecurityGroupEgress"))
            };
            match result {
                Ok(()) => {}
                Err(error) if error.is(&Code::NotFound(Missing::Permission)) => {}
                Err(error) => return Err(error),
            }
        }
        if !authorize.is_empty() {
            let result = if is_ingress {
                ec2.authorize_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(authorize))
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("ec2:AuthorizeSecurityGroupIngress"))
            } else {
                ec2.authorize_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(authorize))
                    .send()
                    .await
                    .map(drop)
                    .map_err(call_error("ec2:AuthorizeSecurityGroupEgress"))
            };
            match result {
                Ok(()) => {}
                Err(error) if error.is(&Code::AlreadyExists(Existing::Permission)) => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

/// A parsed `tcp/443 10.1.0.0/16` rule (as [`rule_strings`] writes it), as an EC2 permission.
#[cfg(feature = "ec2")]
pub fn permission(rule: &str) -> Option<aws_sdk_ec2::types::IpPermission> {
    use aws_sdk_ec2::types::{IpPermission, IpRange};
    let (protocol_ports, range) = rule.split_once(' ')?;
    let (protocol, ports) = protocol_ports.split_once('/').unwrap_or((protocol_ports, ""));
    let (from, to) = match ports.split_once('-') {
        Some((from, to)) => (from.parse().ok()?, to.parse().ok()?),
        None if ports.is_empty() => (-1, -1),
        None => (ports.parse().ok()?, ports.parse().ok()?),
    };
    let mut builder = IpPermission::builder().ip_protocol(protocol);
    if protocol != "-1" {
        builder = builder.from_port(from).to_port(to);
    }
    if range.starts_with("sg-") {
        builder = builder.user_id_group_pairs(aws_sdk_ec2::types::UserIdGroupPair::builder().group_id(range).build());
    } else if range.starts_with("pl-") {
        builder = builder.prefix_list_ids(aws_sdk_ec2::types::PrefixListId::builder().prefix_list_id(range).build());
    } else if range.contains(':') {
        builder = builder.ipv6_ranges(aws_sdk_ec2::types::Ipv6Range::builder().cidr_ipv6(range).build());
    } else {
        builder = builder.ip_ranges(IpRange::builder().cidr_ip(range).build());
    }
    Some(builder.build())
}

#[cfg(feature = "ec2")]
/// One security-group permission per range, as `tcp/443 10.1.0.0/16` (`-1` is every protocol).
pub fn rule_strings(permission: &aws_sdk_ec2::types::IpPermission) -> Vec<String> {
    let protocol = permission.ip_protocol().unwrap_or("-1");
    let ports = match (permission.from_port(), permission.to_port()) {
        (Some(from), Some(to)) if from == to => format!("/{from}"),
        (Some(from), Some(to)) if protocol != "-1" => format!("/{from}-{to}"),
        _ => String::new(),
    };
    let mut out = Vec::new();
    out.extend(permission.ip_ranges().iter().filter_map(|r| r.cidr_ip()).map(|c| format!("{protocol}{ports} {c}")));
    out.extend(permission.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()).map(|c| format!("{protocol}{ports} {c}")));
    out.extend(
        permission
            .prefix_list_ids()
            .iter()
            .filter_map(|p| p.prefix_list_id())
            .map(|p| format!("{protocol}{ports} {p}")),
    );
    out.extend(
        permission.user_id_group_pairs().iter().filter_map(|p| p.group_id()).map(|g| format!("{protocol}{ports} {g}")),
    );
    out
}

#[cfg(feature = "ec2")]
mod ec2 {
    use aws_sdk_ec2::types::Tag;

    use super::Tagged;

    fn find<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
        tags.iter().find(|t| t.key() == Some(key)).and_then(Tag::value)
    }

    macro_rules! tagged {
        ($($type:ty => $id:ident),* $(,)?) => {
            $(impl Tagged for $type {
                fn id(&self) -> Option<&str> {
                    self.$id()
                }
                fn tag(&self, key: &str) -> Option<&str> {
                    find(self.tags(), key)
                }
            })*
        };
    }

    tagged!(
        aws_sdk_ec2::types::Vpc => vpc_id,
        aws_sdk_ec2::types::Subnet => subnet_id,
        aws_sdk_ec2::types::RouteTable => route_table_id,
        aws_sdk_ec2::types::InternetGateway => internet_gateway_id,
        aws_sdk_ec2::types::Address => allocation_id,
        aws_sdk_ec2::types::NatGateway => nat_gateway_id,
        aws_sdk_ec2::types::SecurityGroup => group_id,
        aws_sdk_ec2::types::VpcEndpoint => vpc_endpoint_id,
        aws_sdk_ec2::types::FlowLog => flow_log_id,
        aws_sdk_ec2::types::Instance => instance_id,
        aws_sdk_ec2::types::LaunchTemplate => launch_template_id,
    );
}

/// The launch template of `address` (tagged with this stack and address), created with `data`
/// and a `ClientToken`, without duplicates: a retry first looks it up by its tags. Returns its
/// id. `name_tag` is its `Name` tag, when it has one.
#[cfg(feature = "ec2")]
pub async fn create_launch_template(
    ec2: &aws_sdk_ec2::Client,
    stack: &str,
    address: &Address,
    name: &str,
    data: aws_sdk_ec2::types::RequestLaunchTemplateData,
    name_tag: Option<&str>,
    attempts: u32,
) -> Result<String, CallError> {
    use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    let mut tags = TagSpecification::builder()
        .resource_type(ResourceType::LaunchTemplate)
        .tags(tag(STACK_TAG, stack))
        .tags(tag(ADDRESS_TAG, &address.to_string()));
    if let Some(name_tag) = name_tag {
        tags = tags.tags(tag("Name", name_tag));
    }
    let tags = tags.build();
    let filter = |key: &str, value: String| Filter::builder().name(format!("tag:{key}")).values(value).build();
    let no_retry =
        aws_sdk_ec2::config::Builder::default().retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled());
    create(
        address,
        attempts,
        || async {
            let out = ec2
                .describe_launch_templates()
                .filters(filter(STACK_TAG, stack.to_owned()))
                .filters(filter(ADDRESS_TAG, address.to_string()))
                .send()
                .await
                .map_err(call_error("ec2:DescribeLaunchTemplates"))?;
            Ok(out.launch_templates().iter().find_map(|template| {
                owned(template, stack).filter(|(_, owner)| owner == address).map(|(id, _)| id.to_owned())
            }))
        },
        || async {
            let out = ec2
                .create_launch_template()
                .launch_template_name(name)
                .launch_template_data(data.clone())
                .client_token(client_token(stack, address))
                .tag_specifications(tags.clone())
                .customize()
                .config_override(no_retry.clone())
                .send()
                .await
                .map_err(call_error("ec2:CreateLaunchTemplate"))?;
            out.launch_template()
                .and_then(|t| t.launch_template_id())
                .map(str::to_owned)
                .ok_or_else(|| CallError::aws("ec2:CreateLaunchTemplate", None, "no template id returned"))
        },
    )
    .await
}

/// A new version of launch template `id` with `data`, made its default. Returns the version.
#[cfg(feature = "ec2")]
pub async fn new_default_version(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    data: aws_sdk_ec2::types::RequestLaunchTemplateData,
) -> Result<i64, CallError> {
    let out = ec2
        .create_launch_template_version()
        .launch_template_id(id)
        .launch_template_data(data)
        .send()
        .await
        .map_err(call_error("ec2:CreateLaunchTemplateVersion"))?;
    let version = out
        .launch_template_version()
        .and_then(|v| v.version_number())
        .ok_or_else(|| CallError::aws("ec2:CreateLaunchTemplateVersion", None, "no version returned"))?;
    ec2.modify_launch_template()
        .launch_template_id(id)
        .default_version(version.to_string())
        .send()
        .await
        .map_err(call_error("ec2:ModifyLaunchTemplate"))?;
    Ok(version)
}

/// Deletes launch template `id`; already gone is done.
#[cfg(feature = "ec2")]
pub async fn delete_launch_template(ec2: &aws_sdk_ec2::Client, id: &str, waits: Waits) -> Result<(), CallError> {
    delete(
        waits,
        |error| error.is(&Code::NotFound(Missing::LaunchTemplate)),
        || async {
            ec2.delete_launch_template()
                .launch_template_id(id)
                .send()
                .await
                .map(drop)
                .map_err(call_error("ec2:DeleteLaunchTemplate"))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(&'static [(&'static str, &'static str)]);

    impl Tagged for Item {
        fn id(&self) -> Option<&str> {
            Some("id-1")
        }
        fn tag(&self, key: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        }
    }

    #[test]
    fn ownership_needs_this_stack_and_an_address() {
        let ours = Item(&[(STACK_TAG, "acme"), (ADDRESS_TAG, "dev/net/vpc/main")]);
        assert_eq!(owned(&ours, "acme").map(|(id, a)| (id, a.to_string())), Some(("id-1", "dev/net/vpc/main".into())));
        assert!(owned(&ours, "other").is_none());
        assert!(owned(&Item(&[(STACK_TAG, "acme")]), "acme").is_none());
    }

    #[test]
    fn client_tokens_are_stable_distinct_and_short() {
        let a: Address = "dev/net/nat-gateway/a".parse().expect("address");
        let b: Address = "dev/net/nat-gateway/b".parse().expect("address");
        assert_eq!(client_token("acme", &a), client_token("acme", &a));
        assert_ne!(client_token("acme", &a), client_token("acme", &b));
        assert_ne!(client_token("acme", &a), client_token("other", &a));
        assert!(client_token("acme", &a).len() <= 64);
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in 0..20 {
            assert!(backoff(attempt) <= Duration::from_secs(10));
        }
    }

    #[test]
    fn codes_are_classified_and_enclave_faults_are_apart() {
        assert!(CallError::aws("ec2:CreateVpc", Some("RequestLimitExceeded"), "slow down").is_retryable());
        assert!(!CallError::aws("ec2:CreateVpc", Some("InvalidParameterValue"), "no").is_retryable());
        assert_eq!(Code::parse("InvalidRoute.NotFound"), Code::NotFound(Missing::Route));
        assert_eq!(Code::parse("Something.NotFound"), Code::NotFound(Missing::Other));
        let fault = CallError::enclave("dev/net/route/a: dev/net/nat-gateway/a has no id yet");
        assert_eq!(fault.code(), None);
        assert!(!fault.is_retryable());
        assert_eq!(fault.to_string(), "enclave: dev/net/route/a: dev/net/nat-gateway/a has no id yet");
    }
}
