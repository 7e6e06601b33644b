//! The platform as a picture: accounts stacked top to bottom, each with its VPC (AZs with their
//! tiers' subnets, NAT gateways, internet gateway, endpoints, flow logs), its access (the bastion
//! in its subnet, reached only through Session Manager over the endpoints; session logs; the
//! trail), its EKS clusters with their node groups and the apps they run, and the registry; with a
//! legend. As Mermaid, Graphviz DOT, or SVG drawn by enclave itself ([`svg`]) and PNG rendered
//! from it with resvg and an embedded font ([`png`]): no external program is needed.

use std::fmt::Write;

use enclave_access::AccessModel;
use enclave_access::model::AccountAccess;
use enclave_core::spec::AppSpec;
use enclave_deploy::DeployModel;
use enclave_deploy::model::{Cluster, Registry};
use enclave_net::NetworkModel;
use enclave_net::model::{AccountNetwork, SubnetRole, Target};

mod svg;

pub use self::svg::{PngError, png, svg};

/// What a diagram draws.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The organization's name (the title).
    pub organization: &'a str,
    /// Accounts, VPCs, subnets, NAT, endpoints.
    pub network: &'a NetworkModel,
    /// Bastions, session logs, trails (when the access domain is enabled).
    pub access: Option<&'a AccessModel>,
    /// Clusters, node groups, the registry (when the deploy domain is enabled).
    pub deploy: Option<&'a DeployModel>,
    /// The apps, each drawn in its cluster.
    pub apps: &'a [AppSpec],
}

impl<'a> Inputs<'a> {
    fn clusters(&self, account: &str) -> Vec<&'a Cluster> {
        self.deploy.map(|deploy| deploy.clusters.iter().filter(|c| c.account == account).collect()).unwrap_or_default()
    }

    fn registry(&self, account: &str) -> Option<&'a Registry> {
        self.deploy?.registry.as_ref().filter(|registry| registry.account == account)
    }

    fn apps(&self, cluster: &str) -> Vec<&'a AppSpec> {
        self.apps.iter().filter(|app| app.cluster.as_str() == cluster).collect()
    }
}

/// The services of an account's interface endpoints and of its gateway endpoints.
fn endpoint_services(network: &AccountNetwork) -> (Vec<&str>, Vec<&str>) {
    let of = |interface: bool| {
        network
            .endpoints
            .iter()
            .filter(|e| matches!(e.kind, enclave_net::model::EndpointKind::Interface { .. }) == interface)
            .map(|e| e.service.as_str())
            .collect()
    };
    (of(true), of(false))
}

/// `text` inside a double-quoted DOT string.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `text` inside a double-quoted Mermaid label.
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
}

/// A node group's label: instance types, size and tier.
fn node_group_label(group: &enclave_deploy::model::NodeGroup) -> String {
    format!(
        "{} · {} · {}–{} nodes · {} tier",
        group.name,
        group.instance_types.join(", "),
        group.min,
        group.max,
        group.tier
    )
}

fn cluster_label(cluster: &Cluster) -> String {
    format!(
        "EKS {} · {} · {} API",
        cluster.name,
        cluster.version,
        if cluster.public_endpoint { "public" } else { "private" }
    )
}

fn registry_label(registry: &Registry, newline: &str) -> String {
    format!(
        "ECR {}{newline}{} repositories{}{}",
        registry.host,
        registry.repositories.len(),
        if registry.scan_on_push { " · scanned on push" } else { "" },
        if registry.immutable_tags { " · immutable tags" } else { "" }
    )
}

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

