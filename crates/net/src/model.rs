//! The private-subnet topology of every account, as plain data.

use enclave_core::spec::{Account, FlowLogDestination, GatewayService, NatMode, Spec, TrafficType};
use enclave_core::{Violation, path, region};
use ipnet::Ipv4Net;
use serde::Serialize;

use crate::cidr;

/// The network of every account in the spec.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkModel {
    /// Stack name, carried by ownership tags.
    pub stack: String,
    /// Region of every VPC.
    pub region: String,
    /// One entry per account, in spec order.
    pub accounts: Vec<AccountNetwork>,
}

/// One account's VPC and everything in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountNetwork {
    /// Account name.
    pub account: String,
    /// 12-digit account id.
    pub account_id: String,
    /// Environment label.
    pub environment: String,
    /// The VPC.
    pub vpc: Vpc,
    /// AZ names in use, in order.
    pub zones: Vec<String>,
    /// Subnets, workload tiers first (tier by tier, AZ by AZ), then egress.
    pub subnets: Vec<Subnet>,
    /// Route tables.
    pub route_tables: Vec<RouteTable>,
    /// Whether an internet gateway exists (only when NAT needs one).
    pub internet_gateway: bool,
    /// NAT gateways.
    pub nat_gateways: Vec<NatGateway>,
    /// Security groups we manage, the VPC's default group included.
    pub security_groups: Vec<SecurityGroup>,
    /// VPC endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Flow logs, if enabled.
    pub flow_log: Option<FlowLog>,
    /// Interface endpoints this account cannot work without (Session Manager's; EKS's without
    /// NAT).
    pub required_endpoints: Vec<String>,
}

/// The CloudWatch Logs group an account's flow logs go to.
pub fn flow_log_group_name(stack: &str, account: &str) -> String {
    format!("/enclave/{stack}/{account}/vpc-flow-logs")
}

/// A VPC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vpc {
    /// CIDR block.
    pub cidr: Ipv4Net,
    /// DNS resolution through the Amazon resolver (needed by private DNS of endpoints).
    pub enable_dns_support: bool,
    /// DNS hostnames for instances (needed by private DNS of endpoints).
    pub enable_dns_hostnames: bool,
}

/// What a subnet is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubnetRole {
    /// Workloads: never routed to an internet gateway.
    Workload,
    /// NAT gateways only: the one tier routed to the internet gateway.
    Egress,
}

/// A subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subnet {
    /// `<tier>-<az letter>`.
    pub name: String,
    /// Tier name.
    pub tier: String,
    /// Workload or egress.
    pub role: SubnetRole,
    /// AZ name.
    pub zone: String,
    /// CIDR block.
    pub cidr: Ipv4Net,
    /// Whether instances get a public IP at launch; always false in what we build.
    pub map_public_ip_on_launch: bool,
}

/// A route table and the subnets associated with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteTable {
    /// `private-<az letter>` or `egress`.
    pub name: String,
    /// Associated subnet names.
    pub subnets: Vec<String>,
    /// Routes besides the implicit local one.
    pub routes: Vec<Route>,
}

/// A route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination block.
    pub destination: Ipv4Net,
    /// Where it goes.
    pub target: Target,
}

/// A route target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Target {
    /// The VPC's internet gateway.
    InternetGateway,
    /// The NAT gateway in the AZ with this letter.
    NatGateway(String),
}

/// A NAT gateway and its elastic IP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatGateway {
    /// AZ letter, its name.
    pub name: String,
    /// The egress subnet holding it.
    pub subnet: String,
}

/// A security group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    /// `endpoints`, or `default` for the VPC's default group.
    pub name: String,
    /// Description.
    pub description: String,
    /// Ingress rules.
    pub ingress: Vec<SecurityRule>,
    /// Egress rules.
    pub egress: Vec<SecurityRule>,
}

/// One security group rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityRule {
    /// `tcp`, `udp` or `-1`.
    pub protocol: String,
    /// First port.
    pub from_port: u16,
    /// Last port.
    pub to_port: u16,
    /// Peer block.
    pub cidr: Ipv4Net,
    /// Why the rule exists.
    pub description: String,
}

impl std::fmt::Display for SecurityRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from_port == self.to_port {
            write!(f, "{}/{} {}", self.protocol, self.from_port, self.cidr)
        } else {
            write!(f, "{}/{}-{} {}", self.protocol, self.from_port, self.to_port, self.cidr)
        }
    }
}

/// A VPC endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Short service name (`ssm`, `s3`).
    pub service: String,
    /// Full service name (`com.amazonaws.eu-west-1.ssm`).
    pub service_name: String,
    /// Interface or gateway details.
    pub kind: EndpointKind,
    /// The endpoint policy (IAM JSON): only the stack's accounts may use the endpoint, and a
    /// gateway endpoint reaches only their buckets and tables (plus the AWS-owned buckets ECR
    /// layers and OS packages come from).
    pub policy: serde_json::Value,
}

