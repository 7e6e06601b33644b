//! Falco runtime rules for a cluster's workloads, from the spec: which namespaces are apps',
//! which images they run, which networks their pods may reach. Rendered as a Falco rules file
//! (the add-ons give it to Falco); every condition is built from a typed [`Condition`], never
//! pasted text.
//!
//! Rules (each limited to app containers, `enclave_app_container`):
//! - a shell spawned in an app container (distroless images have none: one appearing is an
//!   intrusion);
//! - a write below `/etc` or `/usr` (the root filesystem is read-only: an attempt that succeeds
//!   is a mount or an escape), except the Istio sidecar's own bootstrap folder in a mesh cluster;
//! - a read of a sensitive file (`/etc/shadow`, sudoers, PAM);
//! - an outbound connection to an address outside the cluster's networks (the VPC, the Service
//!   network, loopback), except each namespace's declared CIDR dependencies: an exception per
//!   namespace, not a rule per app;
//! - a process running as root, or a switch to uid 0 (every app runs as a fixed non-root user
//!   without privilege escalation);
//! - a container started from an image none of the namespace's apps runs (the Istio sidecar
//!   excepted in a mesh cluster);
//! - the Kubernetes API contacted from an app container (apps get no service-account token).
//!
//! Every list and macro is named `enclave_…`, so the file can be loaded next to Falco's own
//! rules without redefining theirs.

use std::collections::BTreeSet;

use enclave_core::spec::{ClusterSpec, Destination, Spec};
use serde::{Deserialize, Serialize};

/// Where the rules file goes in a cluster's rendered folder.
pub const RULES_FILE: &str = "falco/enclave-rules.yaml";

/// The Falco engine version the file needs (Falco 0.42 and later, as Falco's own rules).
pub const REQUIRED_ENGINE_VERSION: &str = "0.57.0";

/// The container plugin version whose `container.*` and `k8s.*` fields the rules use.
pub const REQUIRED_CONTAINER_PLUGIN: &str = "0.4.0";

/// The folder Istio's sidecar writes its bootstrap to.
const ISTIO_PROXY_DIR: &str = "/etc/istio/proxy/";

/// One item of a Falco rules file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Item {
    /// The engine version the rules need.
    EngineVersion {
        /// `x.y.z`.
        required_engine_version: String,
    },
    /// The plugins the rules need.
    PluginVersions {
        /// Name and least version of each.
        required_plugin_versions: Vec<PluginVersion>,
    },
    /// A named list of values.
    List {
        /// Its name.
        list: String,
        /// Its values.
        items: Vec<String>,
    },
    /// A named condition.
    Macro {
        /// Its name.
        #[serde(rename = "macro")]
        name: String,
        /// Its condition.
        condition: String,
    },
    /// A rule.
    Rule(Box<FalcoRule>),
}

/// A plugin requirement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginVersion {
    /// Plugin name.
    pub name: String,
    /// Least version.
    pub version: String,
}

/// A Falco rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FalcoRule {
    /// Its name.
    pub rule: String,
    /// What it detects.
    pub desc: String,
    /// When it fires.
    pub condition: String,
    /// What it prints (`%field` tokens).
    pub output: String,
    /// How bad it is.
    pub priority: Priority,
    /// Tags (MITRE tactic and technique, domain).
    pub tags: Vec<String>,
    /// Allowed cases, by field values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<Exception>,
}

/// Falco priorities rendered (upper case, as Falco's schema spells them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// Act now.
    Critical,
    /// An error.
    Error,
    /// Worth a look.
    Warning,
}

