//! Admission policy for a cluster: OPA Gatekeeper `ConstraintTemplate`s (Rego, written once per
//! rule in `src/admission/*.rego`) and the `Constraint`s that apply them, with parameters from the
//! spec (the stack's registry, the app namespaces).
//!
//! Every rule that has an `enclave check` rule of the same meaning says which ([`Template::checks`]
//! with the parameters that make it that rule): `tests/admission.rs` evaluates the Rego with
//! regorus in Gatekeeper's input shape over the manifest corpus and compares each verdict with
//! `enclave check`'s. Templates use Rego v1 (`code[].source.version: v1`, Gatekeeper 3.19 and
//! later) and one library, `lib.enclave`, called by full name.
//!
//! Constraints cover every namespace but Kubernetes' and Gatekeeper's own (and Istio's root in a
//! mesh cluster), except three that only make sense for the apps: images only from the stack's
//! registry, required labels, and exposure, which leaves out [`INGRESS_NAMESPACE`].

use std::collections::BTreeMap;

use enclave_core::exception::{Exception, HostAccess};
use enclave_core::spec::{ClusterSpec, Spec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Gatekeeper's admission target.
pub const TARGET: &str = "admission.k8s.gatekeeper.sh";

/// The namespace where an ingress controller may expose a load balancer.
pub const INGRESS_NAMESPACE: &str = "ingress";

/// Namespaces no constraint applies to: Kubernetes' own and Gatekeeper's.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease", "gatekeeper-system"];

/// The labels every app object carries (`enclave-deploy` sets both).
pub const REQUIRED_LABELS: &[&str] = &["app.kubernetes.io/name", "app.kubernetes.io/part-of"];

/// The shared Rego library, `package lib.enclave`.
pub const LIB: &str = include_str!("admission/lib.rego");

/// Kinds whose objects describe pods, by API group (Gatekeeper matches kinds with their group).
pub const POD_KINDS: &[(&str, &[&str])] = &[
    ("", &["Pod", "ReplicationController"]),
    ("apps", &["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"]),
    ("batch", &["Job", "CronJob"]),
];

/// Builds a template's parameters.
pub type Parameters = fn() -> Value;

/// What a template's Constraints select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Pods and the workloads that make them, in every namespace but the system ones.
    Workloads,
    /// Pods and workloads in the app namespaces.
    AppWorkloads,
    /// Services outside the ingress and system namespaces.
    Services,
    /// Workloads and Services in the app namespaces.
    AppObjects,
}

/// One admission rule.
#[derive(Clone, Debug)]
pub struct Template {
    /// The Constraint kind (`EnclaveNonRoot`); the template's name is it in lower case.
    pub kind: &'static str,
    /// What it refuses.
    pub summary: &'static str,
    /// Its Rego.
    pub rego: &'static str,
    /// The parameters' OpenAPI schema (none: the Constraint takes no parameters).
    pub parameters: Option<fn() -> Value>,
    /// The `enclave check` rules of the same meaning, each with the parameters that make the
    /// template that rule.
    pub checks: &'static [(&'static str, Parameters)],
    /// What its Constraints select.
    pub scope: Scope,
    /// The host access an accepted exception may need that this template refuses: a namespace
    /// holding such an exception (`enclave_core::exception`) is left out of its Constraints.
    pub relaxed_by: &'static [HostAccess],
    /// The parameters of a cluster's Constraint (none: it takes none, or the cluster lacks what
    /// they need and gets no Constraint; see [`render_cluster`]).
    pub constraint_parameters: Option<fn(&AdmissionInputs) -> Option<Value>>,
}

fn no_parameters() -> Value {
    json!({})
}

fn string_list() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn object_of(properties: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> =
        properties.iter().map(|name| ((*name).to_owned(), string_list())).collect();
    json!({"type": "object", "properties": properties})
}

