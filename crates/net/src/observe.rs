//! Observing what exists: the network resources of a stack in one account, rebuilt from
//! tag-filtered, batched Describe calls (one per resource type, plus pages, never one per
//! resource), as plan [`Resource`]s comparable with [`crate::resources::desired`].
//!
//! Ownership is recorded on the resources themselves: everything enclave creates carries
//! [`STACK_TAG`] and [`ADDRESS_TAG`]; nothing without them is observed, so nothing without them
//! is changed or deleted. Routes and route-table associations have no tags: they are observed
//! inside the route tables we own. The flow-log group and its delivery role are found by the
//! names enclave gives them (the role must also carry our stack tag).
//!
//! The calls of one account run concurrently; their number does not depend on how many subnets,
//! routes or endpoints exist.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, IpPermission, Tag};
use enclave_core::Address;
use enclave_core::plan::Resource;
use serde_json::{Value, json};

pub use crate::clients::CallError;
use crate::clients::{Clients, Code, Missing, call_error};
use crate::kind::Kind;
pub use crate::resources::{ADDRESS_TAG, STACK_TAG, TIER_TAG};
use crate::resources::{COMPONENT, flow_log_role_name, route_name};

/// Tags enclave manages besides the ownership tags; see [`crate::resources::tags`].
pub const MANAGED_TAGS: &[&str] = &["Name", TIER_TAG];

/// What an account holds for the stack: resources with the attributes
/// [`crate::resources::desired`] compares, and AWS ids by address (`vpc-...`, `subnet-...`, the
/// role's ARN, the log group's name).
pub use enclave_core::reconcile::Observed;

/// Why observation failed.
pub type ObserveError = CallError;

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(Tag::value)
}

pub use enclave_aws::reconcile::{Tagged, owned};

/// The managed tags of an EC2 resource, as the `tags` attribute.
fn managed_tags(tags: &[Tag]) -> Value {
    let mut out = serde_json::Map::new();
    for key in MANAGED_TAGS {
        if let Some(value) = tag(tags, key) {
            out.insert((*key).to_owned(), json!(value));
        }
    }
    Value::Object(out)
}

/// `tag:enclave:stack = stack`.
pub fn stack_filter(stack: &str) -> Filter {
    Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build()
}

/// `tag:enclave:address = address`.
pub fn address_filter(address: &Address) -> Filter {
    Filter::builder().name(format!("tag:{ADDRESS_TAG}")).values(address.to_string()).build()
}

pub use enclave_aws::reconcile::rule_strings;

fn rules(permissions: &[IpPermission]) -> Value {
    let mut all: Vec<String> = permissions.iter().flat_map(rule_strings).collect();
    all.sort();
    json!(all)
}

pub use enclave_aws::reconcile::policy_document;

macro_rules! all_pages {
    ($request:expr, $operation:literal) => {
        $request.into_paginator().items().send().collect::<Result<Vec<_>, _>>().await.map_err(call_error($operation))
    };
}