/// Interface or gateway endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// Network interfaces in subnets, reached through private DNS.
    Interface {
        /// Subnet names.
        subnets: Vec<String>,
        /// Security group name.
        security_group: String,
        /// Whether private DNS is on.
        private_dns: bool,
    },
    /// Prefix-list routes in route tables.
    Gateway {
        /// Route table names.
        route_tables: Vec<String>,
    },
}

/// VPC flow logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowLog {
    /// Destination type.
    pub destination: FlowLogDestination,
    /// Traffic recorded.
    pub traffic: TrafficType,
    /// Log group (CloudWatch Logs) or key prefix (S3).
    pub log_group: String,
    /// Retention in days.
    pub retention_days: u16,
}

/// The last letter of an AZ name: `a` for `eu-west-1a`.
fn letter(zone: &str) -> String {
    zone.chars().last().map(String::from).unwrap_or_default()
}

/// Interface endpoints: callers from the stack's accounts only.
fn interface_policy(account_ids: &[String]) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "StackAccountsOnly",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_ids}},
        }],
    })
}

/// Gateway endpoints: the stack's accounts, reaching only resources the stack's accounts own,
/// plus, for S3, the AWS-owned buckets behind ECR image layers and Amazon Linux packages (nodes
/// without NAT pull through here).
fn gateway_policy(service: GatewayService, account_ids: &[String], region: &str) -> serde_json::Value {
    let prefix = match service {
        GatewayService::S3 => "s3",
        GatewayService::Dynamodb => "dynamodb",
    };
    let mut statements = vec![serde_json::json!({
        "Sid": "StackResourcesOnly",
        "Effect": "Allow",
        "Principal": "*",
        "Action": format!("{prefix}:*"),
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalAccount": account_ids, "aws:ResourceAccount": account_ids}},
    })];
    if service == GatewayService::S3 {
        let partition = enclave_core::region::partition(region);
        statements.push(serde_json::json!({
            "Sid": "AwsOwnedArtifacts",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": [
                format!("arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*"),
                format!("arn:{partition}:s3:::al2023-repos-{region}-*/*"),
            ],
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_ids}},
        }));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

