//! The domains of one platform, side by side: which the spec enables, which a run selects
//! (`--only`), and their desired resources as one list for one plan. The binary is the only
//! place domains meet (no domain crate depends on another), so the network's placements for
//! access (the VPC, the bastion's subnet) are computed here.

use std::collections::BTreeSet;
use std::fmt;

use enclave_access::{AccessModel, Image, Placement};
use enclave_core::Spec;
use enclave_core::plan::Resource;
use enclave_net::NetworkModel;
use enclave_secrets::values::Values;
use serde::Serialize;

/// A domain of the platform: the component segment of its addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Domain {
    /// VPCs, subnets, routing, NAT, endpoints, flow logs (`enclave-net`).
    Net,
    /// Session Manager, bastions, CloudTrail, and each account's KMS key (`enclave-access`).
    Access,
    /// EKS clusters and node groups, and the image registry (`enclave-deploy`).
    Deploy,
    /// Secrets Manager secrets, the roles reading them and Pod Identity associations
    /// (`enclave-secrets`).
    Secrets,
}

impl Domain {
    /// Every domain, in dependency order.
    pub const ALL: [Domain; 4] = [Domain::Net, Domain::Access, Domain::Deploy, Domain::Secrets];

    /// The component segment of the domain's addresses.
    pub fn component(self) -> &'static str {
        match self {
            Domain::Net => enclave_net::resources::COMPONENT,
            Domain::Access => enclave_access::resources::COMPONENT,
            Domain::Deploy => enclave_deploy::resources::COMPONENT,
            Domain::Secrets => enclave_secrets::resources::COMPONENT,
        }
    }

    /// Whether the spec asks for anything of this domain.
    pub fn enabled(self, spec: &Spec) -> bool {
        match self {
            Domain::Net => !spec.accounts.is_empty(),
            // The account key encrypts cluster secrets and images too.
            Domain::Access => {
                spec.access.session_manager.enabled
                    || spec.access.bastion.enabled
                    || spec.audit.cloudtrail.enabled
                    || spec.registry.is_some()
                    || !spec.clusters.is_empty()
            }
            Domain::Deploy => spec.registry.is_some() || !spec.clusters.is_empty(),
            Domain::Secrets => spec.apps.iter().any(|app| !app.secrets.is_empty()),
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.component())
    }
}

/// The domains a run plans: the ones the spec enables, narrowed to `only` when given.
pub fn selected(spec: &Spec, only: &[Domain]) -> BTreeSet<Domain> {
    Domain::ALL
        .into_iter()
        .filter(|domain| domain.enabled(spec) && (only.is_empty() || only.contains(domain)))
        .collect()
}

/// Where the network puts what access needs, per account of `network`: the VPC, its CIDR, and
/// the bastion tier's subnet in the first AZ; `image` gives each account's bastion image.
pub fn placements(spec: &Spec, network: &NetworkModel, image: &dyn Fn(&str) -> Image) -> Vec<Placement> {
    let tier = spec.access.bastion.tier.as_ref().map(ToString::to_string);
    network
        .accounts
        .iter()
        .map(|account| {
            let at = |kind, name: &str| enclave_net::resources::address(&account.account, kind, name);
            let subnet = account
                .subnets
                .iter()
                .filter(|subnet| subnet.role == enclave_net::model::SubnetRole::Workload)
                .find(|subnet| tier.as_ref().is_none_or(|tier| &subnet.tier == tier));
            Placement {
                account: account.account.clone(),
                account_id: account.account_id.clone(),
                vpc: at(enclave_net::kind::Kind::Vpc, "main"),
                vpc_cidr: account.vpc.cidr.to_string(),
                bastion_subnet: subnet.map(|subnet| at(enclave_net::kind::Kind::Subnet, &subnet.name)),
                image: image(&account.account),
            }
        })
        .collect()
}

/// The access model of the accounts in `network` (all of the spec's, or the `--account` one).
pub fn access_model(spec: &Spec, network: &NetworkModel, image: &dyn Fn(&str) -> Image) -> AccessModel {
    enclave_access::model::build(spec, &placements(spec, network, image))
}

