//! The kinds of network resource, as a closed set: desired resources, observation and apply
//! all name them through [`Kind`], so a kind that can appear in a plan has a create, an update
//! and a delete (the compiler checks every `match`), and an attribute that changes in place is
//! one the apply knows how to change ([`Kind::updatable`]).

use std::fmt;
use std::str::FromStr;

/// A network resource kind; its address segment is [`Kind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The account's VPC.
    Vpc,
    /// A subnet of a tier in one AZ.
    Subnet,
    /// The internet gateway (only with NAT).
    InternetGateway,
    /// A NAT gateway's Elastic IP.
    Eip,
    /// A NAT gateway.
    NatGateway,
    /// A route table.
    RouteTable,
    /// A subnet's association with its route table.
    RouteTableAssociation,
    /// A route in a route table.
    Route,
    /// A security group of ours.
    SecurityGroup,
    /// The VPC's default security group, adopted and emptied.
    DefaultSecurityGroup,
    /// A VPC endpoint.
    VpcEndpoint,
    /// The VPC's flow log.
    FlowLog,
    /// The flow log's CloudWatch Logs group.
    LogGroup,
    /// The flow log's delivery role.
    IamRole,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 14] = [
        Kind::Vpc,
        Kind::Subnet,
        Kind::InternetGateway,
        Kind::Eip,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::RouteTableAssociation,
        Kind::Route,
        Kind::SecurityGroup,
        Kind::DefaultSecurityGroup,
        Kind::VpcEndpoint,
        Kind::FlowLog,
        Kind::LogGroup,
        Kind::IamRole,
    ];

    /// The kind segment of its addresses.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::InternetGateway => "internet-gateway",
            Kind::Eip => "eip",
            Kind::NatGateway => "nat-gateway",
            Kind::RouteTable => "route-table",
            Kind::RouteTableAssociation => "route-table-association",
            Kind::Route => "route",
            Kind::SecurityGroup => "security-group",
            Kind::DefaultSecurityGroup => "default-security-group",
            Kind::VpcEndpoint => "vpc-endpoint",
            Kind::FlowLog => "flow-log",
            Kind::LogGroup => "log-group",
            Kind::IamRole => "iam-role",
        }
    }

    /// The attributes an update changes in place; every other attribute of the kind's desired
    /// resources forces a replacement (`replace_on`). An update that would change anything else
    /// is refused rather than silently skipped.
    pub fn updatable(self) -> &'static [&'static str] {
        match self {
            Kind::Vpc => &["enable_dns_support", "enable_dns_hostnames", "tags"],
            Kind::Subnet => &["map_public_ip_on_launch", "tags"],
            Kind::InternetGateway => &["vpc", "tags"],
            Kind::Eip | Kind::NatGateway | Kind::RouteTable | Kind::FlowLog => &["tags"],
            Kind::RouteTableAssociation => &["route_table"],
            Kind::Route => &["target"],
            Kind::SecurityGroup | Kind::DefaultSecurityGroup => &["ingress", "egress", "tags"],
            Kind::VpcEndpoint => {
                &["subnets", "security_groups", "route_tables", "policy", "private_dns_enabled", "tags"]
            }
            Kind::LogGroup => &["retention_days"],
            Kind::IamRole => &["trust_policy", "policy"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind segment that names no network kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a network resource kind")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(value: &str) -> Result<Self, UnknownKind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == value).ok_or_else(|| UnknownKind(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_address_segment() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
        assert!("bucket".parse::<Kind>().is_err());
    }

    #[test]
    fn every_desired_attribute_is_updatable_in_place_or_forces_a_replacement() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference");
        for overlays in [&[][..], &["client-a"], &["staging"]] {
            let mut options = enclave_core::LoadOptions::new(&root);
            for overlay in overlays {
                options = options.overlay(*overlay);
            }
            let loaded = enclave_core::load(&options).expect("reference loads");
            let model = crate::build(&loaded.spec).expect("fits");
            let mut silent = std::collections::BTreeSet::new();
            for resource in crate::resources::desired(&model) {
                let kind: Kind = resource.address.kind().parse().expect("a network kind");
                for attribute in resource.attributes.keys() {
                    if !resource.replace_on.contains(attribute) && !kind.updatable().contains(&attribute.as_str()) {
                        silent.insert(format!("{kind}.{attribute}"));
                    }
                }
            }
            assert!(silent.is_empty(), "attributes that can change but cannot be updated in place: {silent:?}");
        }
    }
}
