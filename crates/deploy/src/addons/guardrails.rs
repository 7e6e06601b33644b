//! Add-on guardrails (`ADD001`...), over each cluster's rendered bundle and alert table: every
//! custom resource has its operator installed in the same cluster, every chart version is
//! exact, every alert reaches someone.

use enclave_core::Address;
use enclave_core::guardrail::{Hit, RuleSet, Severity};
use enclave_core::spec::{Addon, AlertSeverity, ClusterSpec};

use super::{ADDON_LABEL, exact, operators, version};

/// The component of every add-on finding's address.
pub const COMPONENT: &str = "addons";

/// One alert of the table and whether a receiver notifies someone of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// `alertname`.
    pub name: String,
    /// The app (`service`).
    pub service: String,
    /// Its severity.
    pub severity: AlertSeverity,
    /// The receiver it goes to.
    pub receiver: String,
    /// Whether that receiver notifies anyone.
    pub notified: bool,
}

/// One cluster: its spec, its rendered bundle and its alert table.
#[derive(Debug)]
pub struct ClusterSubject<'a> {
    /// The cluster.
    pub cluster: &'a ClusterSpec,
    /// Every object of its bundle.
    pub objects: Vec<serde_json::Value>,
    /// Its apps' alerts.
    pub alerts: Vec<Alert>,
}

/// What the add-on rules look at.
#[derive(Debug, Default)]
pub struct Subject<'a> {
    /// Every cluster.
    pub clusters: Vec<ClusterSubject<'a>>,
}

/// Every add-on rule, in id order.
pub fn rules<'a>() -> RuleSet<Subject<'a>> {
    RuleSet::default().with(OperatorInstalled).with(ExactChartVersion).with(AlertsRouted)
}

macro_rules! rule {
    ($name:ident, $id:literal, $($rule:tt)*) => {
        enclave_core::guardrail_rule!(impl<'a> for Subject<'a>, $name, $id, None, $($rule)*);
    };
}

fn at(cluster: &ClusterSpec, kind: &str, name: &str) -> Address {
    let name: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    Address::new(cluster.account.as_str(), COMPONENT, kind, &format!("{}.{name}", cluster.name))
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// The add-ons a bundle installs: its Applications' and HelmReleases' `enclave.dev/addon`.
pub fn installed_in(objects: &[serde_json::Value]) -> Vec<Addon> {
    objects
        .iter()
        .filter(|object| matches!(object["kind"].as_str(), Some("Application" | "HelmRelease")))
        .filter_map(|object| object["metadata"]["labels"][ADDON_LABEL].as_str())
        .filter_map(|name| Addon::ALL.into_iter().find(|addon| addon.as_str() == name))
        .collect()
}

/// The API group of an object's `apiVersion` (empty for the core group).
fn group(object: &serde_json::Value) -> &str {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

rule!(
    OperatorInstalled,
    "ADD001",
    Severity::High,
    "every custom resource rendered into a cluster has its operator installed there",
    "remove the add-on from `addons.disabled`, or install its operator another way and accept the finding",
    |subject| {
        let mut hits = Vec::new();
        for cluster in &subject.clusters {
            let installed = installed_in(&cluster.objects);
            for object in &cluster.objects {
                let group = group(object);
                let Some(needed) = operators(group) else { continue };
                let kind = object["kind"].as_str().unwrap_or_default();
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let namespace = object["metadata"]["namespace"].as_str().unwrap_or("_cluster");
                let address = || at(cluster.cluster, &kind.to_lowercase(), &format!("{namespace}.{name}"));
                if needed.is_empty() {
                    hits.push(Hit::new(
                        address(),
                        format!("{kind} `{name}` ({group}) in `{}`: no add-on runs its operator", cluster.cluster.name),
                    ));
                }
                for addon in needed.iter().filter(|addon| !installed.contains(addon)) {
                    hits.push(Hit::new(
                        address(),
                        format!(
                            "{kind} `{namespace}/{name}` in `{}` does nothing without `{addon}`, which is not installed",
                            cluster.cluster.name
                        ),
                    ));
                }
            }
        }
        hits
    }
);

rule!(
    ExactChartVersion,
    "ADD002",
    Severity::Medium,
    "every add-on chart is pinned to one exact version",
    "give `addons.versions` an exact version (`1.2.3`), never a range, a wildcard or `latest`",
    |subject| {
        let mut hits = Vec::new();
        for cluster in &subject.clusters {
            for addon in installed_in(&cluster.objects) {
                let version = version(cluster.cluster, addon);
                if !exact(&version) {
                    hits.push(Hit::new(
                        at(cluster.cluster, "chart", addon.as_str()),
                        format!(
                            "`{addon}` in `{}` follows `{version}`: each sync may install another release",
                            cluster.cluster.name
                        ),
                    ));
                }
            }
        }
        hits
    }
);

rule!(
    AlertsRouted,
    "ADD003",
    Severity::High,
    "every alert of the table reaches a receiver that notifies someone",
    "add an `alerting.routes` entry for the severity (or the app's team), or an `alerting.default_receiver`",
    |subject| {
        let mut hits = Vec::new();
        for cluster in &subject.clusters {
            let mut seen = std::collections::BTreeSet::new();
            for alert in cluster.alerts.iter().filter(|alert| !alert.notified) {
                // One finding per app and severity, not per alert.
                if !seen.insert((alert.service.clone(), alert.severity)) {
                    continue;
                }
                hits.push(Hit::new(
                    at(cluster.cluster, "alert", &format!("{}.{}", alert.service, alert.severity)),
                    format!(
                        "{} alerts of `{}` in `{}` (such as {}) go to `{}`, which notifies nobody",
                        alert.severity, alert.service, cluster.cluster.name, alert.name, alert.receiver
                    ),
                ));
            }
        }
        hits
    }
);

#[cfg(test)]
mod tests {
    use crate::addons::exact;

    #[test]
    fn only_one_release_is_exact() {
        for good in ["1.2.3", "88.5.3", "1.30.3", "2.0.0-rc.1"] {
            assert!(exact(good), "{good}");
        }
        for bad in
            ["", "1.2", "1.2.x", "^1.2.3", "~1.2.3", ">=1.2.3", "*", "latest", "1.2.3-", "v1.2.3", "1.2.3 || 2.0.0"]
        {
            assert!(!exact(bad), "{bad}");
        }
    }
}
