//! Add-ons: the controllers every rendered object relies on and the monitoring stack, installed
//! from the spec by the cluster's GitOps controller.
//!
//! Per cluster, one Argo CD `Application` per chart (or, with `gitops.controller: flux`, a
//! `HelmRepository` per chart repository and a `HelmRelease` per chart), each with the exact
//! version [`chart`] pins (or the spec's `addons.versions`) and values built from the spec as
//! typed structs ([`values`]): kube-prometheus-stack (Prometheus picking up every ServiceMonitor
//! and PrometheusRule, scraping through the mesh with its certificates; Alertmanager with the
//! configuration `enclave-monitor`'s `alerting` renders and the receivers' secrets mounted;
//! Grafana with the dashboards sidecar and Jaeger and Elasticsearch data sources),
//! prometheus-adapter on the rules ConfigMap `enclave-scaling` renders, metrics-server, the VPA,
//! external-secrets, sealed-secrets, Gatekeeper, Falco with the platform's rules, Istio (base,
//! istiod, CNI) where the mesh is on, the OpenTelemetry Collector exporting to Jaeger, and ECK
//! with the `Elasticsearch`, `Kibana` and Filebeat `Beat` of [`elastic`].
//!
//! Order ([`Waves`]): the add-ons' namespaces first, then each [`Step`] (an add-on, or objects
//! of the bundle an add-on reads: ECK's Elasticsearch, the adapter's rules) one wave after the
//! deepest of what it needs ([`step_needs`]; Flux's `dependsOn` is [`depends_on`]), the
//! platform's objects in wave 0; custom resources are applied without a dry run before their CRD
//! exists, Gatekeeper's Constraints in wave 1 (their kinds come from the templates).
//! [`root_application`] syncs the rendered folder itself, ignoring what the rollout driver owns
//! per app (the VirtualService weights, the active Service's selector, replica counts).
//! Every app may send spans to the collector ([`collector_labels`], [`collector_env`]).
//!
//! Node agents that need their host are [`exceptions`], each named with its reason.

pub mod elastic;
pub mod gitops;
pub mod guardrails;
pub mod values;

use std::collections::BTreeMap;

use enclave_core::exception::{Exception, HostAccess};
use enclave_core::names::MONITORING_NAMESPACE;
use enclave_core::spec::{Addon, ClusterSpec, GitOpsController};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use gitops::{
    Application, ApplicationSpec, Automated, Backoff, ChartSpec, ChartTemplate, DependsOn, Destination,
    DirectorySource, HelmRelease, HelmReleaseSpec, HelmRepository, HelmRepositorySpec, HelmSource, IgnoreDifference,
    Install, Remediation, Retry, Source, SourceRef, SyncPolicy, Upgrade,
};
use values::{resources, restricted_container, to_value};

/// The label naming the add-on an object installs.
pub const ADDON_LABEL: &str = "enclave.dev/addon";
/// Argo CD's namespace (its chart's and its Applications').
pub const ARGOCD_NAMESPACE: &str = "argocd";
/// Flux's namespace (its HelmRepositories' and HelmReleases').
pub const FLUX_NAMESPACE: &str = "flux-system";

/// A pinned chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chart {
    /// The Helm repository.
    pub repository: &'static str,
    /// The chart's name in it.
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// Why this chart (shown in the README's table).
    pub why: &'static str,
}

const PROMETHEUS_COMMUNITY: &str = "https://prometheus-community.github.io/helm-charts";
const ISTIO: &str = "https://istio-release.storage.googleapis.com/charts";

/// The chart of `addon`, at the version enclave was tested with.
pub fn chart(addon: Addon) -> Chart {
    match addon {
        Addon::ArgoCd => Chart {
            repository: "https://argoproj.github.io/argo-helm",
            name: "argo-cd",
            version: "10.1.1",
            why: "Argo CD v3.4, the GitOps controller; manages itself once bootstrapped",
        },
        Addon::Flux => Chart {
            repository: "https://fluxcd-community.github.io/helm-charts",
            name: "flux2",
            version: FLUX_CHART_VERSION,
            why: "Flux 2.8's controllers (helm, source, kustomize), when `gitops.controller: flux`",
        },
        Addon::KubePrometheusStack => Chart {
            repository: PROMETHEUS_COMMUNITY,
            name: "kube-prometheus-stack",
            version: "88.5.3",
            why: "the Prometheus Operator (ServiceMonitor, PrometheusRule), Prometheus, Alertmanager, Grafana, node exporter, kube-state-metrics",
        },
        Addon::PrometheusAdapter => Chart {
            repository: PROMETHEUS_COMMUNITY,
            name: "prometheus-adapter",
            version: "5.3.0",
            why: "the custom and external metrics API the HPAs scale on, from enclave-scaling's rules",
        },
        Addon::MetricsServer => Chart {
            repository: "https://kubernetes-sigs.github.io/metrics-server/",
            name: "metrics-server",
            version: "3.13.1",
            why: "the resource metrics API (CPU and memory HPAs, the VPA's recommender)",
        },
        Addon::VerticalPodAutoscaler => Chart {
            repository: "https://kubernetes.github.io/autoscaler",
            name: "vertical-pod-autoscaler",
            version: "0.11.0",
            why: "the Kubernetes project's own VPA chart (VPA 1.7), for the VerticalPodAutoscalers enclave-scaling renders",
        },
        Addon::ExternalSecrets => Chart {
            repository: "https://charts.external-secrets.io",
            name: "external-secrets",
            version: "2.9.0",
            why: "syncs Secrets Manager into Kubernetes Secrets (the secrets domain's ClusterSecretStores and ExternalSecrets)",
        },
        Addon::SealedSecrets => Chart {
            repository: "https://bitnami-labs.github.io/sealed-secrets",
            name: "sealed-secrets",
            version: "2.18.5",
            why: "decrypts the SealedSecrets `enclave seal` writes",
        },
        Addon::Gatekeeper => Chart {
            repository: "https://open-policy-agent.github.io/gatekeeper/charts",
            name: "gatekeeper",
            version: "3.23.0",
            why: "admission policy: the ConstraintTemplates and Constraints of enclave-access (the version whose CRDs judge them)",
        },
        Addon::Falco => Chart {
            repository: "https://falcosecurity.github.io/charts",
            name: "falco",
            version: "9.1.0",
            why: "Falco 0.44.1, runtime detection with the platform's rules (the version whose fields judge them)",
        },
        Addon::IstioBase => Chart {
            repository: ISTIO,
            name: "base",
            version: "1.30.3",
            why: "Istio's CRDs (the version whose CRDs judge the mesh objects)",
        },
        Addon::Istiod => Chart {
            repository: ISTIO,
            name: "istiod",
            version: "1.30.3",
            why: "Istio's control plane: certificates, policy, routing",
        },
        Addon::IstioCni => Chart {
            repository: ISTIO,
            name: "cni",
            version: "1.30.3",
            why: "Istio's CNI node agent: no privileged init container in any app pod",
        },
        Addon::OpentelemetryCollector => Chart {
            repository: "https://open-telemetry.github.io/opentelemetry-helm-charts",
            name: "opentelemetry-collector",
            version: "0.170.0",
            why: "receives OTLP traces from the apps and the mesh, samples, exports to Jaeger",
        },
        Addon::Jaeger => Chart {
            repository: "https://jaegertracing.github.io/helm-charts",
            name: "jaeger",
            version: "4.11.1",
            why: "Jaeger v2: stores traces in Elasticsearch, serves them to Grafana",
        },
        Addon::EckOperator => Chart {
            repository: "https://helm.elastic.co",
            name: "eck-operator",
            version: "3.5.0",
            why: "Elastic Cloud on Kubernetes: the Elasticsearch, Kibana and Filebeat resources",
        },
    }
}