/// A Mermaid flowchart: accounts stacked, a legend at the end.
pub fn mermaid(inputs: &Inputs<'_>) -> String {
    let (model, access, organization) = (inputs.network, inputs.access, inputs.organization);
    let mut out = String::from("flowchart TB\n");
    let org = id(&["org"]);
    let _ = writeln!(out, "  {org}[\"{organization}<br/>stack {} · {}\"]", model.stack, model.region);
    let mut previous: Option<String> = None;
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
        let (interface, gateway) = endpoint_services(network);
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
        for cluster in inputs.clusters(account) {
            let _ =
                writeln!(out, "    subgraph {}[\"{}\"]", id(&[account, "eks", &cluster.name]), cluster_label(cluster));
            for group in &cluster.node_groups {
                let _ = writeln!(
                    out,
                    "      {}[\"{}\"]",
                    id(&[account, "eks", &cluster.name, "ng", &group.name]),
                    mermaid_text(&node_group_label(group))
                );
            }
            for app in inputs.apps(&cluster.name) {
                let _ = writeln!(
                    out,
                    "      {}([\"app {}\"])",
                    id(&[account, "eks", &cluster.name, "app", app.name.as_str()]),
                    app.name
                );
            }
            let _ = writeln!(out, "    end");
        }
        if let Some(registry) = inputs.registry(account) {
            let _ = writeln!(out, "    {}[(\"{}\")]", id(&[account, "registry"]), registry_label(registry, "<br/>"));
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
        // Accounts stacked: the organization above the first, each account above the next.
        match previous.replace(id(&[account])) {
            None => {
                let _ = writeln!(out, "  {org} --> {}", id(&[account]));
            }
            Some(above) => {
                let _ = writeln!(out, "  {above} ~~~ {}", id(&[account]));
            }
        }
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
    if let Some(registry) = inputs.deploy.and_then(|deploy| deploy.registry.as_ref()) {
        for network in &model.accounts {
            for cluster in inputs.clusters(&network.account) {
                let _ = writeln!(
                    out,
                    "  {} -.->|images| {}",
                    id(&[&registry.account, "registry"]),
                    id(&[&network.account, "eks", &cluster.name])
                );
            }
        }
    }
    out.push_str(MERMAID_LEGEND);
    if let Some(last) = previous {
        let _ = writeln!(out, "  {last} ~~~ legend");
    }
    out
}

const MERMAID_LEGEND: &str = "  subgraph legend[\"legend\"]
    direction LR
    legend_public[/\"public subnet: NAT only\"/]
    legend_private[\"private subnet\"]
    legend_nat{{\"NAT gateway\"}}
    legend_endpoints[(\"VPC endpoints, logs\")]
    legend_bastion[[\"bastion: Session Manager only\"]]
    legend_app([\"app in its cluster\"])
  end
";

/// A Graphviz DOT digraph: accounts stacked (each account's nodes ranked above the next
/// account's), a legend at the end.
pub fn dot(inputs: &Inputs<'_>) -> String {
    let (model, access, organization) = (inputs.network, inputs.access, inputs.organization);
    let mut previous: Vec<String> = Vec::new();
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
        for cluster in inputs.clusters(account) {
            let _ = writeln!(
                out,
                "    subgraph cluster_{} {{\n      label=\"{}\"; style=rounded;",
                id(&[account, "eks", &cluster.name]),
                cluster_label(cluster)
            );
            for group in &cluster.node_groups {
                let _ = writeln!(
                    out,
                    "      {} [shape=box, style=rounded, label=\"{}\"];",
                    id(&[account, "eks", &cluster.name, "ng", &group.name]),
                    dot_text(&node_group_label(group))
                );
            }
            for app in inputs.apps(&cluster.name) {
                let _ = writeln!(
                    out,
                    "      {} [shape=ellipse, label=\"app {}\"];",
                    id(&[account, "eks", &cluster.name, "app", app.name.as_str()]),
                    app.name
                );
            }
            let _ = writeln!(out, "    }}");
        }
        if let Some(registry) = inputs.registry(account) {
            let _ = writeln!(
                out,
                "    {} [shape=cylinder, label=\"{}\"];",
                id(&[account, "registry"]),
                registry_label(registry, "\\n")
            );
        }
        let _ = writeln!(out, "  }}");
        // Stacked: everything of the account above comes before this one's anchor.
        for node in previous.drain(..) {
            let _ = writeln!(out, "  {node} -> {} [style=invis];", id(&[account, "anchor"]));
        }
        previous.extend(
            network
                .subnets
                .iter()
                .map(|subnet| id(&[account, &subnet.name]))
                .chain(network.nat_gateways.iter().map(|nat| id(&[account, "nat", &nat.name])))
                .chain(inputs.clusters(account).iter().flat_map(|cluster| {
                    cluster
                        .node_groups
                        .iter()
                        .map(|group| id(&[account, "eks", &cluster.name, "ng", &group.name]))
                        .chain(
                            inputs
                                .apps(&cluster.name)
                                .into_iter()
                                .map(|app| id(&[account, "eks", &cluster.name, "app", app.name.as_str()])),
                        )
                        .collect::<Vec<_>>()
                }))
                .chain(granted.and_then(|a| a.trail.as_ref()).map(|_| id(&[account, "trail"])))
                .chain(granted.and_then(|a| a.bastion.as_ref()).map(|_| id(&[account, "bastion"]))),
        );
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
        if account == model.accounts[0].account {
            let _ = writeln!(out, "  org -> {} [lhead=cluster_{}];", id(&[account, "anchor"]), id(&[account]));
        }
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
    if let Some(registry) = inputs.deploy.and_then(|deploy| deploy.registry.as_ref()) {
        for network in &model.accounts {
            for cluster in inputs.clusters(&network.account) {
                if let Some(group) = cluster.node_groups.first() {
                    let _ = writeln!(
                        out,
                        "  {} -> {} [style=dashed, label=\"images\", lhead=cluster_{}, constraint=false];",
                        id(&[&registry.account, "registry"]),
                        id(&[&network.account, "eks", &cluster.name, "ng", &group.name]),
                        id(&[&network.account, "eks", &cluster.name])
                    );
                }
            }
        }
    }
    out.push_str(DOT_LEGEND);
    for node in previous {
        let _ = writeln!(out, "  {node} -> legend_public [style=invis];");
    }
    out.push_str("}\n");
    out
}

const DOT_LEGEND: &str = "  subgraph cluster_legend {
    label=\"legend\"; style=dotted;
    legend_public [shape=parallelogram, label=\"public subnet: NAT only\"];
    legend_private [shape=box, label=\"private subnet\"];
    legend_nat [shape=hexagon, label=\"NAT gateway\"];
    legend_endpoints [shape=cylinder, label=\"VPC endpoints, registry\"];
    legend_bastion [shape=box3d, label=\"bastion: Session Manager only\"];
    legend_logs [shape=folder, label=\"logs, trail\"];
    legend_app [shape=ellipse, label=\"app in its cluster\"];
  }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        assert_eq!(dot_text(r#"m6i"x\y"#), r#"m6i\"x\\y"#);
        assert_eq!(mermaid_text(r#"m6i"x"#), "m6i#quot;x");
    }
}
