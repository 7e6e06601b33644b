//! Accepted exceptions to the workload bar: what a node agent (Falco, Filebeat, node exporter,
//! Istio's CNI) needs of its host that no app may have. Each is named once, with its reason, and
//! every checker reads the same list: the admission policy leaves exactly those templates out in
//! exactly that namespace, and `enclave check` reports the findings as suppressed with the reason
//! (the [`CHECK_SKIP_ANNOTATION`] on the agent's pods).

use std::fmt;

use crate::spec::Addon;

/// `enclave check`'s annotation accepting rules on an object: `"K8S023=reason, ..."`.
pub const CHECK_SKIP_ANNOTATION: &str = "enclave.dev/skip";

/// Something of the host a workload may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostAccess {
    /// Runs as root (user 0).
    RunAsRoot,
    /// A privileged container.
    Privileged,
    /// Capabilities beyond none (and so no `drop: [ALL]`, and escalation not forbidden).
    AddedCapabilities,
    /// The host's process namespace.
    HostPid,
    /// The host's network namespace.
    HostNetwork,
    /// Directories of the host.
    HostPath,
    /// A writable root filesystem.
    WritableRoot,
}

impl HostAccess {
    /// The `enclave check` rules that report it.
    pub fn check_rules(self) -> &'static [&'static str] {
        match self {
            HostAccess::RunAsRoot => &["K8S023", "K8S040"],
            HostAccess::Privileged => &["K8S016", "K8S020"],
            HostAccess::AddedCapabilities => &["K8S020", "K8S025", "K8S037"],
            HostAccess::HostPid => &["K8S017"],
            HostAccess::HostNetwork => &["K8S019"],
            HostAccess::HostPath => &[],
            HostAccess::WritableRoot => &["K8S022"],
        }
    }
}

impl fmt::Display for HostAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostAccess::RunAsRoot => "runs as root",
            HostAccess::Privileged => "privileged",
            HostAccess::AddedCapabilities => "added capabilities",
            HostAccess::HostPid => "host PID namespace",
            HostAccess::HostNetwork => "host network",
            HostAccess::HostPath => "host directories",
            HostAccess::WritableRoot => "writable root filesystem",
        })
    }
}

/// One accepted exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// The add-on whose workload it is.
    pub addon: Addon,
    /// The workload (as its chart or enclave names it).
    pub workload: &'static str,
    /// Its namespace, where nothing else runs.
    pub namespace: String,
    /// What it needs.
    pub access: &'static [HostAccess],
    /// Why.
    pub reason: &'static str,
}

impl Exception {
    /// The value of [`CHECK_SKIP_ANNOTATION`] for its pods.
    pub fn check_skips(&self) -> String {
        check_skips(self.access, self.reason)
    }
}

/// The value of [`CHECK_SKIP_ANNOTATION`] accepting every rule `access` trips, for `reason`.
pub fn check_skips(access: &[HostAccess], reason: &str) -> String {
    let mut rules: Vec<&str> = access.iter().flat_map(|access| access.check_rules().iter().copied()).collect();
    rules.sort_unstable();
    rules.dedup();
    // The annotation's grammar separates items with commas: none in the reason.
    let reason = reason.replace(',', ";");
    rules.iter().map(|rule| format!("{rule}={reason}")).collect::<Vec<_>>().join(", ")
}