/// The flux2 chart's version.
const FLUX_CHART_VERSION: &str = "2.18.3";

/// The add-ons `cluster` gets: every one the spec calls for (the mesh's only with `mesh:`, one
/// GitOps controller), less `addons.disabled`.
pub fn installed(cluster: &ClusterSpec) -> Vec<Addon> {
    let controller = cluster.addons.gitops.controller;
    Addon::ALL
        .into_iter()
        .filter(|addon| match addon {
            Addon::ArgoCd => controller == GitOpsController::Argocd,
            Addon::Flux => controller == GitOpsController::Flux,
            Addon::IstioBase | Addon::Istiod | Addon::IstioCni => cluster.mesh.is_some(),
            Addon::KubePrometheusStack
            | Addon::PrometheusAdapter
            | Addon::MetricsServer
            | Addon::VerticalPodAutoscaler
            | Addon::ExternalSecrets
            | Addon::SealedSecrets
            | Addon::Gatekeeper
            | Addon::Falco
            | Addon::OpentelemetryCollector
            | Addon::Jaeger
            | Addon::EckOperator => true,
        })
        .filter(|addon| !cluster.addons.disabled.contains(addon))
        .collect()
}

/// The chart version `cluster` installs `addon` at: the spec's, else the pinned one.
pub fn version(cluster: &ClusterSpec, addon: Addon) -> String {
    cluster.addons.versions.get(&addon).cloned().unwrap_or_else(|| chart(addon).version.to_owned())
}

/// Whether `version` is one exact release (`MAJOR.MINOR.PATCH`, an optional pre-release), never
/// a range, a wildcard or `latest`.
pub fn exact(version: &str) -> bool {
    let (core, pre) = version.split_once('-').unwrap_or((version, ""));
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers.iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && pre.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !(version.contains('-') && pre.is_empty())
}

/// The add-ons that must run for objects of API `group` to do anything: `None` for Kubernetes'
/// own groups, an empty list for a group no add-on serves.
pub fn operators(group: &str) -> Option<&'static [Addon]> {
    const BUILT_IN: &[&str] = &[
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
        "certificates.k8s.io",
        "apiregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "events.k8s.io",
        "resource.k8s.io",
    ];
    if BUILT_IN.contains(&group) {
        return None;
    }
    Some(match group {
        "argoproj.io" => &[Addon::ArgoCd],
        "helm.toolkit.fluxcd.io" | "source.toolkit.fluxcd.io" | "kustomize.toolkit.fluxcd.io" => &[Addon::Flux],
        "monitoring.coreos.com" => &[Addon::KubePrometheusStack],
        "autoscaling.k8s.io" => &[Addon::VerticalPodAutoscaler],
        "external-secrets.io" | "generators.external-secrets.io" => &[Addon::ExternalSecrets],
        "bitnami.com" => &[Addon::SealedSecrets],
        "templates.gatekeeper.sh"
        | "constraints.gatekeeper.sh"
        | "config.gatekeeper.sh"
        | "mutations.gatekeeper.sh" => &[Addon::Gatekeeper],
        "networking.istio.io" | "security.istio.io" | "telemetry.istio.io" | "extensions.istio.io" => {
            &[Addon::IstioBase, Addon::Istiod]
        }
        "elasticsearch.k8s.elastic.co" | "kibana.k8s.elastic.co" | "beat.k8s.elastic.co" => &[Addon::EckOperator],
        _ => &[],
    })
}

/// A step of a cluster's installation: an add-on, or objects of the bundle an add-on needs
/// before it can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// An add-on's chart.
    Addon(Addon),
    /// ECK's `Elasticsearch`, `Kibana` and Filebeat `Beat`: ECK makes the `elastic` user's
    /// Secret and the HTTP certificate authority Grafana and Jaeger read.
    Elastic,
    /// prometheus-adapter's rules ConfigMap (`enclave-scaling`'s), which its pod mounts.
    AdapterRules,
}

/// What `step` needs running (or existing) first, among what `installed` holds.
pub fn step_needs(step: Step, installed: &[Addon]) -> Vec<Step> {
    let needs: &[Step] = match step {
        Step::Addon(Addon::Istiod | Addon::IstioCni) => &[Step::Addon(Addon::IstioBase)],
        // Prometheus's sidecar is injected only once istiod's webhook exists; Grafana reads the
        // Elasticsearch password ECK makes.
        Step::Addon(Addon::KubePrometheusStack) => &[Step::Addon(Addon::Istiod), Step::Elastic],
        Step::Addon(Addon::PrometheusAdapter) => &[Step::Addon(Addon::KubePrometheusStack), Step::AdapterRules],
        Step::Addon(Addon::Jaeger) => &[Step::Elastic],
        Step::Addon(Addon::OpentelemetryCollector) => &[Step::Addon(Addon::Jaeger)],
        Step::Elastic => &[Step::Addon(Addon::EckOperator)],
        Step::AdapterRules
        | Step::Addon(
            Addon::ArgoCd
            | Addon::Flux
            | Addon::MetricsServer
            | Addon::VerticalPodAutoscaler
            | Addon::ExternalSecrets
            | Addon::SealedSecrets
            | Addon::Gatekeeper
            | Addon::Falco
            | Addon::IstioBase
            | Addon::EckOperator,
        ) => &[],
    };
    needs
        .iter()
        .copied()
        .filter(|needed| match needed {
            Step::Addon(addon) => installed.contains(addon),
            Step::Elastic | Step::AdapterRules => true,
        })
        .collect()
}

