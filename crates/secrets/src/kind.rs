//! The closed set of resource kinds the secrets domain reconciles.

use std::fmt;
use std::str::FromStr;

/// A kind of secrets resource: its address segment, what an update changes in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A Secrets Manager secret (its value, key, policy, tags and rotation).
    Secret,
    /// The IAM role that reads an app's secrets (or, with Pod Identity, the External Secrets
    /// Operator's role that assumes them).
    IamRole,
    /// An EKS Pod Identity association of a role with a service account.
    PodIdentityAssociation,
}

impl Kind {
    /// Every kind, in dependency order.
    pub const ALL: [Kind; 3] = [Kind::IamRole, Kind::PodIdentityAssociation, Kind::Secret];

    /// The address segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::IamRole => "iam-role",
            Kind::PodIdentityAssociation => "pod-identity-association",
        }
    }

    /// The attributes an update changes in place; every other desired attribute is immutable.
    pub fn updatable(self) -> &'static [&'static str] {
        match self {
            Kind::Secret => &["description", "key", "policy", "rotation", "source", "recovery_days", "value"],
            Kind::IamRole => &["trust_policy", "managed_policies", "policy"],
            Kind::PodIdentityAssociation => &["role"],
        }
    }

    /// Attributes set at creation and never compared again.
    pub fn initial(self) -> &'static [&'static str] {
        match self {
            // A generated value is generated once; `value` is initial for those only.
            Kind::Secret | Kind::IamRole | Kind::PodIdentityAssociation => &[],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not a secrets kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a secrets resource kind")]
pub struct UnknownKind;

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(text: &str) -> Result<Self, UnknownKind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or(UnknownKind)
    }
}