/// A rule exception: the rule does not fire when the fields compare equal to one tuple of values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// Its name, unique in the rule.
    pub name: String,
    /// The fields compared.
    pub fields: Vec<String>,
    /// One operator per field.
    pub comps: Vec<String>,
    /// Tuples of values, one per field; a value for `in` is a parenthesised list.
    pub values: Vec<Vec<String>>,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`.
    Eq,
    /// `>=`.
    Ge,
    /// `startswith`.
    StartsWith,
    /// `in`.
    In,
}

impl Op {
    /// Falco's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::StartsWith => "startswith",
            Op::In => "in",
        }
    }
}

/// A value in a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A literal (quoted when it needs to be).
    Literal(String),
    /// A list defined in the file (only inside `in`).
    List(String),
}

/// A condition, rendered to Falco's filter language by [`Condition::render`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A macro defined in the file.
    Macro(String),
    /// `field op value`.
    Compare(String, Op, Value),
    /// `field in (values)`.
    In(String, Vec<Value>),
    /// All of them.
    And(Vec<Condition>),
    /// Any of them.
    Or(Vec<Condition>),
    /// Not it.
    Not(Box<Condition>),
}

fn literal(text: &str) -> String {
    let plain = !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || "(),=\"'".contains(c));
    if plain { text.to_owned() } else { format!("\"{}\"", text.replace('"', "\\\"")) }
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Literal(text) => literal(text),
            Value::List(name) => name.clone(),
        }
    }
}

impl Condition {
    /// `field = value`.
    pub fn eq(field: &str, value: &str) -> Condition {
        Condition::Compare(field.to_owned(), Op::Eq, Value::Literal(value.to_owned()))
    }

    /// `field in (list)`.
    pub fn in_list(field: &str, list: &str) -> Condition {
        Condition::In(field.to_owned(), vec![Value::List(list.to_owned())])
    }

    /// A macro.
    pub fn macro_(name: &str) -> Condition {
        Condition::Macro(name.to_owned())
    }

    /// The filter text.
    pub fn render(&self) -> String {
        match self {
            Condition::Macro(name) => name.clone(),
            Condition::Compare(field, op, value) => format!("{field} {} {}", op.as_str(), value.render()),
            Condition::In(field, values) => {
                format!("{field} in ({})", values.iter().map(Value::render).collect::<Vec<_>>().join(", "))
            }
            Condition::And(parts) => parts.iter().map(Condition::grouped).collect::<Vec<_>>().join(" and "),
            Condition::Or(parts) => parts.iter().map(Condition::grouped).collect::<Vec<_>>().join(" or "),
            Condition::Not(inner) => format!("not {}", inner.grouped()),
        }
    }

    fn grouped(&self) -> String {
        match self {
            Condition::And(_) | Condition::Or(_) => format!("({})", self.render()),
            _ => self.render(),
        }
    }
}

/// What a cluster's rules are built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeInputs {
    /// The cluster.
    pub cluster: String,
    /// Its app namespaces.
    pub namespaces: BTreeSet<String>,
    /// Its apps' image repositories (no tag, no digest).
    pub images: BTreeSet<String>,
    /// Networks every pod may reach: the VPC, the Service network, loopback.
    pub networks: Vec<String>,
    /// Per namespace, the CIDR dependencies its apps declare outside those.
    pub egress: Vec<(String, Vec<String>)>,
    /// Whether the cluster runs the Istio mesh (its sidecar's own writes are expected).
    pub mesh: bool,
}

/// The Service network EKS gives a cluster: `172.20.0.0/16` when the VPC is inside `10.0.0.0/8`,
/// else `10.100.0.0/16`.
pub fn service_network(vpc: &enclave_core::spec::Cidr) -> &'static str {
    let ten = "10.0.0.0/8".parse::<enclave_core::spec::Cidr>().map(|cidr| cidr.net());
    if ten.is_ok_and(|ten| ten.contains(&vpc.net().network())) { "172.20.0.0/16" } else { "10.100.0.0/16" }
}

/// The first address of `network` (the Kubernetes API's Service address).
fn api_service_address(network: &str) -> String {
    network
        .split('/')
        .next()
        .unwrap_or(network)
        .rsplit_once('.')
        .map(|(head, _)| format!("{head}.1"))
        .unwrap_or_default()
}

/// The inputs of `cluster`'s rules.
pub fn inputs(spec: &Spec, cluster: &ClusterSpec) -> RuntimeInputs {
    let apps: Vec<_> = spec.apps.iter().filter(|app| app.cluster == cluster.name).collect();
    let mut networks = Vec::new();
    if let Some(account) = spec.account(cluster.account.as_str()) {
        networks.push(account.vpc_cidr.to_string());
        networks.push(service_network(&account.vpc_cidr).to_owned());
    }
    networks.push("127.0.0.0/8".to_owned());
    let mut egress: Vec<(String, Vec<String>)> = Vec::new();
    for app in &apps {
        let cidrs: Vec<String> = app
            .monitoring
            .dependencies
            .iter()
            .filter_map(|dependency| match &dependency.to {
                Some(Destination::Cidr(cidr)) => Some(cidr.to_string()),
                Some(Destination::App(_) | Destination::Tier(_)) | None => None,
            })
            .collect();
        if cidrs.is_empty() {
            continue;
        }
        let namespace = app.namespace().to_string();
        match egress.iter_mut().find(|(name, _)| *name == namespace) {
            Some((_, list)) => list.extend(cidrs),
            None => egress.push((namespace, cidrs)),
        }
    }
    for (_, list) in &mut egress {
        list.sort();
        list.dedup();
    }
    egress.sort();
    RuntimeInputs {
        cluster: cluster.name.to_string(),
        namespaces: apps.iter().map(|app| app.namespace().to_string()).collect(),
        images: apps.iter().map(|app| repository(&app.image).to_owned()).collect(),
        networks,
        egress,
        mesh: cluster.mesh.is_some(),
    }
}

/// An image's repository: without digest and tag.
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((head, tag)) if !tag.contains('/') => head,
        _ => image,
    }
}

fn list(name: &str, items: impl IntoIterator<Item = String>) -> Item {
    Item::List { list: name.to_owned(), items: items.into_iter().collect() }
}

fn macro_item(name: &str, condition: &Condition) -> Item {
    Item::Macro { name: name.to_owned(), condition: condition.render() }
}

const OUTPUT_TAIL: &str = "ns=%k8s.ns.name pod=%k8s.pod.name container=%container.name \
                           image=%container.image.repository process=%proc.name parent=%proc.pname \
                           command=%proc.cmdline user_uid=%user.uid";

fn rule(
    name: &str,
    desc: &str,
    condition: &Condition,
    what: &str,
    priority: Priority,
    tags: &[&str],
    exceptions: Vec<Exception>,
) -> Item {
    Item::Rule(Box::new(FalcoRule {
        rule: name.to_owned(),
        desc: desc.to_owned(),
        condition: condition.render(),
        output: format!("{what} | {OUTPUT_TAIL}"),
        priority,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        exceptions,
    }))
}

/// The rules file of a cluster.
pub fn rules(inputs: &RuntimeInputs) -> Vec<Item> {
    use Condition as C;
    let literal = |text: &str| Value::Literal(text.to_owned());
    let app_container = C::macro_("enclave_app_container");
    let mut items = vec![
        Item::EngineVersion { required_engine_version: REQUIRED_ENGINE_VERSION.to_owned() },
        Item::PluginVersions {
            required_plugin_versions: vec![PluginVersion {
                name: "container".to_owned(),
                version: REQUIRED_CONTAINER_PLUGIN.to_owned(),
            }],
        },
        list("enclave_app_namespaces", inputs.namespaces.iter().cloned()),
        list("enclave_app_images", inputs.images.iter().cloned()),
        list("enclave_cluster_networks", inputs.networks.iter().cloned()),
        list("enclave_shell_binaries", ["ash", "bash", "csh", "dash", "ksh", "sh", "tcsh", "zsh"].map(String::from)),
        list(
            "enclave_sensitive_files",
            ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/pam.conf", "/etc/security/pwquality.conf"]
                .map(String::from),
        ),
        list("enclave_sensitive_directories", ["/etc/sudoers.d", "/etc/pam.d", "/root/.ssh"].map(String::from)),
        list("enclave_open_syscalls", ["open", "openat", "openat2"].map(String::from)),
        macro_item("enclave_container", &C::Not(Box::new(C::eq("container.id", "host")))),
        macro_item(
            "enclave_app_container",
            &C::And(vec![C::macro_("enclave_container"), C::in_list("k8s.ns.name", "enclave_app_namespaces")]),
        ),
        macro_item(
            "enclave_spawned_process",
            &C::In("evt.type".to_owned(), vec![literal("execve"), literal("execveat")]),
        ),
        macro_item(
            "enclave_open_write",
            &C::And(vec![
                C::in_list("evt.type", "enclave_open_syscalls"),
                C::eq("evt.is_open_write", "true"),
                C::eq("fd.typechar", "f"),
                C::Compare("fd.num".to_owned(), Op::Ge, literal("0")),
            ]),
        ),
        macro_item(
            "enclave_open_read",
            &C::And(vec![
                C::in_list("evt.type", "enclave_open_syscalls"),
                C::eq("evt.is_open_read", "true"),
                C::eq("fd.typechar", "f"),
                C::Compare("fd.num".to_owned(), Op::Ge, literal("0")),
            ]),
        ),
        macro_item(
            "enclave_outbound",
            &C::And(vec![
                C::eq("evt.type", "connect"),
                C::Or(vec![C::eq("fd.typechar", "4"), C::eq("fd.typechar", "6")]),
                C::Or(vec![C::Compare("evt.rawres".to_owned(), Op::Ge, literal("0")), C::eq("evt.res", "EINPROGRESS")]),
            ]),
        ),
        macro_item(
            "enclave_kubernetes_api",
            &C::Or(vec![
                C::eq("fd.sip.name", "kubernetes.default.svc.cluster.local"),
                C::eq(
                    "fd.sip",
                    &inputs.networks.get(1).map(|network| api_service_address(network)).unwrap_or_default(),
                ),
            ]),
        ),
    ];

    items.push(rule(
        "Shell in an app container",
        "A shell ran in an app container. App images carry no shell: one running means the image \
         was replaced or someone got in.",
        &C::And(vec![
            C::macro_("enclave_spawned_process"),
            app_container.clone(),
            C::in_list("proc.name", "enclave_shell_binaries"),
        ]),
        "Shell spawned in an app container",
        Priority::Critical,
        &["enclave", "container", "process", "mitre_execution", "T1059"],
        Vec::new(),
    ));
    let istio = if inputs.mesh {
        vec![Exception {
            name: "istio_proxy_bootstrap".to_owned(),
            fields: vec!["container.name".to_owned(), "fd.name".to_owned()],
            comps: vec!["=".to_owned(), "startswith".to_owned()],
            values: vec![vec!["istio-proxy".to_owned(), ISTIO_PROXY_DIR.to_owned()]],
        }]
    } else {
        Vec::new()
    };
    items.push(rule(
        "Write below etc or usr in an app container",
        "A file below /etc or /usr was opened for writing in an app container, whose root \
         filesystem is read-only: a mounted volume or an escape.",
        &C::And(vec![
            C::macro_("enclave_open_write"),
            app_container.clone(),
            C::Or(vec![
                C::Compare("fd.name".to_owned(), Op::StartsWith, literal("/etc/")),
                C::Compare("fd.name".to_owned(), Op::StartsWith, literal("/usr/")),
            ]),
        ]),
        "File below /etc or /usr opened for writing (file=%fd.name)",
        Priority::Error,
        &["enclave", "container", "filesystem", "mitre_persistence", "T1543"],
        istio,
    ));
    items.push(rule(
        "Read of a sensitive file in an app container",
        "An app container read a file holding credentials or authentication settings.",
        &C::And(vec![
            C::macro_("enclave_open_read"),
            app_container.clone(),
            C::Or(vec![
                C::in_list("fd.name", "enclave_sensitive_files"),
                C::in_list("fd.directory", "enclave_sensitive_directories"),
            ]),
        ]),
        "Sensitive file opened for reading (file=%fd.name)",
        Priority::Warning,
        &["enclave", "container", "filesystem", "mitre_credential_access", "T1555"],
        Vec::new(),
    ));
    let declared: Vec<Vec<String>> = inputs
        .egress
        .iter()
        .map(|(namespace, cidrs)| vec![namespace.clone(), format!("({})", cidrs.join(", "))])
        .collect();
    items.push(rule(
        "Outbound connection outside the cluster networks from an app container",
        "An app container connected to an address outside the VPC, the Service network and \
         loopback that its namespace does not declare as a dependency.",
        &C::And(vec![
            C::macro_("enclave_outbound"),
            app_container.clone(),
            C::Not(Box::new(C::in_list("fd.snet", "enclave_cluster_networks"))),
        ]),
        "Outbound connection to an undeclared address (connection=%fd.name)",
        Priority::Error,
        &["enclave", "container", "network", "mitre_exfiltration", "T1041"],
        if declared.is_empty() {
            Vec::new()
        } else {
            vec![Exception {
                name: "declared_dependencies".to_owned(),
                fields: vec!["k8s.ns.name".to_owned(), "fd.snet".to_owned()],
                comps: vec!["=".to_owned(), "in".to_owned()],
                values: declared,
            }]
        },
    ));
    items.push(rule(
        "Root process in an app container",
        "A process ran as root, or switched to uid 0, in an app container: every app runs as a \
         fixed non-root user with privilege escalation off.",
        &C::And(vec![
            app_container.clone(),
            C::Or(vec![
                C::And(vec![C::macro_("enclave_spawned_process"), C::eq("user.uid", "0")]),
                C::And(vec![
                    C::In("evt.type".to_owned(), vec![literal("setuid"), literal("setresuid")]),
                    C::Or(vec![C::eq("evt.arg.uid", "0"), C::eq("evt.arg.euid", "0"), C::eq("evt.arg.ruid", "0")]),
                ]),
            ]),
        ]),
        "Privilege escalation to root",
        Priority::Critical,
        &["enclave", "container", "process", "mitre_privilege_escalation", "T1548"],
        Vec::new(),
    ));
    let sidecars = if inputs.mesh {
        vec![Exception {
            name: "istio_sidecar".to_owned(),
            fields: vec!["container.name".to_owned()],
            comps: vec!["=".to_owned()],
            values: vec![vec!["istio-proxy".to_owned()], vec!["istio-validation".to_owned()]],
        }]
    } else {
        Vec::new()
    };
    items.push(rule(
        "Unexpected image in an app namespace",
        "A container started in an app namespace from an image that is none of the apps' \
         repositories: something else was scheduled next to the apps.",
        &C::And(vec![
            C::macro_("enclave_spawned_process"),
            C::eq("proc.vpid", "1"),
            app_container.clone(),
            C::Not(Box::new(C::in_list("container.image.repository", "enclave_app_images"))),
        ]),
        "Container started from an unexpected image",
        Priority::Error,
        &["enclave", "container", "process", "mitre_execution", "T1610"],
        sidecars,
    ));
    items.push(rule(
        "Kubernetes API contacted from an app container",
        "An app container connected to the Kubernetes API server; apps get no service-account \
         token and have no reason to.",
        &C::And(vec![C::macro_("enclave_outbound"), app_container, C::macro_("enclave_kubernetes_api")]),
        "Kubernetes API server contacted (connection=%fd.name)",
        Priority::Warning,
        &["enclave", "container", "k8s", "mitre_discovery", "T1613"],
        Vec::new(),
    ));
    items
}

/// The rules file as YAML.
pub fn to_yaml(items: &[Item]) -> String {
    enclave_core::bundle::to_yaml(&items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_group_and_quote_what_needs_it() {
        use Condition as C;
        let condition = C::And(vec![
            C::macro_("a"),
            C::Or(vec![C::eq("fd.name", "/etc/x y"), C::Not(Box::new(C::in_list("proc.name", "l")))]),
        ]);
        assert_eq!(condition.render(), r#"a and (fd.name = "/etc/x y" or not proc.name in (l))"#);
        assert_eq!(repository("r.example/app:1.0@sha256:abc"), "r.example/app");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(api_service_address("172.20.0.0/16"), "172.20.0.1");
    }
}
