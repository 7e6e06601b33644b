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

use enclave_core::bundle::{Artifact, Bundle, BundleError};
use enclave_core::{Error, LoadOptions, Loaded, Spec};
use enclave_net::NetworkModel;

/// Loads the layered spec and runs every crate's validation, so all input errors surface
/// here with file, line and field; returns the spec and its network model.
pub fn load(options: &LoadOptions) -> Result<(Loaded, NetworkModel), Error> {
    let loaded = enclave_core::load(options)?;
    let model = enclave_net::build(&loaded.spec).map_err(|violations| loaded.locate(violations))?;
    loaded.check(enclave_scaling::validate(&loaded.spec))?;
    Ok((loaded, model))
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
    for cluster in &spec.clusters {
        let mut bundle = enclave_scaling::render::render_cluster(spec, cluster)?;
        let mut artifacts = Vec::new();
        for app in spec.apps.iter().filter(|app| app.cluster == cluster.name) {
            let (objects, files) = enclave_monitor::render::render_app(spec.stack().as_str(), app);
            for object in objects {
                bundle.push(&object)?;
            }
            artifacts.extend(files);
        }
        rendered.push(RenderedCluster { cluster: cluster.name.to_string(), bundle, artifacts });
    }
    Ok(rendered)
}

/// The network guardrails as `enclave check` rules, so their findings share its reports,
/// suppressions by baseline, SARIF output and exit codes.
pub fn network_rule_infos() -> Vec<enclave_check::RuleInfo> {
    enclave_net::guardrails::rules()
        .rules()
        .map(|rule| enclave_check::RuleInfo {
            id: rule.id(),
            name: "",
            checkov_id: None,
            severity: rule.severity(),
            summary: rule.summary(),
            remediation: rule.remediation(),
        })
        .collect()
}

/// Runs the network guardrails over the spec's model and places every finding at the account
/// it is about in the spec's files (`kind` is the resource type, `namespace` the account).
pub fn network_findings(loaded: &Loaded, model: &NetworkModel) -> Vec<enclave_check::Finding> {
    let rules = enclave_net::guardrails::rules();
    let remediation = |id: &str| rules.rules().find(|rule| rule.id() == id).map(|rule| rule.remediation().to_owned());
    rules
        .run(model)
        .findings
        .into_iter()
        .map(|finding| {
            // Guardrail addresses are logical addresses (`prod/net/route-table/private-a`).
            let address: Option<enclave_core::Address> = finding.address.parse().ok();
            let part = |get: fn(&enclave_core::Address) -> &str| address.as_ref().map(|a| get(a).to_owned());
            let (account, kind, name) = (
                part(enclave_core::Address::account),
                part(enclave_core::Address::kind),
                part(enclave_core::Address::name),
            );
            let index = loaded.spec.accounts.iter().position(|a| Some(a.name.as_str()) == account.as_deref());
            let span = match index {
                Some(index) => loaded.document.locate(&enclave_core::path!("accounts", index)),
                None => loaded.document.span.clone(),
            };
            enclave_check::Finding {
                remediation: remediation(&finding.rule).unwrap_or_default(),
                rule_name: String::new(),
                rule: finding.rule,
                checkov_id: None,
                severity: finding.severity,
                file: span.file.to_string(),
                line: span.line,
                kind,
                namespace: account,
                name,
                container: None,
                message: format!("{}: {}", finding.address, finding.message),
            }
        })
        .collect()
}