/// The add-ons `addon` waits for (Flux's `dependsOn`): its needs, through the bundle's objects
/// to the add-ons that make them.
pub fn depends_on(addon: Addon, installed: &[Addon]) -> Vec<Addon> {
    let mut found = Vec::new();
    let mut pending = step_needs(Step::Addon(addon), installed);
    while let Some(step) = pending.pop() {
        match step {
            Step::Addon(needed) => found.push(needed),
            Step::Elastic | Step::AdapterRules => pending.extend(step_needs(step, installed)),
        }
    }
    found.sort();
    found.dedup();
    found
}

fn depth(step: Step, installed: &[Addon]) -> i32 {
    step_needs(step, installed).into_iter().map(|needed| 1 + depth(needed, installed)).max().unwrap_or(0)
}

/// The Argo CD sync waves of a cluster: each step one wave after the deepest of its needs, the
/// add-ons' namespaces before all of them, the platform's own objects in wave 0 (after every
/// add-on is healthy) and Gatekeeper's Constraints in wave 1 (after their templates).
#[derive(Clone, Debug)]
pub struct Waves {
    installed: Vec<Addon>,
    deepest: i32,
    adapter_rules: String,
}

impl Waves {
    /// The waves of `cluster`, whose prometheus-adapter rules ConfigMap is `adapter_rules`.
    pub fn new(cluster: &ClusterSpec, adapter_rules: &str) -> Self {
        let installed = installed(cluster);
        let steps = installed.iter().map(|a| Step::Addon(*a)).chain([Step::Elastic, Step::AdapterRules]);
        let deepest = steps.map(|step| depth(step, &installed)).max().unwrap_or(0);
        Waves { installed, deepest, adapter_rules: adapter_rules.to_owned() }
    }

    /// The wave of `step`.
    pub fn of(&self, step: Step) -> i32 {
        depth(step, &self.installed) - self.deepest - 1
    }

    /// The wave of the add-ons' namespaces: before everything.
    pub fn namespaces(&self) -> i32 {
        -self.deepest - 2
    }

    /// The annotations Argo CD needs on a rendered object: its wave when an add-on needs it
    /// (ECK's resources, prometheus-adapter's rules), custom resources applied without a dry
    /// run while their CRD is being installed, Gatekeeper's Constraints in wave 1.
    pub fn annotations(&self, group: &str, kind: &str, namespace: &str, name: &str) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::new();
        let custom = operators(group).is_some_and(|operators| !operators.contains(&Addon::ArgoCd));
        if custom {
            annotations.insert(gitops::SYNC_OPTIONS.to_owned(), "SkipDryRunOnMissingResource=true".to_owned());
        }
        let step = match (group, kind) {
            ("elasticsearch.k8s.elastic.co" | "kibana.k8s.elastic.co" | "beat.k8s.elastic.co", _) => {
                Some(Step::Elastic)
            }
            ("", "ConfigMap") if namespace == MONITORING_NAMESPACE && name == self.adapter_rules => {
                Some(Step::AdapterRules)
            }
            _ => None,
        };
        if let Some(step) = step {
            annotations.extend(gitops::wave(self.of(step)));
        }
        if group == "constraints.gatekeeper.sh" {
            annotations.extend(gitops::wave(1));
        }
        annotations
    }
}

/// The namespace `addon`'s chart installs into.
pub fn namespace(cluster: &ClusterSpec, addon: Addon) -> String {
    match addon.namespaces().first() {
        Some(namespace) => (*namespace).to_owned(),
        None => cluster.mesh.as_ref().map(|mesh| mesh.root_namespace.to_string()).unwrap_or_default(),
    }
}

/// The node agents whose host access is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exempt {
    Falco,
    Filebeat,
    NodeExporter,
    IstioCni,
}

impl Exempt {
    /// Its add-on, workload and namespace (`None`: the mesh's root).
    fn place(self) -> (Addon, &'static str, Option<&'static str>) {
        match self {
            Exempt::Falco => (Addon::Falco, "falco", Some("falco")),
            Exempt::Filebeat => (Addon::EckOperator, "filebeat", Some(elastic::FILEBEAT_NAMESPACE)),
            Exempt::NodeExporter => (Addon::KubePrometheusStack, "prometheus-node-exporter", Some("node-exporter")),
            Exempt::IstioCni => (Addon::IstioCni, "istio-cni-node", None),
        }
    }

    /// What it needs of the host, and why.
    fn needs(self) -> (&'static [HostAccess], &'static str) {
        match self {
            Exempt::Falco => (
                &[HostAccess::RunAsRoot, HostAccess::AddedCapabilities, HostAccess::HostPath, HostAccess::WritableRoot],
                "the modern eBPF probe loads kernel programs (BPF, PERFMON, SYS_RESOURCE, SYS_PTRACE) and reads the host's /proc and /etc as root",
            ),
            Exempt::Filebeat => (
                &[HostAccess::RunAsRoot, HostAccess::HostPath],
                "reads the nodes' container log files (root's) from the host, and keeps its read positions there",
            ),
            Exempt::NodeExporter => (
                &[HostAccess::HostNetwork, HostAccess::HostPid, HostAccess::HostPath],
                "reports the node's own CPU, memory, disks and network from the host's namespaces and /proc and /sys (read-only)",
            ),
            Exempt::IstioCni => (
                &[
                    HostAccess::Privileged,
                    HostAccess::RunAsRoot,
                    HostAccess::HostNetwork,
                    HostAccess::HostPath,
                    HostAccess::WritableRoot,
                ],
                "installs the CNI plugin on every node and sets up each pod's traffic redirection (instead of a privileged init container in every app pod)",
            ),
        }
    }

    fn exception(self, cluster: &ClusterSpec) -> Exception {
        let (addon, workload, namespace) = self.place();
        let (access, reason) = self.needs();
        let namespace = namespace.map_or_else(|| self::namespace(cluster, addon), ToOwned::to_owned);
        Exception { addon, workload, namespace, access, reason }
    }
}

/// The value of `enclave check`'s skip annotation for `exempt`'s pods.
pub(crate) fn exception_skips(exempt: Exempt) -> String {
    let (access, reason) = exempt.needs();
    enclave_core::exception::check_skips(access, reason)
}

