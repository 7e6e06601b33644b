//! The access model: what each account gets, computed from the spec and from where the network
//! puts things (the [`Placement`] the binary hands over, so that this crate never depends on
//! `enclave-net`).

use enclave_core::Address;
use enclave_core::region;
use enclave_core::spec::Spec;
use enclave_core::validate::LOG_RETENTION_DAYS;
use serde::Serialize;
use sha2::Digest;

/// The SSM public parameter holding the latest Amazon Linux 2023 image for x86_64.
pub const AL2023_PARAMETER: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// The account-wide Session Manager preferences document.
pub const SESSION_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// The AWS-managed policy every Session Manager instance needs.
pub const SSM_CORE_POLICY: &str = "AmazonSSMManagedInstanceCore";

/// The id of the one lifecycle rule enclave keeps on its buckets (expiry).
pub const LIFECYCLE_RULE: &str = "enclave-expiry";

/// The key prefix of session logs in the sessions bucket.
pub const SESSION_LOG_PREFIX: &str = "sessions";

/// Where the network puts what access needs in one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Account name.
    pub account: String,
    /// 12-digit account id.
    pub account_id: String,
    /// The account's VPC (a `net` address).
    pub vpc: Address,
    /// The VPC's CIDR: the bastion may reach the interface endpoints in it on 443.
    pub vpc_cidr: String,
    /// The subnet of the bastion's tier in the first AZ (a `net` address).
    pub bastion_subnet: Option<Address>,
    /// The bastion's image.
    pub image: Image,
}

/// Which image the bastion runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "source", content = "id", rename_all = "kebab-case")]
pub enum Image {
    /// Pinned in the spec (`access.bastion.ami`).
    Pinned(String),
    /// Read from [`AL2023_PARAMETER`] by a run that reaches AWS.
    Resolved(String),
    /// To be read from [`AL2023_PARAMETER`] when the bastion is created (offline plans).
    Latest,
}

impl Image {
    /// The image as a plan shows it: the id, or where it will come from.
    pub fn shown(&self) -> String {
        match self {
            Image::Pinned(id) | Image::Resolved(id) => id.clone(),
            Image::Latest => format!("resolve:ssm:{AL2023_PARAMETER}"),
        }
    }
}

/// Access for every account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccessModel {
    /// Stack name, carried by ownership tags.
    pub stack: String,
    /// Region.
    pub region: String,
    /// ARN partition of the region.
    pub partition: String,
    /// One entry per account, in spec order.
    pub accounts: Vec<AccountAccess>,
}

/// One account's access and audit resources.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountAccess {
    /// Account name.
    pub account: String,
    /// 12-digit account id.
    pub account_id: String,
    /// The Session Manager baseline, when enabled.
    pub session: Option<Session>,
    /// The bastion, when enabled.
    pub bastion: Option<BastionHost>,
    /// The trail, when enabled.
    pub trail: Option<Trail>,
    /// Whether the account runs a cluster or holds the registry, whose secrets and images the
    /// account's key encrypts too (the deploy domain names it by its alias).
    pub hosts_workloads: bool,
}

impl AccountAccess {
    /// Whether the account needs its KMS key (anything to encrypt).
    pub fn needs_key(&self) -> bool {
        self.session.is_some() || self.trail.is_some() || self.hosts_workloads
    }
}

/// The Session Manager baseline of one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Session {
    /// Idle timeout, minutes.
    pub idle_timeout_minutes: u8,
    /// Days logs are kept.
    pub log_retention_days: u16,
    /// `runAsDefaultUser`, when `runAsEnabled`.
    pub run_as_user: Option<String>,
    /// Session log bucket.
    pub bucket: String,
    /// Session log group.
    pub log_group: String,
}

/// The bastion of one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BastionHost {
    /// EC2 instance type.
    pub instance_type: String,
    /// Its subnet (a `net` address).
    pub subnet: Address,
    /// Its VPC (a `net` address).
    pub vpc: Address,
    /// Where its egress may go (the interface endpoints live there).
    pub vpc_cidr: String,
    /// Its image.
    pub image: Image,
}

/// The trail of one account.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trail {
    /// Trail name.
    pub name: String,
    /// Log bucket.
    pub bucket: String,
    /// Days before log objects expire.
    pub retention_days: u16,
    /// The CloudWatch Logs copy's group.
    pub log_group: String,
    /// Its retention: the longest CloudWatch Logs accepts within `retention_days`.
    pub log_group_retention_days: u16,
    /// Record every region.
    pub multi_region: bool,
    /// Log file integrity validation.
    pub log_file_validation: bool,
}

