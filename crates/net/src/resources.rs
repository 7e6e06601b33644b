//! The network model as plan resources: addresses, compared attributes and dependencies.

use enclave_core::Address;
use enclave_core::plan::Resource;
use enclave_core::spec::FlowLogDestination;
use serde_json::json;

use crate::kind::Kind;
use crate::model::{AccountNetwork, EndpointKind, NetworkModel, Target};

pub use enclave_core::address::{ADDRESS_TAG, STACK_TAG};
/// Tag holding a subnet's tier.
pub const TIER_TAG: &str = "enclave:tier";

/// The component segment of every address this crate owns.
pub const COMPONENT: &str = "net";

/// The address of `kind`/`name` in `account`'s network.
pub fn address(account: &str, kind: Kind, name: &str) -> Address {
    // Names come from validated spec names, AZ letters and service names, all valid segments.
    Address::new(account, COMPONENT, kind.as_str(), name)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// Every resource of every account, each after the ones it needs.
pub fn desired(model: &NetworkModel) -> Vec<Resource> {
    model.accounts.iter().flat_map(|network| account_resources(&model.stack, &model.region, network)).collect()
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items
}

/// The tags enclave manages on a resource besides the ownership tags: `Name`, and the tier of a
/// subnet. Removing or changing one is drift.
pub fn tags(account: &str, kind: &str, name: &str, extra: &[(&str, &str)]) -> serde_json::Value {
    let mut tags = serde_json::Map::new();
    tags.insert("Name".into(), json!(format!("{account}-{kind}-{name}")));
    for (key, value) in extra {
        tags.insert((*key).to_owned(), json!(value));
    }
    serde_json::Value::Object(tags)
}

/// The name of the route to `destination` in `table`: `<table>-default` for `0.0.0.0/0`,
/// `<table>-10-9-0-0-16` otherwise.
pub fn route_name(table: &str, destination: &str) -> String {
    if destination == "0.0.0.0/0" {
        format!("{table}-default")
    } else {
        format!("{table}-{}", destination.replace(['.', '/', ':'], "-"))
    }
}

/// The name of the role VPC flow logs deliver to CloudWatch Logs with (one per account).
pub fn flow_log_role_name(stack: &str) -> String {
    format!("{stack}-vpc-flow-logs")
}

pub use enclave_core::names::ROLE_PATH;

fn account_resources(stack: &str, region: &str, network: &AccountNetwork) -> Vec<Resource> {
    let account = network.account.as_str();
    let at = |kind: Kind, name: &str| address(account, kind, name);
    let tagged =
        |kind: Kind, name: &str| Resource::new(at(kind, name)).attr("tags", tags(account, kind.as_str(), name, &[]));
    let vpc = at(Kind::Vpc, "main");
    let mut out = vec![
        tagged(Kind::Vpc, "main")
            .immutable("cidr_block", network.vpc.cidr.to_string())
            .attr("enable_dns_support", network.vpc.enable_dns_support)
            .attr("enable_dns_hostnames", network.vpc.enable_dns_hostnames),
    ];
    for subnet in &network.subnets {
        out.push(
            Resource::new(at(Kind::Subnet, &subnet.name))
                .immutable("cidr_block", subnet.cidr.to_string())
                .immutable("availability_zone", subnet.zone.clone())
                .attr("map_public_ip_on_launch", subnet.map_public_ip_on_launch)
                .attr("tags", tags(account, "subnet", &subnet.name, &[(TIER_TAG, &subnet.tier)]))
                .after(&vpc),
        );
    }
    let igw = at(Kind::InternetGateway, "main");
    if network.internet_gateway {
        out.push(tagged(Kind::InternetGateway, "main").attr("vpc", vpc.to_string()).after(&vpc));
    }
    for gateway in &network.nat_gateways {
        let eip_name = format!("nat-{}", gateway.name);
        let eip = at(Kind::Eip, &eip_name);
        let subnet = at(Kind::Subnet, &gateway.subnet);
        out.push(tagged(Kind::Eip, &eip_name).immutable("domain", "vpc").after(&vpc));
        out.push(
            tagged(Kind::NatGateway, &gateway.name)
                .immutable("subnet", subnet.to_string())
                .immutable("allocation", eip.to_string())
                .immutable("connectivity_type", "public")
                .after(&subnet)
                .after(&eip)
                .after(&igw),
        );
    }
    for table in &network.route_tables {
        let table_address = at(Kind::RouteTable, &table.name);
        out.push(tagged(Kind::RouteTable, &table.name).immutable("vpc", vpc.to_string()).after(&vpc));
        for subnet in &table.subnets {
            let subnet_address = at(Kind::Subnet, subnet);
            out.push(
                Resource::new(at(Kind::RouteTableAssociation, subnet))
                    .attr("route_table", table_address.to_string())
                    .after(&subnet_address)
                    .after(&table_address),
            );
        }
        for route in &table.routes {
            let target = match &route.target {
                Target::InternetGateway => igw.clone(),
                Target::NatGateway(name) => at(Kind::NatGateway, name),
            };
            out.push(
                Resource::new(at(Kind::Route, &route_name(&table.name, &route.destination.to_string())))
                    .immutable("route_table", table_address.to_string())
                    .immutable("destination", route.destination.to_string())
                    .attr("target", target.to_string())
                    .after(&table_address)
                    .after(&target),
            );
        }
    }
    for group in &network.security_groups {
        let kind = if group.name == "default" { Kind::DefaultSecurityGroup } else { Kind::SecurityGroup };
        let name = if group.name == "default" { "main" } else { group.name.as_str() };
        let mut resource = tagged(kind, name)
            .attr("ingress", group.ingress.iter().map(ToString::to_string).collect::<Vec<_>>())
            .attr("egress", group.egress.iter().map(ToString::to_string).collect::<Vec<_>>())
            .after(&vpc);
        if kind == Kind::SecurityGroup {
            resource = resource.immutable("description", group.description.clone());
        }
        out.push(resource);
    }
    for endpoint in &network.endpoints {
        let mut resource = tagged(Kind::VpcEndpoint, &endpoint.service)
            .immutable("service_name", endpoint.service_name.clone())
            .attr("policy", endpoint.policy.clone())
            .after(&vpc);
        match &endpoint.kind {
            EndpointKind::Interface { subnets, security_group, private_dns } => {
                let group = at(Kind::SecurityGroup, security_group);
                resource = resource
                    .immutable("type", "Interface")
                    .attr("subnets", sorted(subnets.iter().map(|s| at(Kind::Subnet, s).to_string())))
                    .attr("security_groups", vec![group.to_string()])
                    .attr("private_dns_enabled", *private_dns)
                    .after(&group);
                for subnet in subnets {
                    resource = resource.after(&at(Kind::Subnet, subnet));
                }
            }
            EndpointKind::Gateway { route_tables } => {
                resource = resource
                    .immutable("type", "Gateway")
                    .attr("route_tables", sorted(route_tables.iter().map(|t| at(Kind::RouteTable, t).to_string())));
                for table in route_tables {
                    resource = resource.after(&at(Kind::RouteTable, table));
                }
            }
        }
        out.push(resource);
    }
    if let Some(flow_log) = &network.flow_log {
        let destination = match flow_log.destination {
            FlowLogDestination::CloudWatchLogs => "cloud-watch-logs",
            FlowLogDestination::S3 => "s3",
        };
        let partition = enclave_core::region::partition(region);
        let id = &network.account_id;
        let group = at(Kind::LogGroup, "flow-logs");
        let role = at(Kind::IamRole, "flow-logs");
        let group_arn = format!("arn:{partition}:logs:{region}:{id}:log-group:{}", flow_log.log_group);
        out.push(
            Resource::new(group.clone())
                .immutable("name", flow_log.log_group.clone())
                .attr("retention_days", json!(flow_log.retention_days)),
        );
        // Trusted by the flow-logs service for this account's flow logs only; allowed to write
        // to this one log group only.
        out.push(
            Resource::new(role.clone())
                .immutable("name", flow_log_role_name(stack))
                .attr(
                    "trust_policy",
                    json!({
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": { "Service": "vpc-flow-logs.amazonaws.com" },
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": { "aws:SourceAccount": id },
                                "ArnLike": { "aws:SourceArn": format!("arn:{partition}:ec2:{region}:{id}:vpc-flow-log/*") },
                            },
                        }],
                    }),
                )
                .attr(
                    "policy",
                    json!({
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                            "Resource": [group_arn.clone(), format!("{group_arn}:*")],
                        }],
                    }),
                )
                .after(&group),
        );
        out.push(
            tagged(Kind::FlowLog, "main")
                .immutable("destination_type", destination)
                .immutable("traffic_type", flow_log.traffic.to_string())
                .immutable("log_group", group.to_string())
                .immutable("role", role.to_string())
                .after(&vpc)
                .after(&group)
                .after(&role),
        );
    }
    out
}
