//! The kinds of access resource, as a closed set shared by desired resources, observation and
//! apply (as in `enclave-net`): a kind that can appear in a plan is matched exhaustively, and an
//! attribute changes in place only when [`Kind::updatable`] names it.

use std::fmt;
use std::str::FromStr;

/// An access resource kind; its address segment is [`Kind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The account's KMS key for session encryption, session logs and the trail.
    KmsKey,
    /// The key's alias (`alias/enclave/<stack>/access`), by which policies and documents name it.
    KmsAlias,
    /// A CloudWatch Logs group (session logs, the trail's copy).
    LogGroup,
    /// An S3 bucket (session logs, trail logs).
    Bucket,
    /// The Session Manager preferences document (`SSM-SessionManagerRunShell`).
    SessionDocument,
    /// An IAM role (the instance role, the trail's delivery role).
    IamRole,
    /// The instance profile of the instance role.
    InstanceProfile,
    /// A customer-managed IAM policy (the people policy).
    IamPolicy,
    /// The bastion's security group.
    SecurityGroup,
    /// The bastion's launch template.
    LaunchTemplate,
    /// The bastion instance.
    Instance,
    /// The CloudTrail trail.
    Trail,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 12] = [
        Kind::KmsKey,
        Kind::KmsAlias,
        Kind::LogGroup,
        Kind::Bucket,
        Kind::SessionDocument,
        Kind::IamRole,
        Kind::InstanceProfile,
        Kind::IamPolicy,
        Kind::SecurityGroup,
        Kind::LaunchTemplate,
        Kind::Instance,
        Kind::Trail,
    ];

    /// The kind segment of its addresses.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::KmsKey => "kms-key",
            Kind::KmsAlias => "kms-alias",
            Kind::LogGroup => "log-group",
            Kind::Bucket => "s3-bucket",
            Kind::SessionDocument => "ssm-document",
            Kind::IamRole => "iam-role",
            Kind::InstanceProfile => "instance-profile",
            Kind::IamPolicy => "iam-policy",
            Kind::SecurityGroup => "security-group",
            Kind::LaunchTemplate => "launch-template",
            Kind::Instance => "instance",
            Kind::Trail => "trail",
        }
    }

    /// The attributes an apply changes in place; every other attribute a resource of this kind
    /// carries is immutable (a change replaces it).
    pub fn updatable(self) -> &'static [&'static str] {
        match self {
            Kind::KmsKey => &["description", "rotation", "policy", "tags"],
            Kind::KmsAlias => &["target_key"],
            Kind::LogGroup => &["retention_days", "kms_key", "tags"],
            Kind::Bucket => &["public_access_block", "versioning", "encryption", "policy", "lifecycle", "tags"],
            Kind::SessionDocument => &["content", "tags"],
            Kind::IamRole => &["trust_policy", "managed_policies", "policy", "tags"],
            Kind::InstanceProfile => &["role"],
            Kind::IamPolicy => &["document"],
            Kind::SecurityGroup => &["ingress", "egress", "tags"],
            Kind::LaunchTemplate => &["data", "tags"],
            Kind::Instance => &["http_tokens", "http_put_response_hop_limit", "security_groups", "tags"],
            Kind::Trail => &[
                "bucket",
                "multi_region",
                "log_file_validation",
                "kms_key",
                "log_group",
                "log_role",
                "global_service_events",
                "logging",
                "tags",
            ],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind segment that is not an access kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an access resource kind")]
pub struct UnknownKind;

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(text: &str) -> Result<Self, UnknownKind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or(UnknownKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_segment() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
        assert_eq!("vpc".parse::<Kind>(), Err(UnknownKind));
    }
}
