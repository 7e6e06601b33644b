//! Network guardrails over the [`NetworkModel`]: the properties that make the VPCs private.
//!
//! Our own builder never produces a violation; the rules exist for what the model is compared
//! against (observed networks, hand-edited models from other tools) and as an executable
//! statement of the invariants.

use enclave_core::guardrail::{Hit, RuleSet, Severity};

use crate::kind::Kind;
use crate::resources::address;

use crate::model::{EndpointKind, NetworkModel, SubnetRole, Target};

/// RFC 1918 ranges: the only sources ingress may name.
fn is_private(cidr: &ipnet::Ipv4Net) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .filter_map(|range| range.parse::<ipnet::Ipv4Net>().ok())
        .any(|range| range.contains(cidr))
}

/// Every network rule, in id order.
pub fn rules() -> RuleSet<NetworkModel> {
    RuleSet::default()
        .with(NoWorkloadRouteToInternetGateway)
        .with(NoPublicIpOnLaunch)
        .with(NoIngressFromAnywhere)
        .with(AtLeastTwoZones)
        .with(SessionManagerEndpoints)
        .with(DefaultSecurityGroupEmpty)
        .with(FlowLogsEnabled)
        .with(NatPerZone)
        .with(EndpointPolicyScoped)
}

macro_rules! rule {
    ($name:ident, $id:literal, $($rule:tt)*) => {
        enclave_core::guardrail_rule!(impl for NetworkModel, $name, $id, None, $($rule)*);
    };
}