/// Builds every account's network; fails with located violations when a layout does not fit.
pub fn build(spec: &Spec) -> Result<NetworkModel, Vec<Violation>> {
    let region = region::lookup(spec.organization.region.as_str()).ok_or_else(|| {
        vec![Violation::new(path!("organization", "region"), format!("unknown region `{}`", spec.organization.region))]
    })?;
    let mut accounts = Vec::new();
    let mut violations = Vec::new();
    for (index, account) in spec.accounts.iter().enumerate() {
        match build_account(spec, account, index, region) {
            Ok(network) => accounts.push(network),
            Err(mut found) => violations.append(&mut found),
        }
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(NetworkModel { stack: spec.stack().to_string(), region: region.code.to_owned(), accounts })
}

fn build_account(
    spec: &Spec,
    account: &Account,
    index: usize,
    region: region::RegionInfo,
) -> Result<AccountNetwork, Vec<Violation>> {
    let network = &account.network;
    let layout = cidr::allocate(account.vpc_cidr.net(), network, &path!("accounts", index, "network"))?;
    let zones: Vec<String> = (0..usize::from(network.azs))
        .map(|i| {
            region.zone(i).ok_or_else(|| {
                vec![Violation::new(
                    path!("accounts", index, "network", "azs"),
                    format!("region {} has {} availability zones", region.code, region.zone_count()),
                )]
            })
        })
        .collect::<Result<_, _>>()?;
    let nat = network.nat != NatMode::None;

    let mut subnets = Vec::new();
    for tier in &layout.tiers {
        for (zone, cidr) in zones.iter().zip(&tier.subnets) {
            subnets.push(Subnet {
                name: format!("{}-{}", tier.name, letter(zone)),
                tier: tier.name.clone(),
                role: SubnetRole::Workload,
                zone: zone.clone(),
                cidr: *cidr,
                map_public_ip_on_launch: false,
            });
        }
    }
    if nat {
        for (zone, cidr) in zones.iter().zip(&layout.egress.subnets) {
            subnets.push(Subnet {
                name: format!("egress-{}", letter(zone)),
                tier: "egress".into(),
                role: SubnetRole::Egress,
                zone: zone.clone(),
                cidr: *cidr,
                map_public_ip_on_launch: false,
            });
        }
    }

    let nat_gateways: Vec<NatGateway> = match network.nat {
        NatMode::PerAz => zones
            .iter()
            .map(|zone| NatGateway { name: letter(zone), subnet: format!("egress-{}", letter(zone)) })
            .collect(),
        NatMode::Single => zones
            .first()
            .map(|zone| NatGateway { name: letter(zone), subnet: format!("egress-{}", letter(zone)) })
            .into_iter()
            .collect(),
        NatMode::None => Vec::new(),
    };

    let everywhere: Ipv4Net = "0.0.0.0/0".parse().unwrap_or_default();
    let mut route_tables: Vec<RouteTable> = zones
        .iter()
        .map(|zone| {
            let az = letter(zone);
            let nat_for_zone = match network.nat {
                NatMode::PerAz => Some(az.clone()),
                NatMode::Single => nat_gateways.first().map(|gateway| gateway.name.clone()),
                NatMode::None => None,
            };
            RouteTable {
                name: format!("private-{az}"),
                subnets: subnets
                    .iter()
                    .filter(|subnet| subnet.role == SubnetRole::Workload && &subnet.zone == zone)
                    .map(|subnet| subnet.name.clone())
                    .collect(),
                routes: nat_for_zone
                    .map(|gateway| Route { destination: everywhere, target: Target::NatGateway(gateway) })
                    .into_iter()
                    .collect(),
            }
        })
        .collect();
    if nat {
        route_tables.push(RouteTable {
            name: "egress".into(),
            subnets: subnets.iter().filter(|s| s.role == SubnetRole::Egress).map(|s| s.name.clone()).collect(),
            routes: vec![Route { destination: everywhere, target: Target::InternetGateway }],
        });
    }

    let vpc_cidr = account.vpc_cidr.net();
    let security_groups = vec![
        SecurityGroup {
            name: "default".into(),
            description: "default VPC security group, emptied: nothing may use it".into(),
            ingress: Vec::new(),
            egress: Vec::new(),
        },
        SecurityGroup {
            name: "endpoints".into(),
            description: "interface endpoints: HTTPS from inside the VPC only".into(),
            ingress: vec![SecurityRule {
                protocol: "tcp".into(),
                from_port: 443,
                to_port: 443,
                cidr: vpc_cidr,
                description: "HTTPS from the VPC".into(),
            }],
            egress: Vec::new(),
        },
    ];

    let endpoint_tier = network
        .endpoints
        .subnet_tier
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| network.tiers.first().map(|tier| tier.name.to_string()))
        .unwrap_or_default();
    let endpoint_subnets: Vec<String> =
        subnets.iter().filter(|s| s.tier == endpoint_tier).map(|s| s.name.clone()).collect();
    let private_tables: Vec<String> = route_tables
        .iter()
        .filter(|table| table.name.starts_with("private-"))
        .map(|table| table.name.clone())
        .collect();
    let mut account_ids: Vec<String> = spec.accounts.iter().map(|a| a.id.to_string()).collect();
    account_ids.sort();
    let mut endpoints: Vec<Endpoint> = network
        .endpoints
        .interface
        .iter()
        .map(|service| Endpoint {
            service: service.to_string(),
            service_name: format!("com.amazonaws.{}.{service}", region.code),
            kind: EndpointKind::Interface {
                subnets: endpoint_subnets.clone(),
                security_group: "endpoints".into(),
                private_dns: true,
            },
            policy: interface_policy(&account_ids),
        })
        .collect();
    let mut gateways: Vec<GatewayService> = network.endpoints.gateway.clone();
    gateways.sort();
    endpoints.extend(gateways.iter().map(|service| Endpoint {
        service: service.to_string(),
        service_name: format!("com.amazonaws.{}.{service}", region.code),
        kind: EndpointKind::Gateway { route_tables: private_tables.clone() },
        policy: gateway_policy(*service, &account_ids, region.code),
    }));

    let flow_log = network.flow_logs.enabled.then(|| FlowLog {
        destination: network.flow_logs.destination,
        traffic: network.flow_logs.traffic,
        log_group: flow_log_group_name(&spec.stack().to_string(), &account.name.to_string()),
        retention_days: network.flow_logs.retention_days,
    });

    Ok(AccountNetwork {
        account: account.name.to_string(),
        account_id: account.id.to_string(),
        environment: account.environment.to_string(),
        vpc: Vpc { cidr: vpc_cidr, enable_dns_support: true, enable_dns_hostnames: true },
        zones,
        subnets,
        route_tables,
        internet_gateway: nat,
        nat_gateways,
        security_groups,
        endpoints,
        flow_log,
        required_endpoints: enclave_core::validate::required_interface_endpoints(spec, account)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(region: &str) -> NetworkModel {
        let text = format!(
            "organization: {{ name: acme, region: {region}, stack: gov }}\n\
             network: {{ azs: 2, nat: none, tiers: [{{ name: app, size: 24, slot: 0 }}], \
             endpoints: {{ interface: [ssm, ssmmessages, ec2messages, ecr.api, ecr.dkr, logs, sts], gateway: [s3] }} }}\n\
             accounts: [{{ name: dev, id: \"111111111111\", environment: dev, vpc_cidr: 10.1.0.0/16 }}]\n"
        );
        let loaded = enclave_core::config::load_str("spec.yaml", &text).expect("valid spec");
        build(&loaded.spec).expect("fits")
    }

    fn s3_policy(model: &NetworkModel) -> String {
        let endpoint = model.accounts[0].endpoints.iter().find(|e| e.service == "s3").expect("s3 endpoint");
        endpoint.policy.to_string()
    }

    #[test]
    fn gateway_policies_name_buckets_in_the_partition_of_the_region() {
        assert!(s3_policy(&model("eu-west-1")).contains("arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"));
        let gov = s3_policy(&model("us-gov-west-1"));
        assert!(gov.contains("arn:aws-us-gov:s3:::prod-us-gov-west-1-starport-layer-bucket/*"), "{gov}");
        assert!(!gov.contains("arn:aws:"), "{gov}");
    }
}