/// The accepted exceptions of `cluster`'s add-ons.
pub fn exceptions(cluster: &ClusterSpec) -> Vec<Exception> {
    let installed = installed(cluster);
    [Exempt::IstioCni, Exempt::NodeExporter, Exempt::Falco, Exempt::Filebeat]
        .into_iter()
        .map(|exempt| exempt.exception(cluster))
        .filter(|exception| installed.contains(&exception.addon))
        .collect()
}

/// The namespaces the add-ons of `cluster` run in (the mesh's root included).
pub fn namespaces(cluster: &ClusterSpec) -> Vec<String> {
    let mut names: Vec<String> = installed(cluster)
        .into_iter()
        .flat_map(|addon| {
            let own = addon.namespaces().iter().map(|n| (*n).to_owned());
            own.chain(addon.namespaces().is_empty().then(|| namespace(cluster, addon)))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What the binary hands over from the other domains.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// The stack's name.
    pub stack: &'a str,
    /// The cluster.
    pub cluster: &'a ClusterSpec,
    /// Alertmanager's configuration (`enclave_monitor::alerting::config`).
    pub alertmanager_config: serde_json::Value,
    /// The Secrets Alertmanager mounts (the receivers' credentials).
    pub alertmanager_secrets: Vec<String>,
    /// The platform's Falco rules file (`enclave_access::runtime`), as text.
    pub falco_rules: String,
    /// Its file name.
    pub falco_rules_file: String,
    /// Each app's Filebeat inputs (`enclave_monitor::render::filebeat_input`).
    pub filebeat_inputs: Vec<serde_json::Value>,
    /// The ConfigMap of prometheus-adapter's rules (`enclave-scaling`), in the monitoring
    /// namespace.
    pub adapter_rules: String,
    /// Rendered files that are not objects (rule files, the Falco rules): the root leaves them out.
    pub artifacts: Vec<String>,
    /// The stack's registry host (`<account>.dkr.ecr.<region>.amazonaws.com`), if the spec has one.
    pub registry: Option<String>,
    /// The cluster's apps, whose rollouts the root Application leaves to the driver.
    pub apps: Vec<RolledOut>,
}

/// Labels of every add-on object.
pub(crate) fn labels(stack: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), name.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "enclave".to_owned()),
    ])
}