rule!(
    NoWorkloadRouteToInternetGateway,
    "NET001",
    Severity::Critical,
    "no workload subnet routes to an internet gateway",
    "route workload subnets through a NAT gateway in the egress tier, or through endpoints only",
    |model| {
        let mut hits = Vec::new();
        for network in &model.accounts {
            for table in &network.route_tables {
                let workload: Vec<&String> = table
                    .subnets
                    .iter()
                    .filter(|name| network.subnets.iter().any(|s| &s.name == *name && s.role == SubnetRole::Workload))
                    .collect();
                if workload.is_empty() {
                    continue;
                }
                for route in table.routes.iter().filter(|route| route.target == Target::InternetGateway) {
                    hits.push(Hit::new(
                        address(&network.account, Kind::RouteTable, &table.name),
                        format!(
                            "route {} -> internet gateway exposes workload subnets {}",
                            route.destination,
                            workload.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        hits
    }
);

rule!(
    NoPublicIpOnLaunch,
    "NET002",
    Severity::High,
    "no subnet assigns public IPs at launch",
    "set map_public_ip_on_launch to false",
    |model| {
        model
            .accounts
            .iter()
            .flat_map(|network| {
                network.subnets.iter().filter(|s| s.map_public_ip_on_launch).map(move |subnet| {
                    Hit::new(
                        address(&network.account, Kind::Subnet, &subnet.name),
                        "instances launched here get a public IP",
                    )
                })
            })
            .collect()
    }
);

rule!(
    NoIngressFromAnywhere,
    "NET003",
    Severity::Critical,
    "no security group allows ingress from outside the private address ranges (0.0.0.0/0 included)",
    "allow only the VPC CIDR or other private peers",
    |model| {
        let mut hits = Vec::new();
        for network in &model.accounts {
            for group in &network.security_groups {
                for rule in group.ingress.iter().filter(|rule| !is_private(&rule.cidr)) {
                    hits.push(Hit::new(
                        address(&network.account, Kind::SecurityGroup, &group.name),
                        format!("ingress {rule} admits addresses outside the private ranges"),
                    ));
                }
            }
        }
        hits
    }
);

rule!(
    AtLeastTwoZones,
    "NET004",
    Severity::Medium,
    "every VPC spans at least two availability zones",
    "set network.azs to 2 or more",
    |model| {
        model
            .accounts
            .iter()
            .filter(|network| network.zones.len() < 2)
            .map(|network| {
                Hit::new(
                    address(&network.account, Kind::Vpc, "main"),
                    format!("{} availability zone: one zone outage takes the account down", network.zones.len()),
                )
            })
            .collect()
    }
);

rule!(
    SessionManagerEndpoints,
    "NET005",
    Severity::High,
    "the interface endpoints the account needs exist (Session Manager's; EKS's without NAT)",
    "add the missing services to network.endpoints.interface",
    |model| {
        let mut hits = Vec::new();
        for network in &model.accounts {
            let missing: Vec<&str> = network
                .required_endpoints
                .iter()
                .map(String::as_str)
                .filter(|service| {
                    !network
                        .endpoints
                        .iter()
                        .any(|e| e.service == *service && matches!(e.kind, EndpointKind::Interface { .. }))
                })
                .collect();
            if !missing.is_empty() {
                hits.push(Hit::new(
                    address(&network.account, Kind::Vpc, "main"),
                    format!(
                        "missing interface endpoints {}: without them the private VPC cannot reach those services",
                        missing.join(", ")
                    ),
                ));
            }
        }
        hits
    }
);

rule!(
    DefaultSecurityGroupEmpty,
    "NET006",
    Severity::Medium,
    "the default security group has no rules",
    "remove every rule from the default security group",
    |model| {
        model
            .accounts
            .iter()
            .flat_map(|network| {
                network
                    .security_groups
                    .iter()
                    .filter(|g| g.name == "default" && !(g.ingress.is_empty() && g.egress.is_empty()))
                    .map(move |_| {
                        Hit::new(
                            address(&network.account, Kind::DefaultSecurityGroup, "main"),
                            "default security group has rules",
                        )
                    })
            })
            .collect()
    }
);

rule!(
    FlowLogsEnabled,
    "NET007",
    Severity::Low,
    "every VPC has flow logs",
    "set network.flow_logs.enabled to true",
    |model| {
        model
            .accounts
            .iter()
            .filter(|network| network.flow_log.is_none())
            .map(|network| {
                Hit::new(
                    address(&network.account, Kind::Vpc, "main"),
                    "flow logs are off: no record of rejected traffic",
                )
            })
            .collect()
    }
);

rule!(
    NatPerZone,
    "NET008",
    Severity::Info,
    "with NAT, every zone has its own NAT gateway",
    "set network.nat to per-az so one zone's outage does not cut egress for all",
    |model| {
        model
            .accounts
            .iter()
            .filter(|network| !network.nat_gateways.is_empty() && network.nat_gateways.len() < network.zones.len())
            .map(|network| {
                Hit::new(
                    address(&network.account, Kind::Vpc, "main"),
                    format!(
                        "{} NAT gateway(s) for {} zones: egress depends on one zone",
                        network.nat_gateways.len(),
                        network.zones.len()
                    ),
                )
            })
            .collect()
    }
);

#[cfg(test)]
mod tests {
    use enclave_core::config;
    use enclave_core::guardrail::Finding;

    use super::*;
    use crate::model::{Route, SecurityRule};

    fn reference() -> NetworkModel {
        let loaded = config::load_str(
            "spec.yaml",
            "organization: { name: acme, region: eu-west-1 }\n\
             network:\n  tiers: [{ name: app, size: 20, slot: 0 }]\n\
             accounts:\n  - { name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }\n",
        )
        .expect("valid spec");
        crate::build(&loaded.spec).expect("fits")
    }

    fn findings(model: &NetworkModel) -> Vec<Finding> {
        rules().run(model).findings
    }

    fn only(model: &NetworkModel) -> (String, String) {
        let found = findings(model);
        assert_eq!(found.len(), 1, "{found:#?}");
        (found[0].rule.clone(), found[0].address.to_string())
    }

    #[test]
    fn the_model_we_build_breaks_no_rule() {
        assert_eq!(findings(&reference()), []);
    }

    #[test]
    fn a_private_route_to_the_internet_gateway_is_critical() {
        let mut model = reference();
        let everywhere = "0.0.0.0/0".parse().expect("cidr");
        model.accounts[0].route_tables[0]
            .routes
            .push(Route { destination: everywhere, target: Target::InternetGateway });
        assert_eq!(only(&model), ("NET001".into(), "dev/net/route-table/private-a".into()));
        assert_eq!(findings(&model)[0].severity, Severity::Critical);
    }

    #[test]
    fn the_egress_route_to_the_internet_gateway_is_allowed() {
        let model = reference();
        let egress = model.accounts[0].route_tables.iter().find(|t| t.name == "egress").expect("egress table");
        assert!(egress.routes.iter().any(|r| r.target == Target::InternetGateway));
    }

    #[test]
    fn public_ips_open_ingress_and_default_group_rules_are_found() {
        let mut model = reference();
        model.accounts[0].subnets[1].map_public_ip_on_launch = true;
        assert_eq!(only(&model), ("NET002".into(), "dev/net/subnet/app-b".into()));

        let mut model = reference();
        let group = model.accounts[0].security_groups.iter_mut().find(|g| g.name == "endpoints").expect("group");
        group.ingress.push(SecurityRule {
            protocol: "tcp".into(),
            from_port: 22,
            to_port: 22,
            cidr: "0.0.0.0/0".parse().expect("cidr"),
            description: "ssh".into(),
        });
        assert_eq!(only(&model), ("NET003".into(), "dev/net/security-group/endpoints".into()));
        let mut model = reference();
        let group = model.accounts[0].security_groups.iter_mut().find(|g| g.name == "endpoints").expect("group");
        group.ingress[0].cidr = "0.0.0.0/1".parse().expect("cidr");
        assert_eq!(only(&model).0, "NET003", "half the internet is still the internet");

        let mut model = reference();
        let rule = model.accounts[0].security_groups[1].ingress[0].clone();
        model.accounts[0].security_groups[0].egress.push(rule);
        assert_eq!(only(&model), ("NET006".into(), "dev/net/default-security-group/main".into()));
    }

    #[test]
    fn one_zone_missing_endpoints_no_flow_logs_and_shared_nat_are_found() {
        let mut model = reference();
        model.accounts[0].zones.truncate(1);
        assert_eq!(only(&model), ("NET004".into(), "dev/net/vpc/main".into()));

        let mut model = reference();
        model.accounts[0].endpoints.retain(|e| e.service != "ssmmessages");
        assert_eq!(only(&model), ("NET005".into(), "dev/net/vpc/main".into()));
        let mut model = reference();
        model.accounts[0].endpoints.retain(|e| e.service != "ssmmessages");
        model.accounts[0].required_endpoints.clear();
        assert_eq!(findings(&model), [], "nothing required (Session Manager off), nothing missing");

        let mut model = reference();
        model.accounts[0].flow_log = None;
        assert_eq!(only(&model), ("NET007".into(), "dev/net/vpc/main".into()));

        let mut model = reference();
        model.accounts[0].nat_gateways.truncate(1);
        assert_eq!(only(&model), ("NET008".into(), "dev/net/vpc/main".into()));
    }

    #[test]
    fn endpoints_with_open_policies_are_found() {
        let mut model = reference();
        let s3 = model.accounts[0].endpoints.iter_mut().find(|e| e.service == "s3").expect("s3 endpoint");
        assert_eq!(s3.policy["Statement"][0]["Condition"]["StringEquals"]["aws:ResourceAccount"][0], "111111111111");
        s3.policy =
            serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]});
        assert_eq!(only(&model), ("NET009".into(), "dev/net/vpc-endpoint/s3".into()));
    }

    #[test]
    fn rule_ids_are_unique_and_documented() {
        let set = rules();
        let duplicates = enclave_core::guardrail::duplicate_ids(set.rules().map(|rule| rule.id()));
        assert!(duplicates.is_empty(), "reused rule ids: {duplicates:?}");
        assert!(set.rules().all(|rule| !rule.summary().is_empty() && !rule.remediation().is_empty()));
    }
}

rule!(
    EndpointPolicyScoped,
    "NET009",
    Severity::High,
    "every VPC endpoint policy limits callers to the stack's accounts",
    "give the endpoint a policy whose statements all carry an aws:PrincipalAccount condition",
    |model| {
        let mut hits = Vec::new();
        for network in &model.accounts {
            for endpoint in &network.endpoints {
                let statements = endpoint.policy["Statement"].as_array().cloned().unwrap_or_default();
                let scoped = !statements.is_empty()
                    && statements.iter().all(|statement| {
                        statement["Effect"] != "Allow"
                            || !statement["Condition"]["StringEquals"]["aws:PrincipalAccount"].is_null()
                    });
                if !scoped {
                    hits.push(Hit::new(
                        address(&network.account, Kind::VpcEndpoint, &endpoint.service),
                        "the endpoint policy lets any AWS principal use it (a path for data to leave through)",
                    ));
                }
            }
        }
        hits
    }
);