/// Where the network puts `tier` of `account`: its subnets (workload subnets, by zone) and
/// whether its route tables send traffic to an internet gateway.
fn tier_placement(network: &NetworkModel, account: &str, tier: &str) -> enclave_deploy::model::TierPlacement {
    let Some(account) = network.accounts.iter().find(|a| a.account == account) else {
        return enclave_deploy::model::TierPlacement::default();
    };
    let subnets: Vec<&enclave_net::model::Subnet> =
        account.subnets.iter().filter(|subnet| subnet.tier == tier).collect();
    let public = account.route_tables.iter().any(|table| {
        table.subnets.iter().any(|name| subnets.iter().any(|subnet| &subnet.name == name))
            && table.routes.iter().any(|route| route.target == enclave_net::model::Target::InternetGateway)
    });
    enclave_deploy::model::TierPlacement {
        public,
        subnets: subnets
            .iter()
            .map(|subnet| {
                enclave_net::resources::address(&account.account, enclave_net::kind::Kind::Subnet, &subnet.name)
            })
            .collect(),
    }
}

/// The deploy model of `spec`, with the network's placement of every tier.
pub fn deploy_model(spec: &Spec, network: &NetworkModel) -> enclave_deploy::DeployModel {
    enclave_deploy::model::build(spec, &|account, tier| tier_placement(network, account, tier))
}

/// The deploy domain's desired resources in the accounts of `network` (all of the spec's, or
/// the `--account` one).
pub fn deploy_resources(spec: &Spec, network: &NetworkModel) -> Vec<Resource> {
    let mut resources = enclave_deploy::resources::desired(&deploy_model(spec, network));
    resources.retain(|resource| network.accounts.iter().any(|account| account.account == resource.address.account()));
    resources
}

/// The secrets domain's desired resources in the accounts of `network`, with the values in
/// `values` (a secret without one is planned with its value unknown).
pub fn secrets_resources(spec: &Spec, network: &NetworkModel, values: &Values) -> Vec<Resource> {
    let mut resources = enclave_secrets::resources::desired(&enclave_secrets::build(spec), values);
    resources.retain(|resource| network.accounts.iter().any(|account| account.account == resource.address.account()));
    resources
}

/// The desired resources of every domain in `domains`, for one plan.
pub fn desired(
    spec: &Spec,
    network: &NetworkModel,
    domains: &BTreeSet<Domain>,
    image: &dyn Fn(&str) -> Image,
    values: &Values,
) -> Vec<Resource> {
    let mut out = Vec::new();
    for domain in domains {
        match domain {
            Domain::Net => out.extend(enclave_net::resources::desired(network)),
            Domain::Access => out.extend(enclave_access::resources::desired(&access_model(spec, network, image))),
            Domain::Deploy => out.extend(deploy_resources(spec, network)),
            Domain::Secrets => out.extend(secrets_resources(spec, network, values)),
        }
    }
    out
}

/// Every guardrail of every domain, as `enclave check --list-rules`, reports and SARIF show them.
pub fn rule_infos() -> Vec<enclave_core::guardrail::RuleInfo> {
    let mut infos = enclave_net::guardrails::rules().infos();
    infos.extend(enclave_access::guardrails::rules().infos());
    infos.extend(enclave_deploy::guardrails::rules().infos());
    infos.extend(enclave_secrets::guardrails::rules().infos());
    infos.extend(enclave_deploy::mesh::guardrails::rules().infos());
    infos.extend(enclave_deploy::addons::guardrails::rules().infos());
    infos
}

