//! The organization's network as a picture: accounts, VPCs, AZs with their tiers' subnets, NAT,
//! internet gateway and endpoints, and each account's access (the bastion in its subnet, reached
//! only through Session Manager over the endpoints; session logs; the trail), as Mermaid or
//! Graphviz DOT (which `dot` turns into SVG).

use std::fmt::Write;

use enclave_access::AccessModel;
use enclave_access::model::AccountAccess;
use enclave_net::NetworkModel;
use enclave_net::model::{AccountNetwork, SubnetRole, Target};

/// An identifier safe in both Mermaid and DOT.
fn id(parts: &[&str]) -> String {
    parts.join("_").replace(|c: char| !c.is_ascii_alphanumeric(), "_")
}

fn zone_letter(zone: &str) -> &str {
    &zone[zone.len().saturating_sub(1)..]
}

fn nat_of(network: &AccountNetwork, table: &str) -> Option<String> {
    network.route_tables.iter().find(|t| t.name == table).and_then(|t| {
        t.routes.iter().find_map(|r| match &r.target {
            Target::NatGateway(name) => Some(name.clone()),
            Target::InternetGateway => None,
        })
    })
}

/// The access of `account` in `access`, when it has any.
fn access_of<'a>(access: Option<&'a AccessModel>, account: &str) -> Option<&'a AccountAccess> {
    access?.accounts.iter().find(|a| a.account == account)
}

/// The bastion's label: what makes it safe to have.
fn bastion_label(access: &AccountAccess, newline: &str) -> Option<String> {
    let bastion = access.bastion.as_ref()?;
    Some(format!(
        "bastion · {}{newline}no inbound · no key · IMDSv2{newline}Session Manager only",
        bastion.instance_type
    ))
}

fn trail_label(access: &AccountAccess, newline: &str) -> Option<String> {
    let trail = access.trail.as_ref()?;
    Some(format!(
        "CloudTrail {}{newline}{} · {}{newline}S3 + CloudWatch Logs · KMS",
        trail.name,
        if trail.multi_region { "all regions" } else { "one region" },
        if trail.log_file_validation { "validated" } else { "not validated" }
    ))
}

fn sessions_label(access: &AccountAccess, newline: &str) -> Option<String> {
    let session = access.session.as_ref()?;
    Some(format!(
        "session logs{newline}S3 + CloudWatch Logs · KMS{newline}idle timeout {} min",
        session.idle_timeout_minutes
    ))
}

