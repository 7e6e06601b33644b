//! The AWS clients of one account for access. Their errors are the toolkit's ([`CallError`],
//! classified by [`call_error`]).

use aws_config::SdkConfig;
use enclave_aws::CallCounter;
pub use enclave_aws::reconcile::{CallError, Code, Existing, Missing, call_error};

/// Every client access needs in one account, each counting its calls.
#[derive(Clone, Debug)]
pub struct Clients {
    /// EC2: the bastion, its group and launch template.
    pub ec2: aws_sdk_ec2::Client,
    /// IAM: roles, the instance profile, the people policy.
    pub iam: aws_sdk_iam::Client,
    /// KMS: the access key and its alias.
    pub kms: aws_sdk_kms::Client,
    /// CloudWatch Logs: the session and trail log groups.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// S3: the session and trail buckets.
    pub s3: aws_sdk_s3::Client,
    /// SSM: the session preferences document, the bastion image parameter.
    pub ssm: aws_sdk_ssm::Client,
    /// CloudTrail: the trail.
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    /// The Resource Groups Tagging API: one paged call finds every tagged resource.
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

impl Clients {
    /// Clients from an account's config (see [`enclave_aws::Aws::account`]).
    pub fn new(config: &SdkConfig, counter: &CallCounter) -> Self {
        Clients {
            ec2: enclave_aws::counted_client!(aws_sdk_ec2, config, counter),
            iam: enclave_aws::counted_client!(aws_sdk_iam, config, counter),
            kms: enclave_aws::counted_client!(aws_sdk_kms, config, counter),
            logs: enclave_aws::counted_client!(aws_sdk_cloudwatchlogs, config, counter),
            // moto (and any endpoint override) serves buckets by path, not by virtual host.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(true)
                    .interceptor(counter.clone())
                    .retry_classifier(enclave_aws::RefusedIsFinal)
                    .build(),
            ),
            ssm: enclave_aws::counted_client!(aws_sdk_ssm, config, counter),
            cloudtrail: enclave_aws::counted_client!(aws_sdk_cloudtrail, config, counter),
            tagging: enclave_aws::counted_client!(aws_sdk_resourcegroupstagging, config, counter),
        }
    }
}