/// Every template, in a fixed order.
pub fn templates() -> Vec<Template> {
    vec![
        Template {
            kind: "EnclaveNonRoot",
            summary: "containers run as a non-root user",
            rego: include_str!("admission/non_root.rego"),
            parameters: None,
            checks: &[("K8S023", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::RunAsRoot],
        },
        Template {
            kind: "EnclaveReadOnlyRoot",
            summary: "containers have a read-only root filesystem",
            rego: include_str!("admission/read_only_root.rego"),
            parameters: None,
            checks: &[("K8S022", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::WritableRoot, HostAccess::Privileged],
        },
        Template {
            kind: "EnclaveNoPrivileged",
            summary: "no container is privileged",
            rego: include_str!("admission/no_privileged.rego"),
            parameters: None,
            checks: &[("K8S016", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::Privileged],
        },
        Template {
            kind: "EnclaveNoEscalation",
            summary: "no container may escalate its privileges",
            rego: include_str!("admission/no_escalation.rego"),
            parameters: None,
            checks: &[("K8S020", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::Privileged, HostAccess::AddedCapabilities],
        },
        Template {
            kind: "EnclaveDropAll",
            summary: "containers drop every capability",
            rego: include_str!("admission/drop_all.rego"),
            parameters: None,
            checks: &[("K8S037", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::Privileged, HostAccess::AddedCapabilities],
        },
        Template {
            kind: "EnclaveResources",
            summary: "containers set the requests and limits named",
            rego: include_str!("admission/resources.rego"),
            parameters: Some(|| object_of(&["requests", "limits"])),
            checks: &[
                ("K8S010", || json!({"requests": ["cpu"]})),
                ("K8S011", || json!({"limits": ["cpu"]})),
                ("K8S012", || json!({"requests": ["memory"]})),
                ("K8S013", || json!({"limits": ["memory"]})),
            ],
            constraint_parameters: Some(|_| Some(json!({"requests": ["cpu", "memory"], "limits": ["cpu", "memory"]}))),
            scope: Scope::Workloads,
            relaxed_by: &[],
        },
        Template {
            kind: "EnclaveNoLatest",
            summary: "images are pinned by a tag other than latest or by a digest",
            rego: include_str!("admission/image_tag.rego"),
            parameters: None,
            checks: &[("K8S014", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Workloads,
            relaxed_by: &[],
        },
        Template {
            kind: "EnclaveAllowedImages",
            summary: "containers run only images of the stack's registries",
            rego: include_str!("admission/allowed_images.rego"),
            parameters: Some(|| object_of(&["repos"])),
            checks: &[],
            constraint_parameters: Some(|inputs| {
                (!inputs.registries.is_empty()).then(|| json!({"repos": inputs.registries}))
            }),
            scope: Scope::AppWorkloads,
            relaxed_by: &[],
        },
        Template {
            kind: "EnclaveHostNamespaces",
            summary: "pods share none of the node's namespaces",
            rego: include_str!("admission/host_namespaces.rego"),
            parameters: Some(|| object_of(&["fields"])),
            checks: &[
                ("K8S017", || json!({"fields": ["hostPID"]})),
                ("K8S018", || json!({"fields": ["hostIPC"]})),
                ("K8S019", || json!({"fields": ["hostNetwork"]})),
            ],
            constraint_parameters: Some(|_| Some(json!({"fields": ["hostPID", "hostIPC", "hostNetwork"]}))),
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::HostPid, HostAccess::HostNetwork],
        },
        Template {
            kind: "EnclaveNoHostPath",
            summary: "pods mount no directory of the node",
            rego: include_str!("admission/host_paths.rego"),
            parameters: Some(|| object_of(&["paths"])),
            checks: &[("K8S027", || json!({"paths": ["/var/run/docker.sock"]}))],
            // No paths: every hostPath volume is refused.
            constraint_parameters: Some(|_| Some(json!({"paths": []}))),
            scope: Scope::Workloads,
            relaxed_by: &[HostAccess::HostPath],
        },
        Template {
            kind: "EnclaveRequiredLabels",
            summary: "app objects carry the platform's labels",
            rego: include_str!("admission/required_labels.rego"),
            parameters: Some(|| object_of(&["labels"])),
            checks: &[],
            constraint_parameters: Some(|_| Some(json!({"labels": REQUIRED_LABELS}))),
            scope: Scope::AppObjects,
            relaxed_by: &[],
        },
        Template {
            kind: "EnclaveServiceExposure",
            summary: "no NodePort or internet-facing LoadBalancer Service outside the ingress namespace",
            rego: include_str!("admission/service_exposure.rego"),
            parameters: None,
            checks: &[("K8S100", no_parameters)],
            constraint_parameters: None,
            scope: Scope::Services,
            relaxed_by: &[],
        },
    ]
}

/// `templates.gatekeeper.sh/v1` `ConstraintTemplate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintTemplate {
    /// `templates.gatekeeper.sh/v1`.
    pub api_version: String,
    /// `ConstraintTemplate`.
    pub kind: String,
    /// Name (the kind in lower case) and labels.
    pub metadata: Metadata,
    /// The Constraint kind and the Rego.
    pub spec: TemplateSpec,
}

/// Object metadata (a template and a Constraint are cluster-scoped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A template's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// The Constraint CRD Gatekeeper generates.
    pub crd: TemplateCrd,
    /// The one admission target.
    pub targets: Vec<TemplateTarget>,
}

/// `spec.crd`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateCrd {
    /// `spec.crd.spec`.
    pub spec: TemplateCrdSpec,
}

/// `spec.crd.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateCrdSpec {
    /// The Constraint kind.
    pub names: Names,
    /// The parameters' schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

/// `names`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    /// The Constraint kind.
    pub kind: String,
}

/// `validation` (singular, as Gatekeeper spells it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// The parameters' schema.
    #[serde(rename = "openAPIV3Schema")]
    pub open_api_v3_schema: Value,
}

/// A target with its code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateTarget {
    /// [`TARGET`].
    pub target: String,
    /// The Rego engine's source.
    pub code: Vec<Code>,
}