fn addon_meta(stack: &str, addon: Addon, namespace: &str, annotations: BTreeMap<String, String>) -> ObjectMeta {
    let mut labels = labels(stack, addon.as_str());
    labels.insert(ADDON_LABEL.to_owned(), addon.as_str().to_owned());
    ObjectMeta {
        name: Some(addon.as_str().to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    }
}

fn sync_policy(options: &[&str]) -> SyncPolicy {
    SyncPolicy {
        automated: Automated { prune: true, self_heal: true },
        sync_options: options.iter().map(|o| (*o).to_owned()).collect(),
        retry: Retry {
            limit: 5,
            backoff: Backoff { duration: "10s".to_owned(), factor: 2, max_duration: "3m".to_owned() },
        },
    }
}

/// Every add-on object of the cluster: namespaces, one Application (or HelmRelease) per add-on,
/// the Elasticsearch, Kibana and Filebeat resources, Filebeat's RBAC, the mesh's tracing.
pub fn render_cluster(inputs: &Inputs<'_>) -> Vec<serde_json::Value> {
    let cluster = inputs.cluster;
    let stack = inputs.stack;
    let controller = cluster.addons.gitops.controller;
    let exceptions = exceptions(cluster);
    let waves = Waves::new(cluster, &inputs.adapter_rules);
    let mut objects = Vec::new();
    for name in namespaces(cluster) {
        let privileged = exceptions.iter().any(|e| e.namespace == name);
        let wave = (controller == GitOpsController::Argocd).then(|| waves.namespaces());
        objects.push(to_value(&addon_namespace(stack, &name, privileged, wave)));
    }
    let installed = installed(cluster);
    let mut repositories = BTreeMap::new();
    for addon in &installed {
        let values = values(*addon, inputs);
        match controller {
            GitOpsController::Argocd => {
                let wave = waves.of(Step::Addon(*addon));
                objects.push(to_value(&application(inputs, *addon, wave, values)));
            }
            GitOpsController::Flux => {
                let chart = chart(*addon);
                let repository = repository_name(chart.repository);
                repositories
                    .entry(repository.clone())
                    .or_insert_with(|| helm_repository(stack, &repository, chart.repository));
                objects.push(to_value(&helm_release(inputs, *addon, &repository, &installed, values)));
            }
        }
    }
    objects.extend(repositories.into_values().map(|r| to_value(&r)));
    let sizing = &cluster.addons.elasticsearch;
    objects.push(to_value(&elastic::elasticsearch(stack, sizing)));
    objects.push(to_value(&elastic::kibana(stack, sizing)));
    objects.push(to_value(&elastic::filebeat(stack, &inputs.filebeat_inputs)));
    let (account, role, binding) = elastic::filebeat_rbac(stack);
    objects.extend([to_value(&account), to_value(&role), to_value(&binding)]);
    if let Some(mesh) = &cluster.mesh {
        objects.push(to_value(&mesh_tracing(
            stack,
            mesh.root_namespace.as_str(),
            cluster.addons.tracing.sampling_percent,
        )));
    }
    if let Some(root) = root_application(inputs) {
        objects.push(to_value(&root));
    }
    objects
}

fn addon_namespace(stack: &str, name: &str, privileged: bool, wave: Option<i32>) -> Namespace {
    let mut labels = labels(stack, name);
    labels.remove("app.kubernetes.io/name");
    // Node agents' namespaces admit what they need (and nothing else runs there); the rest
    // enforce `baseline` and warn and audit at `restricted`, the bar the charts are set to meet.
    let enforce = if privileged { "privileged" } else { "baseline" };
    labels.insert("pod-security.kubernetes.io/enforce".to_owned(), enforce.to_owned());
    for mode in ["audit", "warn"] {
        labels.insert(format!("pod-security.kubernetes.io/{mode}"), "restricted".to_owned());
    }
    let annotations = wave.map(gitops::wave);
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            annotations,
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn application(inputs: &Inputs<'_>, addon: Addon, wave: i32, values: serde_json::Value) -> Application {
    let chart = chart(addon);
    // Server-side apply: some charts' CRDs (kube-prometheus-stack's) are larger than client-side
    // apply's last-applied annotation allows. What the controllers write into their own webhooks
    // and CRDs (certificate authorities, istiod's failure policy) is theirs: never reverted.
    let options = ["ServerSideApply=true", "RespectIgnoreDifferences=true"];
    Application {
        api_version: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: addon_meta(inputs.stack, addon, ARGOCD_NAMESPACE, gitops::wave(wave)),
        spec: ApplicationSpec {
            project: "default".to_owned(),
            source: Source {
                repo_url: chart.repository.to_owned(),
                chart: Some(chart.name.to_owned()),
                target_revision: version(inputs.cluster, addon),
                path: None,
                helm: Some(HelmSource { release_name: addon.as_str().to_owned(), values_object: values }),
                directory: None,
            },
            destination: Destination {
                server: "https://kubernetes.default.svc".to_owned(),
                namespace: namespace(inputs.cluster, addon),
            },
            sync_policy: sync_policy(&options),
            ignore_differences: controller_owned(),
        },
    }
}

/// Fields the add-ons' controllers write into their own objects: the certificate authorities of
/// their webhooks and CRD conversion webhooks, and the failure policy istiod switches once its
/// webhook serves.
fn controller_owned() -> Vec<IgnoreDifference> {
    let ignore = |group: &str, kind: &str, paths: &[&str]| IgnoreDifference {
        group: group.to_owned(),
        kind: kind.to_owned(),
        name: None,
        namespace: None,
        jq_path_expressions: paths.iter().map(|p| (*p).to_owned()).collect(),
    };
    vec![
        ignore("admissionregistration.k8s.io", "MutatingWebhookConfiguration", &[".webhooks[]?.clientConfig.caBundle"]),
        ignore(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            &[".webhooks[]?.clientConfig.caBundle", ".webhooks[]?.failurePolicy"],
        ),
        ignore("apiextensions.k8s.io", "CustomResourceDefinition", &[".spec.conversion.webhook.clientConfig.caBundle"]),
    ]
}

fn repository_name(url: &str) -> String {
    let host = url.trim_start_matches("https://").split('/').next().unwrap_or(url);
    let path = url.trim_start_matches("https://").split('/').nth(1).filter(|p| !p.is_empty());
    let name = match path {
        Some(path) => format!("{}-{path}", host.split('.').next().unwrap_or(host)),
        None => host.split('.').take(2).collect::<Vec<_>>().join("-"),
    };
    name.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-")
}

fn helm_repository(stack: &str, name: &str, url: &str) -> HelmRepository {
    HelmRepository {
        api_version: "source.toolkit.fluxcd.io/v1",
        kind: "HelmRepository",
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(FLUX_NAMESPACE.to_owned()),
            labels: Some(labels(stack, name)),
            ..ObjectMeta::default()
        },
        spec: HelmRepositorySpec { url: url.to_owned(), interval: "1h".to_owned(), type_: None },
    }
}

fn helm_release(
    inputs: &Inputs<'_>,
    addon: Addon,
    repository: &str,
    installed: &[Addon],
    values: serde_json::Value,
) -> HelmRelease {
    let chart = chart(addon);
    HelmRelease {
        api_version: "helm.toolkit.fluxcd.io/v2",
        kind: "HelmRelease",
        metadata: addon_meta(inputs.stack, addon, FLUX_NAMESPACE, BTreeMap::new()),
        spec: HelmReleaseSpec {
            interval: "10m".to_owned(),
            release_name: addon.as_str().to_owned(),
            target_namespace: namespace(inputs.cluster, addon),
            chart: ChartTemplate {
                spec: ChartSpec {
                    chart: chart.name.to_owned(),
                    version: version(inputs.cluster, addon),
                    source_ref: SourceRef { kind: "HelmRepository", name: repository.to_owned() },
                },
            },
            depends_on: depends_on(addon, installed)
                .into_iter()
                .map(|needed| DependsOn { name: needed.as_str().to_owned() })
                .collect(),
            // Objects of the folder an add-on needs (Elasticsearch's password, the adapter's
            // rules) may arrive after its first attempt: retried, not left failed.
            install: Install { crds: "CreateReplace", remediation: Remediation { retries: 5 } },
            upgrade: Upgrade { crds: "CreateReplace", remediation: Remediation { retries: 5 } },
            values,
        },
    }
}

/// An app the rollout driver switches, as the root Application must know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolledOut {
    /// The app's name: its Deployment, Service and VirtualService.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Whether the mesh switches it (VirtualService weights) rather than its Service's selector.
    pub mesh: bool,
}

/// What Argo CD must neither report nor revert, per app: the rollout driver's switches (the
/// VirtualService's weights in a mesh, the active Service's revision selector) and the replica
/// count of the app's Deployment (the driver scales it to zero once a revision serves; an HPA
/// owns it too). Argo CD copies the live values into what it applies
/// (`RespectIgnoreDifferences`), so a sync never sends traffic to a scaled-down slot. For a
/// VirtualService, a custom resource, it copies the whole `http` list: a change of an app's
/// routes, timeout or retries in Git shows OutOfSync and is applied by a manual sync of that
/// VirtualService, once its weights in Git name the serving slot.
pub fn ignore_differences(apps: &[RolledOut]) -> Vec<IgnoreDifference> {
    let mut ignored = Vec::new();
    for app in apps {
        let ignore = |group: &str, kind: &str, paths: &[&str]| IgnoreDifference {
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: Some(app.name.clone()),
            namespace: Some(app.namespace.clone()),
            jq_path_expressions: paths.iter().map(|p| (*p).to_owned()).collect(),
        };
        ignored.push(ignore(
            "apps",
            "Deployment",
            &[".spec.replicas", ".metadata.annotations[\"enclave.dev/replicas\"]"],
        ));
        ignored.push(ignore("", "Service", &[".spec.selector[\"enclave.dev/revision\"]"]));
        if app.mesh {
            ignored.push(ignore("networking.istio.io", "VirtualService", &[".spec.http[].route[].weight"]));
        }
    }
    ignored
}

