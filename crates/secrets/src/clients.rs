//! The AWS clients of one account for secrets. Their errors are the toolkit's ([`CallError`],
//! classified by [`call_error`]).

use aws_config::SdkConfig;
use enclave_aws::CallCounter;
pub use enclave_aws::reconcile::{CallError, Code, Existing, Missing, call_error};

/// Every client the secrets domain needs in one account, each counting its calls.
#[derive(Clone, Debug)]
pub struct Clients {
    /// Secrets Manager: secrets, their values, policies and rotation.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// IAM: the roles reading them.
    pub iam: aws_sdk_iam::Client,
    /// EKS: Pod Identity associations.
    pub eks: aws_sdk_eks::Client,
    /// KMS: the account key behind its alias (what secrets are encrypted with).
    pub kms: aws_sdk_kms::Client,
}

macro_rules! client {
    ($crate_name:ident, $config:expr, $counter:expr) => {
        $crate_name::Client::from_conf(
            $crate_name::config::Builder::from($config).interceptor($counter.clone()).build(),
        )
    };
}

impl Clients {
    /// Clients from an account's config (see [`enclave_aws::Aws::account`]).
    pub fn new(config: &SdkConfig, counter: &CallCounter) -> Self {
        Clients {
            secrets: client!(aws_sdk_secretsmanager, config, counter),
            iam: client!(aws_sdk_iam, config, counter),
            eks: client!(aws_sdk_eks, config, counter),
            kms: client!(aws_sdk_kms, config, counter),
        }
    }
}
