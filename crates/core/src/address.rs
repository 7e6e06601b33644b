//! Logical resource addresses: `dev/net/subnet/app-a`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Tag naming the stack a resource belongs to: with [`ADDRESS_TAG`], the ownership record that
/// replaces a state file. Every domain tags what it creates with both.
pub const STACK_TAG: &str = "enclave:stack";
/// Tag holding a resource's logical [`Address`].
pub const ADDRESS_TAG: &str = "enclave:address";

/// Where a resource lives in the spec: account, component (crate), kind and name.
///
/// Addresses are the identity of a resource across runs: they are written into the
/// `enclave:address` tag of everything enclave creates, so they must never depend on the order
/// of anything in the spec.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    account: String,
    component: String,
    kind: String,
    name: String,
}

/// Why a string is not an [`Address`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address like `dev/net/subnet/app-a`: four non-empty segments of [a-z0-9.-]")]
pub struct InvalidAddress(pub String);

fn valid_segment(segment: &str) -> bool {
    !segment.is_empty() && segment.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

impl Address {
    /// Builds an address from its four segments.
    pub fn new(account: &str, component: &str, kind: &str, name: &str) -> Result<Self, InvalidAddress> {
        if [account, component, kind, name].iter().all(|segment| valid_segment(segment)) {
            Ok(Address { account: account.into(), component: component.into(), kind: kind.into(), name: name.into() })
        } else {
            Err(InvalidAddress(format!("{account}/{component}/{kind}/{name}")))
        }
    }

    /// The account segment.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The component segment (`net`, `access`, ...).
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The resource kind (`vpc`, `subnet`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The name within the kind.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for Address {
    type Err = InvalidAddress;
    fn from_str(value: &str) -> Result<Self, InvalidAddress> {
        let parts: Vec<&str> = value.split('/').collect();
        match parts.as_slice() {
            [account, component, kind, name] => Address::new(account, component, kind, name),
            _ => Err(InvalidAddress(value.to_owned())),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.account, self.component, self.kind, self.name)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_text() {
        let address: Address = "dev/net/vpc-endpoint/ecr.api".parse().expect("valid");
        assert_eq!(address.kind(), "vpc-endpoint");
        assert_eq!(address.to_string(), "dev/net/vpc-endpoint/ecr.api");
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in ["dev/net/vpc", "dev//vpc/main", "Dev/net/vpc/main", "dev/net/vpc/main/x"] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }
}
