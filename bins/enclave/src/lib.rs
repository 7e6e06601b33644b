//! `enclave`: the whole tool as library calls, for programs that want what the CLI does
//! without the CLI. Each function composes the domain crates; the crates stay independent of
//! each other.
//!
//! ```no_run
//! let options = enclave_core::LoadOptions::new("configs").overlay("staging");
//! let (loaded, _network) = enclave::load(&options)?;
//! for cluster in enclave::render(&loaded.spec).expect("renders") {
//!     println!("{}: {} objects", cluster.cluster, cluster.bundle.len());
//! }
//! # Ok::<(), enclave_core::Error>(())
//! ```
#![deny(missing_docs)]

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod diagram;
pub mod platform;

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use enclave_core::bundle::{Artifact, Bundle, BundleError};
use enclave_core::{Diagnostic, Error, FieldPath, LoadOptions, Loaded, Spec};
use enclave_net::NetworkModel;
use serde::Serialize;

/// Loads the layered spec and runs every crate's validation, so all input errors surface
/// here with file, line and field; returns the spec and its network model.
pub fn load(options: &LoadOptions) -> Result<(Loaded, NetworkModel), Error> {
    let loaded = enclave_core::load(options)?;
    let model = enclave_net::build(&loaded.spec).map_err(|violations| loaded.locate(violations))?;
    loaded.check(enclave_scaling::validate(&loaded.spec))?;
    Ok((loaded, model))
}

/// Every secret value of the spec, read from where it says (`generate`, `env`, `file` relative
/// to `config_dir`); a missing variable or unreadable file is an input error at its field
/// (exit 2), naming the variable or file and never a value.
pub fn secret_values(loaded: &Loaded, config_dir: &Path) -> Result<enclave_secrets::values::Values, Error> {
    enclave_secrets::values::resolve(&loaded.spec, config_dir, &|name| std::env::var_os(name)).map_err(|errors| {
        loaded.locate(
            errors
                .into_iter()
                .map(|error| enclave_core::Violation::new(error.path, error.problem.to_string()))
                .collect(),
        )
    })
}

/// Limits `model` to the account named `name` (`--account`); an unknown name is an input error
/// that lists the accounts there are. `None` keeps every account.
pub fn select_account(loaded: &Loaded, model: &mut NetworkModel, name: Option<&str>) -> Result<(), Error> {
    let Some(name) = name else { return Ok(()) };
    if loaded.spec.account(name).is_none() {
        let names: Vec<&str> = loaded.spec.accounts.iter().map(|a| a.name.as_str()).collect();
        return Err(Error::invalid(Diagnostic {
            span: None,
            path: FieldPath::root(),
            message: format!("--account {name}: no such account (accounts: {})", names.join(", ")),
        }));
    }
    model.accounts.retain(|network| network.account == name);
    Ok(())
}

/// One account as `validate` and offline plans list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    /// Account name.
    pub name: String,
    /// AWS account id.
    pub id: String,
    /// Environment.
    pub environment: String,
    /// The VPC's CIDR.
    pub vpc_cidr: String,
    /// Availability zones used.
    pub zones: Vec<String>,
    /// NAT mode.
    pub nat: String,
    /// Subnets in the VPC.
    pub subnets: usize,
    /// VPC endpoints.
    pub endpoints: usize,
}

/// A summary of every account of `model` (which may hold fewer accounts than the spec, after
/// [`select_account`]), matched to its spec entry by name.
pub fn account_summaries(loaded: &Loaded, model: &NetworkModel) -> Vec<AccountSummary> {
    model
        .accounts
        .iter()
        .filter_map(|network| {
            let account = loaded.spec.account(&network.account)?;
            Some(AccountSummary {
                name: account.name.to_string(),
                id: account.id.to_string(),
                environment: account.environment.to_string(),
                vpc_cidr: account.vpc_cidr.to_string(),
                zones: network.zones.clone(),
                nat: account.network.nat.to_string(),
                subnets: network.subnets.len(),
                endpoints: network.endpoints.len(),
            })
        })
        .collect()
}

