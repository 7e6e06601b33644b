//! The AWS clients of one account. Their errors are the toolkit's ([`CallError`], classified by
//! [`call_error`]).

use aws_config::SdkConfig;
use enclave_aws::CallCounter;
pub use enclave_aws::reconcile::{CallError, Code, Existing, Missing, call_error};

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
                aws_sdk_ec2::config::Builder::from(config)
                    .interceptor(counter.clone())
                    .retry_classifier(enclave_aws::RefusedIsFinal)
                    .build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(config)
                    .interceptor(counter.clone())
                    .retry_classifier(enclave_aws::RefusedIsFinal)
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(config)
                    .interceptor(counter.clone())
                    .retry_classifier(enclave_aws::RefusedIsFinal)
                    .build(),
            ),
        }
    }
}
