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
}

impl Clients {
    /// Clients from an account's config (see [`enclave_aws::Aws::account`]).
    pub fn new(config: &SdkConfig, counter: &CallCounter) -> Self {
        Clients {
            ecr: aws_sdk_ecr::Client::from_conf(
                aws_sdk_ecr::config::Builder::from(config).interceptor(counter.clone()).build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(config).interceptor(counter.clone()).build(),
            ),
        }
    }

    /// Clients made elsewhere (tests with `aws-smithy-mocks`).
    pub fn from_parts(ecr: aws_sdk_ecr::Client, kms: aws_sdk_kms::Client) -> Self {
        Clients { ecr, kms }
    }
}