/// One engine's code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Code {
    /// `Rego`.
    pub engine: String,
    /// The policy.
    pub source: RegoSource,
}

/// Rego source, v1 syntax.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegoSource {
    /// `v1`.
    pub version: String,
    /// The policy module (its `violation` rule).
    pub rego: String,
    /// Library modules (`package lib.*`).
    pub libs: Vec<String>,
}

/// A `constraints.gatekeeper.sh/v1beta1` Constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    /// `constraints.gatekeeper.sh/v1beta1`.
    pub api_version: String,
    /// The template's Constraint kind.
    pub kind: String,
    /// Name and labels.
    pub metadata: Metadata,
    /// What it applies to, and how.
    pub spec: ConstraintSpec,
}

/// A Constraint's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintSpec {
    /// `deny`.
    pub enforcement_action: String,
    /// The objects it applies to.
    #[serde(rename = "match")]
    pub match_: Match,
    /// The template's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// Gatekeeper's `match`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// Kinds by API group.
    pub kinds: Vec<MatchKinds>,
    /// Only these namespaces (none: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Never these namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_namespaces: Vec<String>,
}

/// Kinds of one API group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchKinds {
    /// API groups (`""` is the core group).
    pub api_groups: Vec<String>,
    /// Kinds.
    pub kinds: Vec<String>,
}

fn labels(stack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
    ])
}

/// The ConstraintTemplate of `template`.
pub fn constraint_template(stack: &str, template: &Template) -> ConstraintTemplate {
    ConstraintTemplate {
        api_version: "templates.gatekeeper.sh/v1".to_owned(),
        kind: "ConstraintTemplate".to_owned(),
        metadata: Metadata {
            name: template.kind.to_lowercase(),
            labels: labels(stack),
            annotations: BTreeMap::from([("description".to_owned(), template.summary.to_owned())]),
        },
        spec: TemplateSpec {
            crd: TemplateCrd {
                spec: TemplateCrdSpec {
                    names: Names { kind: template.kind.to_owned() },
                    validation: template.parameters.map(|schema| Validation { open_api_v3_schema: schema() }),
                },
            },
            targets: vec![TemplateTarget {
                target: TARGET.to_owned(),
                code: vec![Code {
                    engine: "Rego".to_owned(),
                    source: RegoSource {
                        version: "v1".to_owned(),
                        rego: template.rego.to_owned(),
                        libs: vec![LIB.to_owned()],
                    },
                }],
            }],
        },
    }
}

fn kinds_of(groups: &[(&str, &[&str])]) -> Vec<MatchKinds> {
    groups
        .iter()
        .map(|(group, kinds)| MatchKinds {
            api_groups: vec![(*group).to_owned()],
            kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
        })
        .collect()
}

/// What a cluster's Constraints need from the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionInputs {
    /// The cluster's app namespaces.
    pub app_namespaces: Vec<String>,
    /// Image prefixes allowed: the stack's registry host, with a trailing `/`.
    pub registries: Vec<String>,
    /// Istio's root namespace, in a mesh cluster.
    pub mesh_root: Option<String>,
    /// The namespaces the cluster's add-ons run in: their Constraints warn instead of deny
    /// (the charts' pods are set to meet the bar, which only their rendering can prove).
    pub addon_namespaces: Vec<String>,
    /// The accepted exceptions (node agents' host access), each in its own namespace.
    pub exceptions: Vec<Exception>,
}

/// The inputs of `cluster`'s Constraints.
pub fn inputs(spec: &Spec, cluster: &ClusterSpec) -> AdmissionInputs {
    let mut app_namespaces: Vec<String> =
        spec.apps.iter().filter(|app| app.cluster == cluster.name).map(|app| app.namespace().to_string()).collect();
    app_namespaces.sort();
    app_namespaces.dedup();
    let registries = spec.registry_host().map(|host| vec![format!("{host}/")]).unwrap_or_default();
    AdmissionInputs {
        app_namespaces,
        registries,
        mesh_root: cluster.mesh.as_ref().map(|mesh| mesh.root_namespace.to_string()),
        addon_namespaces: Vec::new(),
        exceptions: Vec::new(),
    }
}