/// A Mermaid flowchart.
pub fn mermaid(model: &NetworkModel, access: Option<&AccessModel>, organization: &str) -> String {
    let mut out = String::from("flowchart TB\n");
    let org = id(&["org"]);
    let _ = writeln!(out, "  {org}[\"{organization}<br/>stack {} · {}\"]", model.stack, model.region);
    for network in &model.accounts {
        let account = network.account.as_str();
        let _ = writeln!(
            out,
            "  subgraph {}[\"{account} · {} · VPC {}\"]",
            id(&[account]),
            network.account_id,
            network.vpc.cidr
        );
        let _ = writeln!(out, "    direction TB");
        for zone in &network.zones {
            let _ = writeln!(out, "    subgraph {}[\"{zone}\"]", id(&[account, zone]));
            for subnet in network.subnets.iter().filter(|s| &s.zone == zone) {
                let shape = if subnet.role == SubnetRole::Egress { ("[/", "/]") } else { ("[", "]") };
                let _ = writeln!(
                    out,
                    "      {}{}\"{} {}\"{}",
                    id(&[account, &subnet.name]),
                    shape.0,
                    subnet.name,
                    subnet.cidr,
                    shape.1
                );
            }
            for nat in network
                .nat_gateways
                .iter()
                .filter(|n| network.subnets.iter().any(|s| s.name == n.subnet && &s.zone == zone))
            {
                let _ = writeln!(out, "      {}{{{{\"NAT {}\"}}}}", id(&[account, "nat", &nat.name]), nat.name);
            }
            let _ = writeln!(out, "    end");
        }
        if network.internet_gateway {
            let _ = writeln!(out, "    {}((\"internet gateway\"))", id(&[account, "igw"]));
        }
        let interface: Vec<&str> = network
            .endpoints
            .iter()
            .filter(|e| matches!(e.kind, enclave_net::model::EndpointKind::Interface { .. }))
            .map(|e| e.service.as_str())
            .collect();
        let gateway: Vec<&str> = network
            .endpoints
            .iter()
            .filter(|e| matches!(e.kind, enclave_net::model::EndpointKind::Gateway { .. }))
            .map(|e| e.service.as_str())
            .collect();
        if !network.endpoints.is_empty() {
            let _ = writeln!(
                out,
                "    {}[(\"endpoints<br/>interface: {}<br/>gateway: {}\")]",
                id(&[account, "endpoints"]),
                interface.join(", "),
                if gateway.is_empty() { "none".to_owned() } else { gateway.join(", ") }
            );
        }
        if network.flow_log.is_some() {
            let _ = writeln!(out, "    {}>\"flow logs\"]", id(&[account, "flowlogs"]));
        }
        let granted = access_of(access, account);
        if let Some(label) = granted.and_then(|a| bastion_label(a, "<br/>")) {
            let _ = writeln!(out, "    {}[[\"{label}\"]]", id(&[account, "bastion"]));
        }
        if let Some(label) = granted.and_then(|a| sessions_label(a, "<br/>")) {
            let _ = writeln!(out, "    {}[(\"{label}\")]", id(&[account, "sessions"]));
        }
        if let Some(label) = granted.and_then(|a| trail_label(a, "<br/>")) {
            let _ = writeln!(out, "    {}[(\"{label}\")]", id(&[account, "trail"]));
        }
        let _ = writeln!(out, "  end");
        if let Some(bastion) = granted.and_then(|a| a.bastion.as_ref()) {
            let _ = writeln!(out, "  {} --- {}", id(&[account, bastion.subnet.name()]), id(&[account, "bastion"]));
            if !network.endpoints.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} -.->|Session Manager, 443| {}",
                    id(&[account, "endpoints"]),
                    id(&[account, "bastion"])
                );
            }
            if granted.is_some_and(|a| a.session.is_some()) {
                let _ = writeln!(out, "  {} -.->|logs| {}", id(&[account, "bastion"]), id(&[account, "sessions"]));
            }
        }
        let _ = writeln!(out, "  {org} --> {}", id(&[account]));
        for nat in &network.nat_gateways {
            let _ = writeln!(out, "  {} --- {}", id(&[account, &nat.subnet]), id(&[account, "nat", &nat.name]));
            if network.internet_gateway {
                let _ = writeln!(out, "  {} --> {}", id(&[account, "nat", &nat.name]), id(&[account, "igw"]));
            }
        }
        for subnet in network.subnets.iter().filter(|s| s.role == SubnetRole::Workload) {
            let table = format!("private-{}", zone_letter(&subnet.zone));
            if let Some(nat) = nat_of(network, &table) {
                let _ =
                    writeln!(out, "  {} -.->|0.0.0.0/0| {}", id(&[account, &subnet.name]), id(&[account, "nat", &nat]));
            }
        }
    }
    out
}

