//! The kinds of deploy resource, as a closed set shared by desired resources, observation and
//! apply (as in `enclave-net` and `enclave-access`): a kind that can appear in a plan is matched
//! exhaustively, and an attribute changes in place only when [`Kind::updatable`] names it.

use std::fmt;
use std::str::FromStr;

/// A deploy resource kind; its address segment is [`Kind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An ECR repository (one per app, in the registry account).
    Repository,
    /// An IAM role (a cluster's role, its nodes' role).
    IamRole,
    /// A node group's launch template.
    LaunchTemplate,
    /// An EKS cluster.
    Cluster,
    /// A cluster's IAM OIDC provider (for IRSA).
    OidcProvider,
    /// A managed node group.
    NodeGroup,
    /// An EKS managed add-on (`vpc-cni`, `coredns`, `kube-proxy`, `eks-pod-identity-agent`).
    Addon,
    /// An EKS access entry with its access policy.
    AccessEntry,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::Repository,
        Kind::IamRole,
        Kind::LaunchTemplate,
        Kind::Cluster,
        Kind::OidcProvider,
        Kind::NodeGroup,
        Kind::Addon,
        Kind::AccessEntry,
    ];

    /// The kind segment of its addresses.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Repository => "ecr-repository",
            Kind::IamRole => "iam-role",
            Kind::LaunchTemplate => "launch-template",
            Kind::Cluster => "eks-cluster",
            Kind::OidcProvider => "oidc-provider",
            Kind::NodeGroup => "node-group",
            Kind::Addon => "eks-addon",
            Kind::AccessEntry => "access-entry",
        }
    }

    /// The attributes an apply changes in place; every other attribute a resource of this kind
    /// carries is immutable (a change replaces it).
    pub fn updatable(self) -> &'static [&'static str] {
        match self {
            Kind::Repository => &["scan_on_push", "tag_mutability", "lifecycle", "policy"],
            Kind::IamRole => &["trust_policy", "managed_policies", "policy"],
            Kind::LaunchTemplate => &["data"],
            Kind::Cluster => &["version", "endpoint", "logging"],
            Kind::OidcProvider => &["client_ids"],
            Kind::NodeGroup => &["scaling", "version", "tags"],
            Kind::Addon => &[],
            Kind::AccessEntry => &["policy"],
        }
    }
}

impl Kind {
    /// The attributes set only at creation (`Resource::initial`): never compared after, never
    /// changed by an update.
    pub fn initial(self) -> &'static [&'static str] {
        match self {
            Kind::Cluster => &["subnets"],
            Kind::NodeGroup => &["subnets", "desired_size"],
            Kind::Repository
            | Kind::IamRole
            | Kind::LaunchTemplate
            | Kind::OidcProvider
            | Kind::Addon
            | Kind::AccessEntry => &[],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind segment that is not a deploy kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a deploy resource kind")]
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