/// The Application syncing the cluster's rendered folder (`gitops.repository`, Argo CD only):
/// every object file (`*.yaml`), not the rule files, dashboards and Falco rules beside them.
pub fn root_application(inputs: &Inputs<'_>) -> Option<Application> {
    let gitops = &inputs.cluster.addons.gitops;
    let repository = gitops.repository.as_ref()?;
    if gitops.controller != GitOpsController::Argocd {
        return None;
    }
    let excluded: Vec<&str> =
        inputs.artifacts.iter().map(String::as_str).filter(|path| path.ends_with(".yaml")).collect();
    let exclude = match excluded.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        many => Some(format!("{{{}}}", many.join(","))),
    };
    let name = format!("{}-platform", inputs.cluster.name);
    let mut labels = labels(inputs.stack, &name);
    labels.insert(ADDON_LABEL.to_owned(), "root".to_owned());
    Some(Application {
        api_version: "argoproj.io/v1alpha1",
        kind: "Application",
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(ARGOCD_NAMESPACE.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: ApplicationSpec {
            project: "default".to_owned(),
            source: Source {
                repo_url: repository.clone(),
                chart: None,
                target_revision: gitops.revision.clone(),
                path: Some(gitops.path.clone().unwrap_or_else(|| inputs.cluster.name.to_string())),
                helm: None,
                directory: Some(DirectorySource { recurse: true, include: "*.yaml".to_owned(), exclude }),
            },
            destination: Destination {
                server: "https://kubernetes.default.svc".to_owned(),
                namespace: "default".to_owned(),
            },
            sync_policy: sync_policy(&["ServerSideApply=true", "RespectIgnoreDifferences=true"]),
            ignore_differences: ignore_differences(&inputs.apps),
        },
    })
}

/// `telemetry.istio.io/v1` Telemetry: the mesh's spans to the collector, sampled as the spec says.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Telemetry {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: serde_json::Value,
}

/// The name of Istio's extension provider for the collector.
const OTEL_PROVIDER: &str = "otel";

fn mesh_tracing(stack: &str, root: &str, sampling: f64) -> Telemetry {
    Telemetry {
        api_version: "telemetry.istio.io/v1",
        kind: "Telemetry",
        metadata: ObjectMeta {
            name: Some("mesh-default".to_owned()),
            namespace: Some(root.to_owned()),
            labels: Some(labels(stack, "mesh-default")),
            ..ObjectMeta::default()
        },
        spec: serde_json::json!({
            "tracing": [{"providers": [{"name": OTEL_PROVIDER}], "randomSamplingPercentage": sampling}],
        }),
    }
}

/// Grafana's admin user.
const GRAFANA_ADMIN: &str = "admin";
/// Where Grafana reads Elasticsearch's certificate authority.
const GRAFANA_ES_CA: &str = "/etc/es-ca";

/// The collector's Service (release `opentelemetry-collector`).
pub const COLLECTOR_HOST: &str = "opentelemetry-collector.monitoring.svc.cluster.local";
/// OTLP over gRPC (the sidecars' spans).
pub const OTLP_GRPC_PORT: u16 = 4317;
/// OTLP over HTTP (the apps' spans, `enclave-monitor`'s `otlp` feature).
pub const OTLP_HTTP_PORT: u16 = 4318;

/// The labels of the collector's pods (its chart's selector labels).
pub fn collector_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), "opentelemetry-collector".to_owned())])
}

/// What an app's container is told about the collector (the OpenTelemetry SDKs' variables).
pub fn collector_env(app: &str) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let var = |name: &str, value: String| k8s_openapi::api::core::v1::EnvVar {
        name: name.to_owned(),
        value: Some(value),
        value_from: None,
    };
    vec![
        var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{COLLECTOR_HOST}:{OTLP_HTTP_PORT}")),
        var("OTEL_SERVICE_NAME", app.to_owned()),
    ]
}
/// Prometheus's Service (`fullnameOverride: kube-prometheus-stack`).
const PROMETHEUS_URL: &str = "http://kube-prometheus-stack-prometheus.monitoring.svc";
/// Jaeger's Service (release `jaeger`).
const JAEGER_HOST: &str = "jaeger.monitoring.svc";