/// A Graphviz DOT digraph.
pub fn dot(model: &NetworkModel, access: Option<&AccessModel>, organization: &str) -> String {
    let mut out = String::from(
        "digraph enclave {\n  rankdir=TB;\n  compound=true;\n  node [fontname=\"Helvetica\", fontsize=10];\n  graph [fontname=\"Helvetica\", fontsize=11];\n",
    );
    let _ = writeln!(
        out,
        "  org [shape=box, style=bold, label=\"{organization}\\nstack {} · {}\"];",
        model.stack, model.region
    );
    for network in &model.accounts {
        let account = network.account.as_str();
        let _ = writeln!(out, "  subgraph cluster_{} {{", id(&[account]));
        let _ = writeln!(out, "    label=\"{account} · {} · VPC {}\";", network.account_id, network.vpc.cidr);
        let _ = writeln!(out, "    {} [shape=point, style=invis];", id(&[account, "anchor"]));
        for zone in &network.zones {
            let _ = writeln!(
                out,
                "    subgraph cluster_{} {{\n      label=\"{zone}\"; style=dashed;",
                id(&[account, zone])
            );
            for subnet in network.subnets.iter().filter(|s| &s.zone == zone) {
                let shape = if subnet.role == SubnetRole::Egress { "parallelogram" } else { "box" };
                let _ = writeln!(
                    out,
                    "      {} [shape={shape}, label=\"{}\\n{}\"];",
                    id(&[account, &subnet.name]),
                    subnet.name,
                    subnet.cidr
                );
            }
            for nat in network
                .nat_gateways
                .iter()
                .filter(|n| network.subnets.iter().any(|s| s.name == n.subnet && &s.zone == zone))
            {
                let _ = writeln!(
                    out,
                    "      {} [shape=hexagon, label=\"NAT {}\"];",
                    id(&[account, "nat", &nat.name]),
                    nat.name
                );
            }
            let _ = writeln!(out, "    }}");
        }
        if network.internet_gateway {
            let _ = writeln!(out, "    {} [shape=circle, label=\"IGW\"];", id(&[account, "igw"]));
        }
        if !network.endpoints.is_empty() {
            let services: Vec<&str> = network.endpoints.iter().map(|e| e.service.as_str()).collect();
            let _ = writeln!(
                out,
                "    {} [shape=cylinder, label=\"endpoints\\n{}\"];",
                id(&[account, "endpoints"]),
                services.join(", ")
            );
        }
        let granted = access_of(access, account);
        if let Some(label) = granted.and_then(|a| bastion_label(a, "\\n")) {
            let _ = writeln!(out, "    {} [shape=box3d, label=\"{label}\"];", id(&[account, "bastion"]));
        }
        if let Some(label) = granted.and_then(|a| sessions_label(a, "\\n")) {
            let _ = writeln!(out, "    {} [shape=folder, label=\"{label}\"];", id(&[account, "sessions"]));
        }
        if let Some(label) = granted.and_then(|a| trail_label(a, "\\n")) {
            let _ = writeln!(out, "    {} [shape=folder, label=\"{label}\"];", id(&[account, "trail"]));
        }
        let _ = writeln!(out, "  }}");
        if let Some(bastion) = granted.and_then(|a| a.bastion.as_ref()) {
            let _ = writeln!(
                out,
                "  {} -> {} [arrowhead=none];",
                id(&[account, bastion.subnet.name()]),
                id(&[account, "bastion"])
            );
            if !network.endpoints.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} -> {} [style=dashed, label=\"Session Manager\"];",
                    id(&[account, "endpoints"]),
                    id(&[account, "bastion"])
                );
            }
        }
        let _ = writeln!(out, "  org -> {} [lhead=cluster_{}];", id(&[account, "anchor"]), id(&[account]));
        for nat in &network.nat_gateways {
            let _ = writeln!(
                out,
                "  {} -> {} [arrowhead=none];",
                id(&[account, &nat.subnet]),
                id(&[account, "nat", &nat.name])
            );
            if network.internet_gateway {
                let _ = writeln!(out, "  {} -> {};", id(&[account, "nat", &nat.name]), id(&[account, "igw"]));
            }
        }
        for subnet in network.subnets.iter().filter(|s| s.role == SubnetRole::Workload) {
            let table = format!("private-{}", zone_letter(&subnet.zone));
            if let Some(nat) = nat_of(network, &table) {
                let _ = writeln!(
                    out,
                    "  {} -> {} [style=dashed];",
                    id(&[account, &subnet.name]),
                    id(&[account, "nat", &nat])
                );
            }
        }
    }
    out.push_str("}\n");
    out
}
