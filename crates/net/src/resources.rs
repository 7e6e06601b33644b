//! The network model as plan resources: addresses, compared attributes and dependencies.

use enclave_core::Address;
use enclave_core::plan::Resource;
use enclave_core::spec::FlowLogDestination;
use serde_json::json;

use crate::model::{AccountNetwork, EndpointKind, NetworkModel, Target};

/// The component segment of every address this crate owns.
pub const COMPONENT: &str = "net";

fn address(account: &str, kind: &str, name: &str) -> Address {
    // Names come from validated spec names, AZ letters and service names, all valid segments.
    Address::new(account, COMPONENT, kind, name).unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// Every resource of every account, each after the ones it needs.
pub fn desired(model: &NetworkModel) -> Vec<Resource> {
    model.accounts.iter().flat_map(account_resources).collect()
}

fn account_resources(network: &AccountNetwork) -> Vec<Resource> {
    let account = network.account.as_str();
    let at = |kind: &str, name: &str| address(account, kind, name);
    let vpc = at("vpc", "main");
    let mut out = vec![
        Resource::new(vpc.clone())
            .immutable("cidr_block", network.vpc.cidr.to_string())
            .attr("enable_dns_support", network.vpc.enable_dns_support)
            .attr("enable_dns_hostnames", network.vpc.enable_dns_hostnames),
    ];
    for subnet in &network.subnets {
        out.push(
            Resource::new(at("subnet", &subnet.name))
                .immutable("cidr_block", subnet.cidr.to_string())
                .immutable("availability_zone", subnet.zone.clone())
                .attr("map_public_ip_on_launch", subnet.map_public_ip_on_launch)
                .attr("tier", subnet.tier.clone())
                .after(&vpc),
        );
    }
    let igw = at("internet-gateway", "main");
    if network.internet_gateway {
        out.push(Resource::new(igw.clone()).attr("vpc", vpc.to_string()).after(&vpc));
    }
    for gateway in &network.nat_gateways {
        let eip = at("eip", &format!("nat-{}", gateway.name));
        let subnet = at("subnet", &gateway.subnet);
        out.push(Resource::new(eip.clone()).attr("domain", "vpc").after(&vpc));
        out.push(
            Resource::new(at("nat-gateway", &gateway.name))
                .immutable("subnet", subnet.to_string())
                .immutable("allocation", eip.to_string())
                .attr("connectivity_type", "public")
                .after(&subnet)
                .after(&eip)
                .after(&igw),
        );
    }
    for table in &network.route_tables {
        let table_address = at("route-table", &table.name);
        out.push(Resource::new(table_address.clone()).attr("vpc", vpc.to_string()).after(&vpc));
        for subnet in &table.subnets {
            let subnet_address = at("subnet", subnet);
            out.push(
                Resource::new(at("route-table-association", subnet))
                    .attr("route_table", table_address.to_string())
                    .after(&subnet_address)
                    .after(&table_address),
            );
        }
        for route in &table.routes {
            let target = match &route.target {
                Target::InternetGateway => igw.clone(),
                Target::NatGateway(name) => at("nat-gateway", name),
            };
            let name = if route.destination.prefix_len() == 0 {
                "default".to_owned()
            } else {
                route.destination.to_string().replace(['.', '/'], "-")
            };
            out.push(
                Resource::new(at("route", &format!("{}-{name}", table.name)))
                    .attr("route_table", table_address.to_string())
                    .immutable("destination", route.destination.to_string())
                    .attr("target", target.to_string())
                    .after(&table_address)
                    .after(&target),
            );
        }
    }
    for group in &network.security_groups {
        let kind = if group.name == "default" { "default-security-group" } else { "security-group" };
        let name = if group.name == "default" { "main" } else { group.name.as_str() };
        let mut resource = Resource::new(at(kind, name))
            .attr("ingress", group.ingress.iter().map(ToString::to_string).collect::<Vec<_>>())
            .attr("egress", group.egress.iter().map(ToString::to_string).collect::<Vec<_>>())
            .after(&vpc);
        if kind == "security-group" {
            resource = resource.immutable("description", group.description.clone());
        }
        out.push(resource);
    }
    for endpoint in &network.endpoints {
        let mut resource = Resource::new(at("vpc-endpoint", &endpoint.service))
            .immutable("service_name", endpoint.service_name.clone())
            .attr("policy", endpoint.policy.clone())
            .after(&vpc);
        match &endpoint.kind {
            EndpointKind::Interface { subnets, security_group, private_dns } => {
                let group = at("security-group", security_group);
                resource = resource
                    .immutable("type", "Interface")
                    .attr("subnets", subnets.iter().map(|s| at("subnet", s).to_string()).collect::<Vec<_>>())
                    .attr("security_groups", vec![group.to_string()])
                    .attr("private_dns_enabled", *private_dns)
                    .after(&group);
                for subnet in subnets {
                    resource = resource.after(&at("subnet", subnet));
                }
            }
            EndpointKind::Gateway { route_tables } => {
                resource = resource.immutable("type", "Gateway").attr(
                    "route_tables",
                    route_tables.iter().map(|t| at("route-table", t).to_string()).collect::<Vec<_>>(),
                );
                for table in route_tables {
                    resource = resource.after(&at("route-table", table));
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
        out.push(
            Resource::new(at("flow-log", "main"))
                .immutable("destination_type", destination)
                .immutable("traffic_type", flow_log.traffic.to_string())
                .attr("log_group", flow_log.log_group.clone())
                .attr("retention_days", json!(flow_log.retention_days))
                .after(&vpc),
        );
    }
    out
}