/// The Constraints of `template` in a cluster with `inputs`: one that denies, and for
/// cluster-wide workload templates one that warns in the add-on namespaces (less those whose
/// accepted exception this template would refuse).
pub fn constraints(stack: &str, template: &Template, inputs: &AdmissionInputs) -> Vec<Constraint> {
    let mut excluded: Vec<String> = SYSTEM_NAMESPACES.iter().map(|name| (*name).to_owned()).collect();
    excluded.extend(inputs.mesh_root.iter().cloned());
    let (kinds, namespaces, excluded) = match template.scope {
        Scope::Workloads => {
            excluded.extend(inputs.addon_namespaces.iter().cloned());
            (kinds_of(POD_KINDS), Vec::new(), excluded)
        }
        Scope::AppWorkloads => (kinds_of(POD_KINDS), inputs.app_namespaces.clone(), Vec::new()),
        Scope::Services => {
            excluded.push(INGRESS_NAMESPACE.to_owned());
            (kinds_of(&[("", &["Service"])]), Vec::new(), excluded)
        }
        Scope::AppObjects => {
            let mut kinds = kinds_of(POD_KINDS);
            kinds[0].kinds.push("Service".to_owned());
            (kinds, inputs.app_namespaces.clone(), Vec::new())
        }
    };
    let parameters = template.constraint_parameters.and_then(|parameters| parameters(inputs));
    let constraint = |name: String, action: &str, match_: Match| Constraint {
        api_version: "constraints.gatekeeper.sh/v1beta1".to_owned(),
        kind: template.kind.to_owned(),
        metadata: Metadata { name, labels: labels(stack), annotations: BTreeMap::new() },
        spec: ConstraintSpec { enforcement_action: action.to_owned(), match_, parameters: parameters.clone() },
    };
    let name = template.kind.to_lowercase();
    let mut out = vec![constraint(
        name.clone(),
        "deny",
        Match { kinds: kinds.clone(), namespaces, excluded_namespaces: excluded },
    )];
    if matches!(template.scope, Scope::Workloads) {
        let relaxed = |namespace: &str| {
            inputs.exceptions.iter().any(|exception| {
                exception.namespace == namespace && exception.access.iter().any(|a| template.relaxed_by.contains(a))
            })
        };
        let warned: Vec<String> = inputs
            .addon_namespaces
            .iter()
            .filter(|namespace| Some(namespace.as_str()) != inputs.mesh_root.as_deref() && !relaxed(namespace))
            .cloned()
            .collect();
        if !warned.is_empty() {
            out.push(constraint(
                format!("{name}-addons"),
                "warn",
                Match { kinds, namespaces: warned, excluded_namespaces: Vec::new() },
            ));
        }
    }
    out
}

/// Every ConstraintTemplate and Constraint of `cluster`, as JSON values for its bundle, with
/// its add-ons' namespaces and accepted exceptions (from `enclave-deploy`'s add-ons).
pub fn render_cluster(
    spec: &Spec,
    cluster: &ClusterSpec,
    addon_namespaces: &[String],
    exceptions: &[Exception],
) -> Vec<Value> {
    let stack = spec.stack().to_string();
    let inputs = AdmissionInputs {
        addon_namespaces: addon_namespaces.to_vec(),
        exceptions: exceptions.to_vec(),
        ..inputs(spec, cluster)
    };
    let mut objects = Vec::new();
    for template in templates() {
        // A Constraint limited to app namespaces in a cluster without apps would match every
        // namespace: it is left out.
        let app_only = matches!(template.scope, Scope::AppWorkloads | Scope::AppObjects);
        if app_only && inputs.app_namespaces.is_empty() {
            continue;
        }
        // Parameters the cluster cannot give (the image allow-list without a registry in the
        // spec: DEP005 reports the images): no Constraint.
        if template.constraint_parameters.is_some_and(|parameters| parameters(&inputs).is_none()) {
            continue;
        }
        objects.push(to_value(&constraint_template(&stack, &template)));
        objects.extend(constraints(&stack, &template, &inputs).iter().map(to_value));
    }
    objects
}

fn to_value<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or_else(|error| panic!("internal error: a Gatekeeper object to JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_named_after_their_kind_and_carry_the_library() {
        let template = constraint_template("acme", &templates()[0]);
        assert_eq!(template.metadata.name, "enclavenonroot");
        assert_eq!(template.spec.targets[0].code[0].source.libs, vec![LIB.to_owned()]);
        let kinds: std::collections::BTreeSet<&str> = templates().iter().map(|t| t.kind).collect();
        assert_eq!(kinds.len(), templates().len(), "kinds are unique");
        for template in templates() {
            assert!(template.rego.contains("violation contains"), "{}", template.kind);
            let inputs = AdmissionInputs { registries: vec!["r.example/".to_owned()], ..AdmissionInputs::default() };
            for constraint in constraints("acme", &template, &inputs) {
                assert_eq!(template.parameters.is_some(), constraint.spec.parameters.is_some(), "{}", template.kind);
            }
        }
    }
}