/// The list of files the last render wrote, kept in OUT so the next render can remove what it no
/// longer writes (a deleted app's objects must not linger for GitOps to apply), and nothing else.
pub const RENDER_MANIFEST: &str = ".enclave-render";

/// Removes the files the previous render listed in `OUT/.enclave-render` that this render did
/// not write again, then records `written`. Returns the removed files.
///
/// The list is read as untrusted: only plain relative paths (no `..`, no root, no prefix) that
/// resolve to a regular file inside `out` (symbolic links followed, then checked again) are ever
/// removed. Anything else in the list is ignored.
pub fn prune_previous_render(out: &Path, written: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let manifest = out.join(RENDER_MANIFEST);
    let now: BTreeSet<String> = written
        .iter()
        .filter_map(|path| path.strip_prefix(out).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let before = std::fs::read_to_string(&manifest).unwrap_or_default();
    let root = out.canonicalize()?;
    let mut removed = Vec::new();
    for stale in before.lines().filter(|line| !line.is_empty() && !now.contains(*line)) {
        let relative = Path::new(stale);
        if !relative.components().all(|component| matches!(component, Component::Normal(_))) {
            continue;
        }
        let path = out.join(relative);
        let inside = path.canonicalize().is_ok_and(|real| real.starts_with(&root));
        if inside && std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_file()) {
            std::fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    std::fs::write(&manifest, now.iter().map(|line| format!("{line}\n")).collect::<String>())?;
    Ok(removed)
}

/// Everything rendered for one cluster.
#[derive(Debug)]
pub struct RenderedCluster {
    /// Cluster name.
    pub cluster: String,
    /// Kubernetes objects.
    pub bundle: Bundle,
    /// Other files: rule files, promtool tests, dashboards, Filebeat inputs.
    pub artifacts: Vec<Artifact>,
}

/// Renders every cluster of `spec`: scaling objects and each app's monitoring.
pub fn render(spec: &Spec) -> Result<Vec<RenderedCluster>, BundleError> {
    let mut rendered = Vec::new();
    let secrets = enclave_secrets::build(spec);
    // Where alerts go: one Alertmanager configuration, the same in every cluster.
    let alerting = enclave_monitor::alerting::config(spec.alerting.as_ref());
    for cluster in &spec.clusters {
        let mut bundle = enclave_scaling::render::render_cluster(spec, cluster)?;
        let mut artifacts = Vec::new();
        let stack = spec.stack().as_str();
        let apps: Vec<&enclave_core::spec::AppSpec> =
            spec.apps.iter().filter(|app| app.cluster == cluster.name).collect();
        let namespaces: std::collections::BTreeSet<&str> = apps.iter().map(|app| app.namespace().as_str()).collect();
        for namespace in &namespaces {
            let mut object = enclave_deploy::workload::namespace(stack, namespace);
            if cluster.mesh.is_some() {
                object.metadata.labels.get_or_insert_default().extend(enclave_deploy::mesh::namespace_labels());
            }
            bundle.push(&object)?;
            bundle.push(&enclave_deploy::network::default_deny(stack, namespace))?;
        }
        let account = spec.account(cluster.account.as_str());
        if cluster.autoscaler.enabled
            && let Some(account) = account
        {
            bundle.push(&autoscaler_policy(stack, account))?;
        }
        let installed = enclave_deploy::addons::installed(cluster);
        let reach = enclave_deploy::network::Reach {
            apps: apps.clone(),
            tier_subnets: tier_subnets(account),
            mesh_root: cluster.mesh.as_ref().map(|mesh| mesh.root_namespace.to_string()),
            collector: installed.contains(&enclave_core::spec::Addon::OpentelemetryCollector),
        };
        // The mesh, from the same declarations as the NetworkPolicies (none without `mesh:`).
        let mesh = enclave_deploy::mesh::MeshInputs {
            reach: reach.clone(),
            region: spec.organization.region.to_string(),
            aws_services: account
                .map(|account| {
                    let endpoints = &account.network.endpoints;
                    let interface = endpoints.interface.iter().map(ToString::to_string);
                    interface.chain(endpoints.gateway.iter().map(ToString::to_string)).collect()
                })
                .unwrap_or_default(),
        };
        for object in enclave_deploy::mesh::render_cluster(stack, cluster, &mesh) {
            bundle.push(&object)?;
        }
        // Admission policy (enclave-access): Gatekeeper templates and their Constraints, which
        // warn in the add-ons' namespaces and leave out the node agents' accepted exceptions.
        let exceptions = enclave_deploy::addons::exceptions(cluster);
        let addon_namespaces = enclave_deploy::addons::namespaces(cluster);
        for object in enclave_access::admission::render_cluster(spec, cluster, &addon_namespaces, &exceptions) {
            bundle.push(&object)?;
        }
        // The secrets' stores, reader service accounts and ExternalSecrets (enclave-secrets).
        let objects = enclave_secrets::render::render_cluster(&secrets, cluster.name.as_str());
        for store in &objects.stores {
            bundle.push(store)?;
        }
        for service_account in &objects.service_accounts {
            bundle.push(service_account)?;
        }
        for external_secret in &objects.external_secrets {
            bundle.push(external_secret)?;
        }
        for app in apps {
            bundle.push(&enclave_deploy::network::app_policy(stack, app, &reach))?;
            // The workload, with the probes of enclave-monitor and the spread of enclave-scaling.
            let inputs = enclave_deploy::workload::PodInputs {
                probes: enclave_monitor::render::probes(app),
                topology_spread: enclave_scaling::render::topology_spread(app),
                volumes: secrets
                    .apps
                    .iter()
                    .find(|secret| secret.app == app.name.as_str())
                    .map(enclave_secrets::render::volumes)
                    .unwrap_or_default(),
                pod_labels: if cluster.mesh.is_some() {
                    enclave_deploy::mesh::pod_labels(app)
                } else {
                    std::collections::BTreeMap::new()
                },
                env: if reach.collector {
                    enclave_deploy::addons::collector_env(app.name.as_str())
                } else {
                    Vec::new()
                },
            };
            for object in enclave_deploy::workload::render_app(stack, app, &inputs) {
                bundle.push(&object)?;
            }
            // In a mesh, Prometheus scrapes with the mesh's certificates (STRICT mutual TLS).
            let scrape = if cluster.mesh.is_some() && app.mesh.sidecar {
                enclave_monitor::render::Scrape::MeshTls
            } else {
                enclave_monitor::render::Scrape::Plain
            };
            let (objects, files) = enclave_monitor::render::render_app(stack, app, scrape);
            for object in objects {
                bundle.push(&object)?;
            }
            artifacts.extend(files);
        }
        // The Falco rules of the cluster's workloads (enclave-access), for the add-ons to load.
        let runtime = enclave_access::runtime::rules(&enclave_access::runtime::inputs(spec, cluster));
        let falco_rules = enclave_access::runtime::to_yaml(&runtime);
        artifacts.push(enclave_core::bundle::Artifact::new(enclave_access::runtime::RULES_FILE, falco_rules.clone()));
        // Where the cluster's alerts go, and the table `amtool config routes test` checks.
        artifacts
            .push(enclave_core::bundle::Artifact::new(ALERTMANAGER_CONFIG, enclave_core::bundle::to_yaml(&alerting)));
        let table = enclave_monitor::alerting::table(spec, cluster.name.as_str());
        let table = serde_json::to_string_pretty(&table).unwrap_or_default() + "\n";
        artifacts.push(enclave_core::bundle::Artifact::new(ALERT_ROUTES, table));
        artifacts.push(enclave_core::bundle::Artifact::new(ADDON_EXCEPTIONS, exceptions_yaml(&exceptions)));
        // The add-ons (enclave-deploy) installing every operator the objects above need.
        let inputs = enclave_deploy::addons::Inputs {
            stack,
            cluster,
            alertmanager_config: serde_json::to_value(&alerting).unwrap_or_default(),
            alertmanager_secrets: enclave_monitor::alerting::mounted_secrets(spec.alerting.as_ref()),
            falco_rules,
            falco_rules_file: enclave_access::runtime::RULES_FILE.to_owned(),
            filebeat_inputs: reach.apps.iter().copied().map(enclave_monitor::render::filebeat_input).collect(),
            adapter_rules: enclave_scaling::render::ADAPTER_RULES.to_owned(),
            artifacts: artifacts.iter().map(|artifact| artifact.path.clone()).collect(),
            apps: reach
                .apps
                .iter()
                .map(|app| enclave_deploy::addons::RolledOut {
                    name: app.name.to_string(),
                    namespace: app.namespace().to_string(),
                    mesh: cluster.mesh.is_some() && app.mesh.sidecar,
                })
                .collect(),
            registry: spec.registry_host(),
        };
        for object in enclave_deploy::addons::render_cluster(&inputs) {
            bundle.push(&object)?;
        }
        if cluster.addons.gitops.controller == enclave_core::spec::GitOpsController::Argocd {
            let waves = enclave_deploy::addons::Waves::new(cluster, enclave_scaling::render::ADAPTER_RULES);
            bundle.annotate(|object| {
                let group = object.api_version().rsplit_once('/').map_or("", |(group, _)| group);
                waves.annotations(group, object.kind(), object.namespace(), object.name())
            });
        }
        rendered.push(RenderedCluster { cluster: cluster.name.to_string(), bundle, artifacts });
    }
    Ok(rendered)
}

/// The Alertmanager configuration of a cluster, among its rendered files.
pub const ALERTMANAGER_CONFIG: &str = "alertmanager/alertmanager.yml";
/// Every alert of the cluster's apps with its labels and receiver, among its rendered files.
pub const ALERT_ROUTES: &str = "alertmanager/routes.json";
/// The add-ons' accepted exceptions, among a cluster's rendered files.
pub const ADDON_EXCEPTIONS: &str = "addons/exceptions.yml";

/// The accepted exceptions as a readable file: each node agent, its namespace, what it needs
/// of the host and why.
fn exceptions_yaml(exceptions: &[enclave_core::exception::Exception]) -> String {
    let list: Vec<serde_json::Value> = exceptions
        .iter()
        .map(|exception| {
            serde_json::json!({
                "addon": exception.addon.as_str(),
                "workload": exception.workload,
                "namespace": exception.namespace,
                "needs": exception.access.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "reason": exception.reason,
                "enclave_check": exception.check_skips(),
            })
        })
        .collect();
    enclave_core::bundle::to_yaml(&serde_json::json!({"exceptions": list}))
}

/// The subnets of each tier of `account`'s VPC, as the network domain lays them out.
fn tier_subnets(account: Option<&enclave_core::spec::Account>) -> std::collections::BTreeMap<String, Vec<String>> {
    let layout = account.and_then(|account| {
        enclave_net::cidr::allocate(account.vpc_cidr.net(), &account.network, &enclave_core::path!("network")).ok()
    });
    layout
        .map(|layout| {
            layout
                .tiers
                .into_iter()
                .map(|tier| (tier.name, tier.subnets.iter().map(ToString::to_string).collect()))
                .collect()
        })
        .unwrap_or_default()
}

/// The Cluster Autoscaler's NetworkPolicy: scrapes in from Prometheus; DNS and HTTPS out, to the
/// VPC when the account has the interface endpoints it calls (EC2, Auto Scaling, STS: the API
/// server's private endpoint is in the VPC too), else to AWS's public API addresses through
/// NAT, which cannot be listed.
fn autoscaler_policy(
    stack: &str,
    account: &enclave_core::spec::Account,
) -> k8s_openapi::api::networking::v1::NetworkPolicy {
    use enclave_deploy::network::{Peer, Protocol, Rule, dns_rule, policy};
    let endpoints = &account.network.endpoints.interface;
    let private = ["ec2", "autoscaling", "sts"].iter().all(|needed| endpoints.iter().any(|e| e.as_str() == *needed));
    let api = if private { Peer::Block(account.vpc_cidr.to_string()) } else { Peer::Anywhere };
    policy(
        stack,
        enclave_scaling::render::AUTOSCALER_NAME,
        enclave_scaling::render::AUTOSCALER_NAMESPACE,
        enclave_scaling::render::autoscaler_selector(),
        &[Rule {
            peers: vec![Peer::prometheus()],
            ports: vec![(Protocol::Tcp, enclave_scaling::render::AUTOSCALER_METRICS_PORT)],
        }],
        &[dns_rule(), Rule { peers: vec![api], ports: vec![(Protocol::Tcp, 443)] }],
    )
}

/// Every domain's guardrails as `enclave check` rules, so their findings share its reports,
/// suppressions by baseline, SARIF output and exit codes.
pub fn guardrail_rule_infos() -> Vec<enclave_check::RuleInfo> {
    platform::rule_infos()
}

/// Runs every domain's guardrails over the spec and places every finding at the account
/// it is about in the spec's files (`kind` is the resource type, `namespace` the account).
pub fn guardrail_findings(loaded: &Loaded, model: &NetworkModel) -> Vec<enclave_check::Finding> {
    let report = platform::guardrails(&loaded.spec, model);
    enclave_check::Finding::from_guardrails(&report, &platform::rule_infos(), |address| place(loaded, address))
}

/// Where in the spec's files a resource of `address` comes from: its account's entry.
pub fn place(loaded: &Loaded, address: &enclave_core::Address) -> (String, u32) {
    let index = loaded.spec.accounts.iter().position(|a| a.name.as_str() == address.account());
    let span = match index {
        Some(index) => loaded.document.locate(&enclave_core::path!("accounts", index)),
        None => loaded.document.span.clone(),
    };
    (span.file.to_string(), span.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("enclave-lib-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn pruning_never_removes_files_outside_the_output_folder() {
        let root = scratch("prune");
        let out = root.join("out");
        std::fs::create_dir_all(out.join("dev")).expect("out");
        let victim = root.join("victim.txt");
        std::fs::write(&victim, "keep me").expect("victim");
        let stale = out.join("dev/old.yaml");
        std::fs::write(&stale, "old").expect("stale");
        let kept = out.join("dev/kept.yaml");
        std::fs::write(&kept, "kept").expect("kept");
        // A crafted list: an absolute path, a parent escape, a stale file of ours and a kept one.
        let list = format!("{}\n../victim.txt\ndev/../../victim.txt\ndev/old.yaml\ndev/kept.yaml\n", victim.display());
        std::fs::write(out.join(RENDER_MANIFEST), list).expect("manifest");

        let removed = prune_previous_render(&out, std::slice::from_ref(&kept)).expect("prunes");
        assert_eq!(removed, std::slice::from_ref(&stale));
        assert!(victim.exists(), "a file outside OUT survives");
        assert!(!stale.exists() && kept.exists());
        assert_eq!(std::fs::read_to_string(out.join(RENDER_MANIFEST)).expect("list"), "dev/kept.yaml\n");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[cfg(unix)]
    #[test]
    fn pruning_does_not_follow_a_link_out_of_the_output_folder() {
        let root = scratch("prune-link");
        let out = root.join("out");
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&out).expect("out");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::fs::write(elsewhere.join("file.yaml"), "keep me").expect("victim");
        std::os::unix::fs::symlink(&elsewhere, out.join("linked")).expect("link");
        std::fs::write(out.join(RENDER_MANIFEST), "linked/file.yaml\n").expect("manifest");
        let removed = prune_previous_render(&out, &[]).expect("prunes");
        assert!(removed.is_empty());
        assert!(elsewhere.join("file.yaml").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