/// Observes the stack's network in the account `clients` are for. `account` is the account's
/// name in the spec.
pub async fn observe(clients: &Clients, stack: &str, account: &str) -> Result<Observed, ObserveError> {
    let ec2 = &clients.ec2;
    let stack_only = || stack_filter(stack);
    let (vpcs, subnets, tables, gateways, addresses, nats, groups, endpoints, flow_logs, log_group, role) = tokio::try_join!(
        async { all_pages!(ec2.describe_vpcs().filters(stack_only()), "ec2:DescribeVpcs") },
        async { all_pages!(ec2.describe_subnets().filters(stack_only()), "ec2:DescribeSubnets") },
        async { all_pages!(ec2.describe_route_tables().filters(stack_only()), "ec2:DescribeRouteTables") },
        async { all_pages!(ec2.describe_internet_gateways().filters(stack_only()), "ec2:DescribeInternetGateways") },
        async {
            ec2.describe_addresses()
                .filters(stack_only())
                .send()
                .await
                .map(|out| out.addresses.unwrap_or_default())
                .map_err(call_error("ec2:DescribeAddresses"))
        },
        async { all_pages!(ec2.describe_nat_gateways().filter(stack_only()), "ec2:DescribeNatGateways") },
        async { all_pages!(ec2.describe_security_groups().filters(stack_only()), "ec2:DescribeSecurityGroups") },
        async { all_pages!(ec2.describe_vpc_endpoints().filters(stack_only()), "ec2:DescribeVpcEndpoints") },
        async { all_pages!(ec2.describe_flow_logs().filter(stack_only()), "ec2:DescribeFlowLogs") },
        observe_log_group(clients, stack, account),
        observe_role(clients, stack, account),
    )?;

    let mut observed = Observed::default();
    // Ids first, so that references between resources can be written as addresses.
    let by_id: BTreeMap<String, Address> = (vpcs.iter().filter_map(|v| owned(v, stack)))
        .chain(subnets.iter().filter_map(|s| owned(s, stack)))
        .chain(tables.iter().filter_map(|t| owned(t, stack)))
        .chain(gateways.iter().filter_map(|g| owned(g, stack)))
        .chain(addresses.iter().filter_map(|a| owned(a, stack)))
        .chain(nats.iter().filter_map(|n| owned(n, stack)))
        .chain(groups.iter().filter_map(|g| owned(g, stack)))
        .chain(endpoints.iter().filter_map(|e| owned(e, stack)))
        .map(|(id, address)| (id.to_owned(), address))
        .collect();
    let refer = |id: Option<&str>| -> Value {
        match id {
            Some(id) => by_id.get(id).map_or_else(|| json!(id), |address| json!(address.to_string())),
            None => Value::Null,
        }
    };
    let refer_all = |ids: &[String]| -> Value {
        let mut all: Vec<String> =
            ids.iter().map(|id| by_id.get(id).map_or_else(|| id.clone(), ToString::to_string)).collect();
        all.sort();
        json!(all)
    };
    let depend = |resource: Resource, id: Option<&str>| match id.and_then(|id| by_id.get(id)) {
        Some(address) => resource.after(address),
        None => resource,
    };

    let owned_vpcs: Vec<(&str, Address, &aws_sdk_ec2::types::Vpc)> =
        vpcs.iter().filter_map(|vpc| owned(vpc, stack).map(|(id, address)| (id, address, vpc))).collect();
    let attributes = futures_util::future::try_join_all(owned_vpcs.iter().map(|(id, _, _)| async move {
        let attribute = |name| ec2.describe_vpc_attribute().vpc_id(*id).attribute(name).send();
        let (support, hostnames) = tokio::try_join!(
            attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport),
            attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames),
        )
        .map_err(call_error("ec2:DescribeVpcAttribute"))?;
        Ok::<_, CallError>((
            support.enable_dns_support().and_then(|v| v.value()).unwrap_or(false),
            hostnames.enable_dns_hostnames().and_then(|v| v.value()).unwrap_or(false),
        ))
    }))
    .await?;
    for ((id, address, vpc), (support, hostnames)) in owned_vpcs.into_iter().zip(attributes) {
        observed.record(
            id,
            Resource::new(address)
                .attr("cidr_block", vpc.cidr_block().unwrap_or_default())
                .attr("enable_dns_support", support)
                .attr("enable_dns_hostnames", hostnames)
                .attr("tags", managed_tags(vpc.tags())),
        );
    }
    for subnet in &subnets {
        let Some((id, address)) = owned(subnet, stack) else { continue };
        let resource = Resource::new(address)
            .attr("cidr_block", subnet.cidr_block().unwrap_or_default())
            .attr("availability_zone", subnet.availability_zone().unwrap_or_default())
            .attr("map_public_ip_on_launch", subnet.map_public_ip_on_launch().unwrap_or(false))
            .attr("tags", managed_tags(subnet.tags()));
        observed.record(id, depend(resource, subnet.vpc_id()));
    }
    for gateway in &gateways {
        let Some((id, address)) = owned(gateway, stack) else { continue };
        let vpc = gateway.attachments().iter().find_map(|a| a.vpc_id());
        let resource = Resource::new(address).attr("vpc", refer(vpc)).attr("tags", managed_tags(gateway.tags()));
        observed.record(id, depend(resource, vpc));
    }
    for eip in &addresses {
        let Some((id, address)) = owned(eip, stack) else { continue };
        let domain = eip.domain().map_or("vpc", |d| d.as_str());
        observed.record(id, Resource::new(address).attr("domain", domain).attr("tags", managed_tags(eip.tags())));
    }
    let igw_address = gateways.iter().find_map(|g| owned(g, stack)).map(|(_, a)| a);
    for nat in &nats {
        let live = nat.state().is_some_and(|s| matches!(s.as_str(), "pending" | "available"));
        let Some((id, address)) = owned(nat, stack) else { continue };
        if !live {
            continue;
        }
        let allocation = nat.nat_gateway_addresses().iter().find_map(|a| a.allocation_id());
        let mut resource = Resource::new(address)
            .attr("subnet", refer(nat.subnet_id()))
            .attr("allocation", refer(allocation))
            .attr("connectivity_type", nat.connectivity_type().map_or("public", |c| c.as_str()))
            .attr("tags", managed_tags(nat.tags()));
        resource = depend(depend(resource, nat.subnet_id()), allocation);
        if let Some(igw) = &igw_address {
            resource = resource.after(igw);
        }
        observed.record(id, resource);
    }
    for table in &tables {
        let Some((id, address)) = owned(table, stack) else { continue };
        let table_name = address.name().to_owned();
        for association in table.associations() {
            let Some(subnet) = association.subnet_id().and_then(|s| by_id.get(s)) else { continue };
            let association_address = sibling(&address, Kind::RouteTableAssociation, subnet.name());
            let resource = Resource::new(association_address)
                .attr("route_table", address.to_string())
                .after(subnet)
                .after(&address);
            match association.route_table_association_id() {
                Some(association_id) => observed.record(association_id, resource),
                None => observed.resources.push(resource),
            }
        }
        for route in table.routes() {
            if route.gateway_id() == Some("local") || route.destination_prefix_list_id().is_some() {
                continue;
            }
            let Some(destination) = route.destination_cidr_block().or(route.destination_ipv6_cidr_block()) else {
                continue;
            };
            let target = route
                .gateway_id()
                .or(route.nat_gateway_id())
                .or(route.transit_gateway_id())
                .or(route.vpc_peering_connection_id())
                .or(route.network_interface_id())
                .or(route.instance_id());
            let resource = Resource::new(sibling(&address, Kind::Route, &route_name(&table_name, destination)))
                .attr("route_table", address.to_string())
                .attr("destination", destination)
                .attr("target", refer(target))
                .after(&address);
            // A route's id is its table and destination, as a create returns it.
            observed.record(&format!("{id}/{destination}"), depend(resource, target));
        }
        let resource =
            Resource::new(address).attr("vpc", refer(table.vpc_id())).attr("tags", managed_tags(table.tags()));
        observed.record(id, depend(resource, table.vpc_id()));
    }
    for group in &groups {
        let Some((id, address)) = owned(group, stack) else { continue };
        let mut resource = Resource::new(address.clone())
            .attr("ingress", rules(group.ip_permissions()))
            .attr("egress", rules(group.ip_permissions_egress()))
            .attr("tags", managed_tags(group.tags()));
        if address.kind() == Kind::SecurityGroup.as_str() {
            resource = resource.attr("description", group.description().unwrap_or_default());
        }
        observed.record(id, depend(resource, group.vpc_id()));
    }
    for endpoint in &endpoints {
        let live =
            endpoint.state().is_none_or(|s| !matches!(s.as_str(), "deleted" | "deleting" | "Deleted" | "Deleting"));
        let Some((id, address)) = owned(endpoint, stack) else { continue };
        if !live {
            continue;
        }
        let kind = endpoint.vpc_endpoint_type().map_or("Interface", |t| t.as_str());
        let mut resource = Resource::new(address)
            .attr("service_name", endpoint.service_name().unwrap_or_default())
            .attr("policy", endpoint.policy_document().map_or(Value::Null, policy_document))
            .attr("type", kind)
            .attr("tags", managed_tags(endpoint.tags()));
        resource = depend(resource, endpoint.vpc_id());
        if kind == "Gateway" {
            resource = resource.attr("route_tables", refer_all(endpoint.route_table_ids()));
            for table in endpoint.route_table_ids() {
                resource = depend(resource, Some(table));
            }
        } else {
            let group_ids: Vec<String> =
                endpoint.groups().iter().filter_map(|g| g.group_id()).map(str::to_owned).collect();
            resource = resource
                .attr("subnets", refer_all(endpoint.subnet_ids()))
                .attr("security_groups", refer_all(&group_ids))
                .attr("private_dns_enabled", endpoint.private_dns_enabled().unwrap_or(false));
            for id in endpoint.subnet_ids().iter().chain(&group_ids) {
                resource = depend(resource, Some(id));
            }
        }
        observed.record(id, resource);
    }
    let group_address = log_group.as_ref().map(|(resource, _)| resource.address.clone());
    let role_address = role.as_ref().map(|(resource, _)| resource.address.clone());
    let role_arn = role.as_ref().map(|(_, arn)| arn.clone());
    for flow_log in &flow_logs {
        let Some((id, address)) = owned(flow_log, stack) else { continue };
        let group_name = flow_log.log_group_name();
        let log_group = match (&group_address, &log_group) {
            (Some(address), Some((_, name))) if group_name == Some(name.as_str()) => json!(address.to_string()),
            _ => json!(group_name),
        };
        let arn = flow_log.deliver_logs_permission_arn();
        let role = match &role_address {
            Some(address) if arn.is_some() && arn == role_arn.as_deref() => json!(address.to_string()),
            _ => json!(arn),
        };
        let mut resource = Resource::new(address)
            .attr("destination_type", flow_log.log_destination_type().map_or("cloud-watch-logs", |t| t.as_str()))
            .attr("traffic_type", flow_log.traffic_type().map_or("ALL", |t| t.as_str()))
            .attr("log_group", log_group)
            .attr("role", role)
            .attr("tags", managed_tags(flow_log.tags()));
        resource = depend(resource, flow_log.resource_id());
        for address in group_address.iter().chain(&role_address) {
            resource = resource.after(address);
        }
        observed.record(id, resource);
    }
    if let Some((resource, name)) = log_group {
        observed.record(&name, resource);
    }
    if let Some((mut resource, arn)) = role {
        if let Some(group) = &group_address {
            resource = resource.after(group);
        }
        observed.record(&arn, resource);
    }
    observed.retain_component(COMPONENT);
    Ok(observed)
}