/// The access model of `spec`, with the network's `placements` (one per account, in any order).
///
/// The spec is validated first: a bastion's tier exists in every account, retentions are ones
/// the services accept. An account without placement gets no bastion.
pub fn build(spec: &Spec, placements: &[Placement]) -> AccessModel {
    let stack = spec.stack().to_string();
    let region = spec.organization.region.to_string();
    let partition = region::partition(&region).to_owned();
    let session = &spec.access.session_manager;
    let bastion = &spec.access.bastion;
    let trail = &spec.audit.cloudtrail;
    let accounts = spec
        .accounts
        .iter()
        .filter_map(|account| placements.iter().find(|p| p.account == account.name.as_str()))
        .map(|placement| {
            let id = placement.account_id.as_str();
            AccountAccess {
                account: placement.account.clone(),
                account_id: placement.account_id.clone(),
                session: session.enabled.then(|| Session {
                    idle_timeout_minutes: session.idle_timeout_minutes,
                    log_retention_days: session.log_retention_days,
                    run_as_user: session.run_as_user.as_ref().map(ToString::to_string),
                    bucket: bucket_name(&stack, id, &region, "sessions"),
                    log_group: format!("/enclave/{stack}/session-manager"),
                }),
                bastion: (session.enabled && bastion.enabled)
                    .then_some(placement.bastion_subnet.as_ref())
                    .flatten()
                    .map(|subnet| BastionHost {
                        instance_type: bastion.instance_type.clone(),
                        subnet: subnet.clone(),
                        vpc: placement.vpc.clone(),
                        vpc_cidr: placement.vpc_cidr.clone(),
                        image: match &bastion.ami {
                            Some(ami) => Image::Pinned(ami.clone()),
                            None => placement.image.clone(),
                        },
                    }),
                trail: trail.enabled.then(|| Trail {
                    name: stack.clone(),
                    bucket: bucket_name(&stack, id, &region, "trail"),
                    retention_days: trail.retention_days,
                    log_group: format!("/enclave/{stack}/cloudtrail"),
                    log_group_retention_days: LOG_RETENTION_DAYS
                        .into_iter()
                        .filter(|days| *days <= trail.retention_days)
                        .max()
                        .unwrap_or(1),
                    multi_region: trail.multi_region,
                    log_file_validation: trail.log_file_validation,
                }),
                hosts_workloads: spec.clusters.iter().any(|cluster| cluster.account.as_str() == placement.account)
                    || spec.registry.as_ref().is_some_and(|registry| registry.account.as_str() == placement.account),
            }
        })
        .collect();
    AccessModel { stack, region, partition, accounts }
}

/// A bucket name unique to the stack, account, region and purpose, within S3's 63 characters:
/// `<stack>-<account id>-<region>-<purpose>`, the stack shortened and suffixed with a digest of
/// its full name when the whole would be longer.
pub fn bucket_name(stack: &str, account_id: &str, region: &str, purpose: &str) -> String {
    let full = format!("{stack}-{account_id}-{region}-{purpose}");
    if full.len() <= 63 {
        return full;
    }
    let digest = sha2::Sha256::digest(stack.as_bytes());
    let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let room = 63 - (full.len() - stack.len()) - short.len() - 1;
    let head = stack[..room.min(stack.len())].trim_end_matches('-');
    format!("{head}-{short}-{account_id}-{region}-{purpose}")
}

/// The name of the role instances reach Session Manager with (and its instance profile).
pub fn instance_role_name(stack: &str) -> String {
    format!("{stack}-ssm-instance")
}

/// The name of the role CloudTrail delivers to CloudWatch Logs with.
pub fn trail_role_name(stack: &str) -> String {
    format!("{stack}-cloudtrail-logs")
}

/// The name of the managed policy people start sessions with.
pub fn people_policy_name(stack: &str) -> String {
    format!("{stack}-session-users")
}

/// The alias of the account's access key.
pub fn key_alias(stack: &str) -> String {
    enclave_core::names::account_key_alias(stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_fit_s3_and_stay_distinct() {
        assert_eq!(bucket_name("acme", "111111111111", "eu-west-1", "trail"), "acme-111111111111-eu-west-1-trail");
        let long = "a-very-long-stack-name-that-goes-on-and-on-forever";
        let one = bucket_name(long, "111111111111", "ap-southeast-2", "sessions");
        let other = bucket_name(&format!("{long}x"), "111111111111", "ap-southeast-2", "sessions");
        assert!(one.len() <= 63 && other.len() <= 63, "{one} {other}");
        assert_ne!(one, other);
        assert!(one.ends_with("-111111111111-ap-southeast-2-sessions"), "{one}");
        assert!(!one.contains("--"), "{one}");
    }
}