/// Runs every domain's guardrails: the network's over its model, access's over the desired
/// resources of every domain (so a network group opening SSH is caught too). Findings are
/// sorted worst first, as one report.
pub fn guardrails(spec: &Spec, network: &NetworkModel) -> enclave_core::guardrail::Report {
    let mut report = enclave_net::guardrails::rules().run(network);
    let domains = selected(spec, &[]);
    let resources = desired(spec, network, &domains, &|_| Image::Latest, &Values::default());
    report.merge(enclave_access::guardrails::rules().run(&resources));
    report.merge(enclave_deploy::guardrails::rules().run(&deploy_model(spec, network)));
    // Secrets rules look at every domain's resources and at what is rendered into the clusters.
    let rendered: Vec<crate::RenderedCluster> = crate::render(spec).into_iter().flatten().collect();
    let objects: Vec<(String, serde_json::Value)> = rendered
        .iter()
        .filter_map(|rendered| {
            let account = spec.clusters.iter().find(|c| c.name.as_str() == rendered.cluster)?.account.to_string();
            Some(rendered.bundle.objects().iter().map(|o| (account.clone(), o.value().clone())).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    let model = enclave_secrets::build(spec);
    let subject = enclave_secrets::guardrails::Subject { resources: &resources, objects: &objects, model: &model };
    report.merge(enclave_secrets::guardrails::rules().run(&subject));
    // Mesh rules evaluate the rendered Istio objects of each mesh cluster.
    let meshes = spec
        .clusters
        .iter()
        .filter(|cluster| cluster.mesh.is_some())
        .map(|cluster| (cluster, cluster_objects(rendered.as_slice(), cluster.name.as_str())))
        .collect();
    let subject = enclave_deploy::mesh::guardrails::Subject { spec, clusters: meshes };
    report.merge(enclave_deploy::mesh::guardrails::rules().run(&subject));
    report.merge(enclave_deploy::addons::guardrails::rules().run(&addon_subject(spec, &rendered)));
    report
}

/// Every rendered object of cluster `name`.
fn cluster_objects(rendered: &[crate::RenderedCluster], name: &str) -> Vec<serde_json::Value> {
    rendered
        .iter()
        .filter(|rendered| rendered.cluster == name)
        .flat_map(|rendered| rendered.bundle.objects().iter().map(|o| o.value().clone()))
        .collect()
}

/// What the add-on rules look at: each cluster's rendered bundle and its alert table, with
/// where each alert goes (`enclave-monitor`'s routing).
pub fn addon_subject<'a>(
    spec: &'a Spec,
    rendered: &[crate::RenderedCluster],
) -> enclave_deploy::addons::guardrails::Subject<'a> {
    let clusters = spec
        .clusters
        .iter()
        .map(|cluster| {
            let objects = cluster_objects(rendered, cluster.name.as_str());
            let alerts = enclave_monitor::alerting::table(spec, cluster.name.as_str())
                .into_iter()
                .map(|case| {
                    let label = |name: &str| case.labels.get(name).cloned().unwrap_or_default();
                    enclave_deploy::addons::guardrails::Alert {
                        name: label("alertname"),
                        service: label("service"),
                        severity: case.severity,
                        notified: case.receiver != enclave_monitor::alerting::NOBODY,
                        receiver: case.receiver,
                    }
                })
                .collect();
            enclave_deploy::addons::guardrails::ClusterSubject { cluster, objects, alerts }
        })
        .collect();
    enclave_deploy::addons::guardrails::Subject { clusters }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> (enclave_core::Loaded, NetworkModel) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference");
        crate::load(&enclave_core::LoadOptions::new(&dir)).expect("the reference platform loads")
    }

    #[test]
    fn only_narrows_the_enabled_domains_and_never_adds_one() {
        let (loaded, _) = reference();
        assert_eq!(selected(&loaded.spec, &[]), BTreeSet::from(Domain::ALL));
        assert_eq!(selected(&loaded.spec, &[Domain::Access]), BTreeSet::from([Domain::Access]));
        let mut spec = loaded.spec.clone();
        spec.access.session_manager.enabled = false;
        spec.access.bastion.enabled = false;
        spec.audit.cloudtrail.enabled = false;
        assert_eq!(selected(&spec, &[Domain::Access]), BTreeSet::from([Domain::Access]), "the clusters need the key");
        spec.clusters.clear();
        spec.apps.clear();
        spec.registry = None;
        assert_eq!(selected(&spec, &[Domain::Access, Domain::Deploy]), BTreeSet::new(), "a disabled domain stays off");
    }

    #[test]
    fn the_bastion_sits_in_its_tier_first_zone_subnet_of_every_account() {
        let (loaded, network) = reference();
        for placement in placements(&loaded.spec, &network, &|_| Image::Latest) {
            let subnet = placement.bastion_subnet.expect("a bastion subnet");
            assert_eq!(subnet.to_string(), format!("{}/net/subnet/app-a", placement.account));
        }
    }

    #[test]
    fn one_plan_spans_both_domains_and_access_waits_for_the_network() {
        let (loaded, network) = reference();
        let resources =
            desired(&loaded.spec, &network, &selected(&loaded.spec, &[]), &|_| Image::Latest, &Values::default());
        let plan = enclave_core::plan::diff(&resources, &[]).expect("no cycle");
        let position = |address: &str| {
            plan.changes.iter().position(|c| c.address.to_string() == address).unwrap_or_else(|| panic!("{address}"))
        };
        assert!(position("prod/net/subnet/app-a") < position("prod/access/instance/bastion"));
        assert!(position("prod/net/vpc/main") < position("prod/access/security-group/bastion"));
        let findings = enclave_access::guardrails::rules().run(&resources).findings;
        assert!(findings.is_empty(), "our own platform breaks no access guardrail: {findings:?}");
        let mut spec = loaded.spec.clone();
        spec.audit.cloudtrail.multi_region = false;
        let rules: Vec<String> = guardrails(&spec, &network)
            .findings
            .iter()
            .filter(|f| f.rule.starts_with("ACC"))
            .map(|f| f.rule.clone())
            .collect();
        assert_eq!(rules, ["ACC006", "ACC006", "ACC006"], "one trail per account records one region");
    }
}