fn sibling(address: &Address, kind: Kind, name: &str) -> Address {
    Address::new(address.account(), COMPONENT, kind.as_str(), name).unwrap_or_else(|_| address.clone())
}

fn account_address(account: &str, kind: Kind, name: &str) -> Option<Address> {
    Address::new(account, COMPONENT, kind.as_str(), name).ok()
}

/// The flow-log group, found by its name; returns the resource and the name (its id).
async fn observe_log_group(
    clients: &Clients,
    stack: &str,
    account: &str,
) -> Result<Option<(Resource, String)>, CallError> {
    let name = crate::model::flow_log_group_name(stack, account);
    let groups = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&name)
        .send()
        .await
        .map_err(call_error("logs:DescribeLogGroups"))?;
    let Some(group) = groups.log_groups().iter().find(|g| g.log_group_name() == Some(name.as_str())) else {
        return Ok(None);
    };
    let Some(address) = account_address(account, Kind::LogGroup, "flow-logs") else { return Ok(None) };
    let resource = Resource::new(address)
        .attr("name", name.clone())
        .attr("retention_days", group.retention_in_days().map_or(Value::Null, |days| json!(days)));
    Ok(Some((resource, name)))
}

/// The flow-log delivery role, found by its name and owned only when it carries our stack tag;
/// returns the resource and its ARN (its id).
async fn observe_role(clients: &Clients, stack: &str, account: &str) -> Result<Option<(Resource, String)>, CallError> {
    let name = flow_log_role_name(stack);
    let role = match clients.iam.get_role().role_name(&name).send().await.map_err(call_error("iam:GetRole")) {
        Ok(out) => out.role,
        Err(error) if error.is(&Code::NotFound(Missing::Entity)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let Some(role) = role else { return Ok(None) };
    let ours = role.tags().iter().any(|t| t.key() == STACK_TAG && t.value() == stack);
    let Some(address) = account_address(account, Kind::IamRole, "flow-logs") else { return Ok(None) };
    if !ours {
        return Ok(None);
    }
    let policy = match clients
        .iam
        .get_role_policy()
        .role_name(&name)
        .policy_name("flow-logs")
        .send()
        .await
        .map_err(call_error("iam:GetRolePolicy"))
    {
        Ok(out) => policy_document(out.policy_document()),
        Err(error) if error.is(&Code::NotFound(Missing::Entity)) => Value::Null,
        Err(error) => return Err(error),
    };
    let resource = Resource::new(address)
        .attr("name", name)
        .attr("trust_policy", role.assume_role_policy_document().map_or(Value::Null, policy_document))
        .attr("policy", policy);
    Ok(Some((resource, role.arn().to_owned())))
}
