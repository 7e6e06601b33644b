//! The organization's network as a picture: accounts, VPCs, AZs with their tiers' subnets, NAT,
//! internet gateway and endpoints, as Mermaid or Graphviz DOT (which `dot` turns into SVG).

use std::fmt::Write;

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

/// A Mermaid flowchart.
pub fn mermaid(model: &NetworkModel, organization: &str) -> String {
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
        let _ = writeln!(out, "  end");
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
pub fn dot(model: &NetworkModel, organization: &str) -> String {
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
        let _ = writeln!(out, "  }}");
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
