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

impl Clients {
    /// Clients from an account's config (see [`enclave_aws::Aws::account`]).
    pub fn new(config: &SdkConfig, counter: &CallCounter) -> Self {
        Clients {
            secrets: enclave_aws::counted_client!(aws_sdk_secretsmanager, config, counter),
            iam: enclave_aws::counted_client!(aws_sdk_iam, config, counter),
            eks: enclave_aws::counted_client!(aws_sdk_eks, config, counter),
            kms: enclave_aws::counted_client!(aws_sdk_kms, config, counter),
        }
    }
}