fn values(addon: Addon, inputs: &Inputs<'_>) -> serde_json::Value {
    let cluster = inputs.cluster;
    match addon {
        Addon::ArgoCd => to_value(&values::ArgoCd {
            configs: values::ArgoConfigs {
                cm: BTreeMap::from([
                    (
                        "resource.customizations.health.argoproj.io_Application".to_owned(),
                        values::APPLICATION_HEALTH.to_owned(),
                    ),
                    (
                        "resource.customizations.health.templates.gatekeeper.sh_ConstraintTemplate".to_owned(),
                        values::CONSTRAINT_TEMPLATE_HEALTH.to_owned(),
                    ),
                ]),
            },
            dex: values::Enabled { enabled: false },
            controller: values::Workload { resources: resources("250m", "512Mi", "1", "1Gi") },
            server: values::Workload { resources: resources("50m", "128Mi", "500m", "256Mi") },
            repo_server: values::Workload { resources: resources("100m", "256Mi", "1", "512Mi") },
            redis: values::Workload { resources: resources("50m", "64Mi", "250m", "128Mi") },
        }),
        Addon::Flux => to_value(&values::Flux {
            helm_controller: values::Workload { resources: resources("100m", "128Mi", "1", "1Gi") },
            source_controller: values::Workload { resources: resources("50m", "64Mi", "1", "1Gi") },
            kustomize_controller: values::Workload { resources: resources("100m", "64Mi", "1", "1Gi") },
            image_automation_controller: values::Create { create: false },
            image_reflection_controller: values::Create { create: false },
            notification_controller: values::Create { create: false },
        }),
        Addon::KubePrometheusStack => kube_prometheus_stack(inputs),
        Addon::PrometheusAdapter => to_value(&values::PrometheusAdapter {
            prometheus: values::AdapterPrometheus { url: PROMETHEUS_URL.to_owned(), port: 9090 },
            rules: values::AdapterRules { default: false, existing: inputs.adapter_rules.clone() },
            resources: resources("100m", "128Mi", "500m", "256Mi"),
        }),
        Addon::MetricsServer => to_value(&values::Plain {
            resources: resources("100m", "200Mi", "500m", "400Mi"),
            security_context: Some(restricted_container()),
        }),
        Addon::VerticalPodAutoscaler => {
            let component = |cpu: &str, memory: &str| values::VpaComponent {
                enabled: true,
                resources: resources(cpu, memory, "500m", "1Gi"),
            };
            to_value(&values::VerticalPodAutoscaler {
                recommender: component("50m", "500Mi"),
                updater: component("50m", "500Mi"),
                admission_controller: component("50m", "200Mi"),
                container_security_context: restricted_container(),
            })
        }
        Addon::ExternalSecrets => to_value(&values::ExternalSecrets {
            install_crds: true,
            service_account: values::ServiceAccount {
                create: true,
                name: "external-secrets".to_owned(),
                annotations: BTreeMap::new(),
            },
            resources: resources("50m", "128Mi", "500m", "256Mi"),
            webhook: values::Workload { resources: resources("20m", "64Mi", "200m", "128Mi") },
            cert_controller: values::Workload { resources: resources("20m", "64Mi", "200m", "128Mi") },
        }),
        Addon::SealedSecrets => to_value(&values::SealedSecrets {
            fullname_override: "sealed-secrets-controller".to_owned(),
            resources: resources("50m", "64Mi", "500m", "256Mi"),
        }),
        Addon::Gatekeeper => to_value(&values::Gatekeeper {
            replicas: 3,
            controller_manager: values::Workload { resources: resources("100m", "512Mi", "1", "512Mi") },
            audit: values::Workload { resources: resources("100m", "512Mi", "1", "512Mi") },
        }),
        Addon::Falco => {
            let file = inputs.falco_rules_file.rsplit('/').next().unwrap_or(&inputs.falco_rules_file).to_owned();
            to_value(&values::Falco {
                driver: values::FalcoDriver {
                    kind: "modern_ebpf".to_owned(),
                    modern_ebpf: values::ModernEbpf { least_privileged: true },
                },
                custom_rules: BTreeMap::from([(file, inputs.falco_rules.clone())]),
                falco: values::FalcoConfig {
                    rules_files: vec![
                        "/etc/falco/falco_rules.yaml".to_owned(),
                        "/etc/falco/falco_rules.local.yaml".to_owned(),
                        "/etc/falco/rules.d".to_owned(),
                    ],
                    json_output: true,
                },
                resources: resources("100m", "512Mi", "1", "1Gi"),
                pod_annotations: BTreeMap::from([(
                    enclave_core::exception::CHECK_SKIP_ANNOTATION.to_owned(),
                    exception_skips(Exempt::Falco),
                )]),
            })
        }
        Addon::IstioBase => serde_json::json!({}),
        Addon::Istiod => {
            let mesh = cluster.mesh.as_ref();
            let trust_domain = mesh.map(|m| m.trust_domain.clone()).unwrap_or_default();
            to_value(&values::Istiod {
                global: istio_global(inputs),
                mesh_config: serde_json::json!({
                    "trustDomain": trust_domain,
                    "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
                    "extensionProviders": [{
                        "name": OTEL_PROVIDER,
                        "opentelemetry": {"service": COLLECTOR_HOST, "port": OTLP_GRPC_PORT},
                    }],
                }),
                cni: values::Enabled { enabled: true },
                resources: resources("500m", "2Gi", "2", "2Gi"),
            })
        }
        Addon::IstioCni => to_value(&values::IstioCni {
            global: istio_global(inputs),
            resources: resources("100m", "100Mi", "500m", "200Mi"),
        }),
        Addon::OpentelemetryCollector => to_value(&values::OpentelemetryCollector {
            mode: "deployment".to_owned(),
            image: values::Image {
                repository: "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib"
                    .to_owned(),
            },
            // In a mesh the sidecars sample (Istio's Telemetry) and the apps follow their
            // decision: sampling again here would keep the square of the share.
            config: collector_config(cluster.mesh.is_none().then_some(cluster.addons.tracing.sampling_percent)),
            resources: resources("100m", "256Mi", "1", "512Mi"),
            security_context: restricted_container(),
        }),
        Addon::Jaeger => to_value(&values::Jaeger {
            jaeger: values::JaegerDeployment {
                extra_env: vec![values::secret_env("ES_PASSWORD", &elastic::elastic_user_secret(), "elastic")],
                extra_volumes: vec![k8s_openapi::api::core::v1::Volume {
                    name: "es-ca".to_owned(),
                    secret: Some(k8s_openapi::api::core::v1::SecretVolumeSource {
                        secret_name: Some(elastic::http_ca_secret()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                extra_volume_mounts: vec![k8s_openapi::api::core::v1::VolumeMount {
                    name: "es-ca".to_owned(),
                    mount_path: ES_CA_DIR.to_owned(),
                    read_only: Some(true),
                    ..Default::default()
                }],
                resources: resources("100m", "256Mi", "1", "1Gi"),
                security_context: restricted_container(),
            },
            userconfig: jaeger_config(),
        }),
        Addon::EckOperator => {
            to_value(&values::EckOperator { install_crds: true, resources: resources("100m", "150Mi", "1", "1Gi") })
        }
    }
}

fn kube_prometheus_stack(inputs: &Inputs<'_>) -> serde_json::Value {
    let cluster = inputs.cluster;
    let sizing = &cluster.addons.prometheus;
    let storage = sizing.storage.to_string();
    // Prometheus stops keeping data at 85% of its volume, so the volume never fills (its size
    // units are powers of two: `MB` is 2^20 bytes).
    let bytes = sizing.storage.milli() / 1000;
    let retention_size = format!("{}MB", bytes * 85 / 100 / (1 << 20));
    let (pod_metadata, volumes, volume_mounts) = match cluster.mesh {
        Some(_) => {
            let (metadata, volumes, mounts) = values::mesh_scraper();
            (Some(metadata), volumes, mounts)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    let elastic_password = "ES_PASSWORD";
    to_value(&values::KubePrometheusStack {
        fullname_override: "kube-prometheus-stack".to_owned(),
        crds: values::Enabled { enabled: true },
        default_rules: values::DefaultRules { create: true },
        prometheus: values::Prometheus {
            service_account: values::prometheus_service_account(),
            prometheus_spec: values::PrometheusSpec {
                replicas: sizing.replicas,
                retention: sizing.retention.to_string(),
                retention_size,
                storage_spec: values::StorageSpec {
                    volume_claim_template: values::ClaimTemplate {
                        spec: PersistentVolumeClaimSpec {
                            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                            resources: Some(VolumeResourceRequirements {
                                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(storage))])),
                                limits: None,
                            }),
                            storage_class_name: sizing.storage_class.as_ref().map(ToString::to_string),
                            ..PersistentVolumeClaimSpec::default()
                        },
                    },
                },
                service_monitor_selector_nil_uses_helm_values: false,
                pod_monitor_selector_nil_uses_helm_values: false,
                rule_selector_nil_uses_helm_values: false,
                resources: resources("500m", "2Gi", "2", "4Gi"),
                pod_metadata,
                volumes,
                volume_mounts,
            },
        },
        alertmanager: values::Alertmanager {
            config: inputs.alertmanager_config.clone(),
            alertmanager_spec: values::AlertmanagerSpec {
                replicas: 2,
                secrets: inputs.alertmanager_secrets.clone(),
                resources: resources("50m", "64Mi", "250m", "256Mi"),
            },
        },
        grafana: values::Grafana {
            admin: values::GrafanaAdmin {
                existing_secret: format!(
                    "{}-{}",
                    enclave_core::names::MONITORING_SECRETS_OWNER,
                    enclave_core::names::GRAFANA_ADMIN_SECRET
                ),
                password_key: enclave_core::names::GRAFANA_ADMIN_SECRET.to_owned(),
            },
            env: BTreeMap::from([("GF_SECURITY_ADMIN_USER".to_owned(), GRAFANA_ADMIN.to_owned())]),
            extra_secret_mounts: vec![values::SecretMount {
                name: "es-ca".to_owned(),
                secret_name: elastic::http_ca_secret(),
                mount_path: GRAFANA_ES_CA.to_owned(),
                read_only: true,
            }],
            sidecar: values::GrafanaSidecar {
                dashboards: values::DashboardSidecar {
                    enabled: true,
                    label: "grafana_dashboard".to_owned(),
                    label_value: "1".to_owned(),
                    search_namespace: "ALL".to_owned(),
                    env: BTreeMap::from([("REQ_USERNAME".to_owned(), GRAFANA_ADMIN.to_owned())]),
                },
                datasources: values::SidecarLogin {
                    env: BTreeMap::from([("REQ_USERNAME".to_owned(), GRAFANA_ADMIN.to_owned())]),
                },
            },
            additional_data_sources: vec![
                values::DataSource {
                    name: "Jaeger".to_owned(),
                    type_: "jaeger".to_owned(),
                    access: "proxy".to_owned(),
                    url: format!("http://{JAEGER_HOST}:16686"),
                    basic_auth: None,
                    basic_auth_user: None,
                    json_data: serde_json::json!({}),
                    secure_json_data: None,
                },
                values::DataSource {
                    name: "Elasticsearch".to_owned(),
                    type_: "elasticsearch".to_owned(),
                    access: "proxy".to_owned(),
                    url: elastic::elasticsearch_url(),
                    basic_auth: Some(true),
                    basic_auth_user: Some("elastic".to_owned()),
                    // The server is verified with ECK's authority, mounted from its Secret.
                    json_data: serde_json::json!({"index": "filebeat-*", "timeField": "@timestamp", "tlsAuthWithCACert": true}),
                    secure_json_data: Some(BTreeMap::from([
                        ("basicAuthPassword".to_owned(), format!("$__env{{{elastic_password}}}")),
                        ("tlsCACert".to_owned(), format!("$__file{{{GRAFANA_ES_CA}/ca.crt}}")),
                    ])),
                },
            ],
            env_value_from: BTreeMap::from([(
                elastic_password.to_owned(),
                values::secret_env(elastic_password, &elastic::elastic_user_secret(), "elastic")
                    .value_from
                    .unwrap_or_default(),
            )]),
            resources: resources("100m", "256Mi", "500m", "512Mi"),
        },
        prometheus_operator: values::Operator { resources: resources("100m", "128Mi", "500m", "256Mi") },
        node_exporter: values::NodeExporter {
            namespace_override: "node-exporter".to_owned(),
            pod_annotations: BTreeMap::from([(
                enclave_core::exception::CHECK_SKIP_ANNOTATION.to_owned(),
                exception_skips(Exempt::NodeExporter),
            )]),
            resources: resources("50m", "32Mi", "250m", "64Mi"),
        },
        kube_state_metrics: values::Workload { resources: resources("50m", "128Mi", "250m", "256Mi") },
    })
}

/// Istio's images from the stack's registry (`<registry>/istio/...`, mirrored there), when the
/// spec has one.
fn istio_global(inputs: &Inputs<'_>) -> Option<values::IstioGlobal> {
    inputs.registry.as_ref().map(|host| values::IstioGlobal { hub: format!("{host}/istio") })
}

/// The collector: OTLP in, memory limited, sampled by trace id (`sampling`, when the mesh does not
/// sample already), batched, OTLP out to Jaeger.
fn collector_config(sampling: Option<f64>) -> serde_json::Value {
    let mut processors = serde_json::json!({
        "memory_limiter": {"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 25},
        "batch": {},
    });
    let mut pipeline = vec!["memory_limiter"];
    if let Some(sampling) = sampling {
        processors["probabilistic_sampler"] = serde_json::json!({"sampling_percentage": sampling});
        pipeline.push("probabilistic_sampler");
    }
    pipeline.push("batch");
    serde_json::json!({
        "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": format!("${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}")},
            "http": {"endpoint": format!("${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}")},
        }}},
        "processors": processors,
        "exporters": {"otlp_grpc/jaeger": {"endpoint": format!("{JAEGER_HOST}:{OTLP_GRPC_PORT}"), "tls": {"insecure": true}}},
        "service": {"pipelines": {"traces": {
            "receivers": ["otlp"],
            "processors": pipeline,
            "exporters": ["otlp_grpc/jaeger"],
        }}},
    })
}

/// Where Jaeger reads Elasticsearch's certificate authority.
const ES_CA_DIR: &str = "/es-certs";

/// Jaeger v2's configuration (it replaces the chart's): OTLP in, traces stored in
/// Elasticsearch over TLS verified with ECK's authority, the query UI, the health check the
/// chart's probes call.
fn jaeger_config() -> serde_json::Value {
    serde_json::json!({
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {"traces": {
                "receivers": ["otlp"],
                "processors": ["batch"],
                "exporters": ["jaeger_storage_exporter"],
            }},
        },
        "extensions": {
            "healthcheckv2": {"use_v2": true, "http": {"endpoint": "0.0.0.0:13133"}},
            "jaeger_query": {"storage": {"traces": "elasticsearch"}},
            "jaeger_storage": {"backends": {"elasticsearch": {"elasticsearch": {
                "server_urls": [elastic::elasticsearch_url()],
                "auth": {"basic": {"username": "elastic", "password": "${env:ES_PASSWORD}"}},
                "tls": {"ca_file": format!("{ES_CA_DIR}/ca.crt")},
            }}}},
        },
        "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": "0.0.0.0:4317"},
            "http": {"endpoint": "0.0.0.0:4318"},
        }}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "elasticsearch"}},
    })
}
