//! IAM documents several domains write the same way.

use serde_json::{Value, json};

/// A trust policy letting AWS `service` (`ec2.amazonaws.com`, `eks.amazonaws.com`) assume a
/// role, optionally only on behalf of `source_arn` (the confused-deputy guard).
pub fn trust_policy(service: &str, source_arn: Option<&str>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole"
    });
    if let Some(arn) = source_arn {
        statement["Condition"] = json!({ "StringEquals": { "aws:SourceArn": arn } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// The ARN of an AWS-managed policy.
pub fn aws_managed_policy(partition: &str, name: &str) -> String {
    format!("arn:{partition}:iam::aws:policy/{name}")
}
