//! The AWS clients of one account for deploy. Their errors are the toolkit's ([`CallError`],
//! classified by [`call_error`]).

use aws_config::SdkConfig;
use enclave_aws::CallCounter;
pub use enclave_aws::reconcile::{CallError, Code, Existing, Missing, call_error};

/// Every client deploy needs in one account, each counting its calls.
#[derive(Clone, Debug)]
pub struct Clients {
    /// ECR: repositories, their policies, images and scan findings.
    pub ecr: aws_sdk_ecr::Client,
    /// KMS: the account key behind its alias (what repositories are encrypted with).
    pub kms: aws_sdk_kms::Client,
    /// EKS: clusters and node groups.
    pub eks: aws_sdk_eks::Client,
    /// IAM: cluster and node roles, OIDC providers.
    pub iam: aws_sdk_iam::Client,
    /// EC2: node launch templates.
    pub ec2: aws_sdk_ec2::Client,
}

impl Clients {
    /// Clients from an account's config (see [`enclave_aws::Aws::account`]).
    pub fn new(config: &SdkConfig, counter: &CallCounter) -> Self {
        Clients {
            ecr: enclave_aws::counted_client!(aws_sdk_ecr, config, counter),
            kms: enclave_aws::counted_client!(aws_sdk_kms, config, counter),
            eks: enclave_aws::counted_client!(aws_sdk_eks, config, counter),
            iam: enclave_aws::counted_client!(aws_sdk_iam, config, counter),
            ec2: enclave_aws::counted_client!(aws_sdk_ec2, config, counter),
        }
    }
}
